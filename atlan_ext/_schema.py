"""The outbox's schema, one definition for both backends, and opening it on SQLite.

The tables are the same on SQLite and PostgreSQL; only a few types and indexes differ by
dialect (written out in :data:`TYPES` and :data:`INDEXES`). The schema is version
:data:`SCHEMA_VERSION` on both: a file or database made by any atlan-ext of that version opens.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Dict, FrozenSet, List, Tuple

__all__ = [
    "DIALECTS",
    "INDEXES",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "TABLES",
    "TYPES",
    "open_sqlite",
    "statements",
]

#: The ``schema`` row of the meta table: this database is an atlan-ext outbox.
SCHEMA_ID = "atlan-ext-outbox"
#: The ``version`` row of the meta table; a database of another version is left untouched.
SCHEMA_VERSION = "1"

#: The types that differ by dialect: the events' id, and epoch seconds.
TYPES: Dict[str, Dict[str, str]] = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "time": "REAL"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "time": "DOUBLE PRECISION"},
}
DIALECTS: FrozenSet[str] = frozenset(TYPES)

#: Each table and its columns; ``{id}`` and ``{time}`` are the types of :data:`TYPES`.
TABLES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("meta", ("key TEXT PRIMARY KEY", "value TEXT NOT NULL")),
    (
        "runs",
        (
            "run_id TEXT PRIMARY KEY",
            "job_namespace TEXT NOT NULL",
            "job_name TEXT NOT NULL",
            "connector TEXT NOT NULL",
            "state TEXT",
            "job TEXT NOT NULL",
            "inputs TEXT NOT NULL",
            "outputs TEXT NOT NULL",
            "created {time} NOT NULL",
            "updated {time} NOT NULL",
            "pid INTEGER",
            "host TEXT",
        ),
    ),
    (
        "events",
        (
            "id {id}",
            "run_id TEXT NOT NULL",
            "event_type TEXT NOT NULL",
            "event_time TEXT NOT NULL",
            "connector TEXT NOT NULL",
            "event TEXT NOT NULL",
            "created {time} NOT NULL",
            "delivered {time}",
            "attempts INTEGER NOT NULL DEFAULT 0",
            "last_error TEXT",
            "claimed_by TEXT",
            "claimed_until {time}",
        ),
    ),
)

#: ``(name, table and columns, partial-index condition, the dialects that have it)``. The
#: pending events are found by a partial index on PostgreSQL; SQLite files have had them
#: with ``delivered`` leading since version 1, and PostgreSQL has two more indexes for
#: pruning and listing runs over a whole fleet's rows.
INDEXES: Tuple[Tuple[str, str, str, FrozenSet[str]], ...] = (
    ("events_pending", "events (delivered, event_time, id)", "", frozenset({"sqlite"})),
    ("events_pending", "events (event_time, id)", "delivered IS NULL", frozenset({"postgresql"})),
    ("events_run", "events (run_id, event_time, id)", "", DIALECTS),
    ("events_claimed", "events (claimed_by)", "claimed_by IS NOT NULL", DIALECTS),
    ("events_delivered", "events (delivered)", "delivered IS NOT NULL", frozenset({"postgresql"})),
    ("runs_updated", "runs (updated, created)", "", frozenset({"postgresql"})),
)


def statements(dialect: str) -> List[str]:
    """The statements that create the schema in ``dialect`` (``"sqlite"`` or
    ``"postgresql"``), in order; each is a no-op where its table or index exists."""
    types = TYPES[dialect]
    made = [
        f"CREATE TABLE IF NOT EXISTS {table} ("
        + ", ".join(column.format(**types) for column in columns)
        + ")"
        for table, columns in TABLES
    ]
    made.extend(
        f"CREATE INDEX IF NOT EXISTS {name} ON {on}" + (f" WHERE {where}" if where else "")
        for name, on, where, dialects in INDEXES
        if dialect in dialects
    )
    return made


def open_sqlite(db: sqlite3.Connection, memory: bool) -> None:
    """Check that ``db`` is an empty database or an outbox of this version, set it up (WAL,
    unless in memory) and create the schema where it is empty.

    Raises :class:`sqlite3.DatabaseError` saying why a database is not one this atlan-ext
    reads; it is left untouched then.
    """
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "meta" not in tables:
        raise sqlite3.DatabaseError("it holds other tables")
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA_ID:
            raise sqlite3.DatabaseError("its meta table is not ours")
        version = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        if version is None or version[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"it has schema version {version[0] if version else None}, "
                f"this atlan-ext reads {SCHEMA_VERSION}"
            )
    if not memory:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA cache_size=-256")
    if not tables:
        with _Transaction(db):
            for statement in statements("sqlite"):
                db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('version', ?)",
                (SCHEMA_ID, SCHEMA_VERSION),
            )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
