"""The outbox's schema has one definition for SQLite and PostgreSQL, and it is still the
version-1 schema: outboxes made before keep opening, and new ones are made the same."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any, Dict

import pytest

from atlan_ext.exceptions import OutboxError
from atlan_ext.outbox import Outbox

# The schema as version 1 of the outbox wrote it, on each backend (copied from the release
# that introduced it): what an outbox in the field holds.
VERSION_1 = {
    "sqlite": """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, job_namespace TEXT NOT NULL, job_name TEXT NOT NULL,
    connector TEXT NOT NULL, state TEXT, job TEXT NOT NULL, inputs TEXT NOT NULL,
    outputs TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL, pid INTEGER,
    host TEXT
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, event_type TEXT NOT NULL,
    event_time TEXT NOT NULL, connector TEXT NOT NULL, event TEXT NOT NULL,
    created REAL NOT NULL, delivered REAL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, claimed_by TEXT, claimed_until REAL
);
CREATE INDEX events_pending ON events (delivered, event_time, id);
CREATE INDEX events_run ON events (run_id, event_time, id);
CREATE INDEX events_claimed ON events (claimed_by) WHERE claimed_by IS NOT NULL;
INSERT INTO meta VALUES ('schema', 'atlan-ext-outbox'), ('version', '1');
""",
    "postgresql": """
CREATE SCHEMA atlan_ext;
SET search_path TO atlan_ext;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, job_namespace TEXT NOT NULL, job_name TEXT NOT NULL,
    connector TEXT NOT NULL, state TEXT, job TEXT NOT NULL, inputs TEXT NOT NULL,
    outputs TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL, pid INTEGER, host TEXT
);
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, event_type TEXT NOT NULL,
    event_time TEXT NOT NULL, connector TEXT NOT NULL, event TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, delivered DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, claimed_by TEXT,
    claimed_until DOUBLE PRECISION
);
CREATE INDEX events_pending ON events (event_time, id) WHERE delivered IS NULL;
CREATE INDEX events_run ON events (run_id, event_time, id);
CREATE INDEX events_claimed ON events (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX events_delivered ON events (delivered) WHERE delivered IS NOT NULL;
CREATE INDEX runs_updated ON runs (updated, created);
INSERT INTO meta VALUES ('schema', 'atlan-ext-outbox'), ('version', '1');
""",
}


def event(kind: str, run_id: str, second: int) -> Dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": f"2026-12-03T10:00:{second:02d}Z",
        "run": {"runId": run_id},
        "job": {"namespace": "ol-demo", "name": "schema"},
        "inputs": [],
        "outputs": [],
        "producer": "https://example.com/test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def round_trip(outbox: Outbox) -> None:
    """A run stored, leased in order and delivered: the schema serves every step."""
    run_id = str(uuid.uuid4())
    outbox.add(event("START", run_id, 1), "c", lifecycle_state="START")
    outbox.add(event("COMPLETE", run_id, 2), "c", lifecycle_state="COMPLETE")
    taken = outbox.claim_pending(10)
    assert [stored.event_type for stored in taken] == ["START", "COMPLETE"]
    outbox.mark_delivered([stored.id for stored in taken])
    assert outbox.counts() == (0, 2)
    record = outbox.run(run_id)
    assert record is not None
    assert record.state == "COMPLETE"


def sqlite_shape(path: Path) -> Dict[str, Any]:
    """Every table's columns (name, type, not null, default, key) and every index's table,
    columns and condition: what a schema is, whatever the spacing of its SQL."""
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        indexes = db.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
        ).fetchall()
        return {
            "tables": {
                table: [row[1:] for row in db.execute(f"PRAGMA table_info({table})")]
                for table in tables
            },
            "indexes": {
                name: (
                    table,
                    [row[2] for row in db.execute(f"PRAGMA index_info({name})")],
                    " ".join(sql.partition(" WHERE ")[2].split()),
                )
                for name, table, sql in indexes
            },
            "meta": sorted(db.execute("SELECT * FROM meta WHERE key IN ('schema', 'version')")),
        }


class TestSqliteSchema:
    """A new SQLite outbox has the version-1 schema, and a version-1 file opens."""

    def test_a_new_file_has_the_version_1_schema(self, tmp_path: Path) -> None:
        """Tables, columns, types, keys, indexes and their conditions match version 1's."""
        old = tmp_path / "old" / "outbox.db"
        old.parent.mkdir()
        with sqlite3.connect(old) as db:
            db.executescript(VERSION_1["sqlite"])
        Outbox(tmp_path / "new" / "outbox.db").close()
        assert sqlite_shape(tmp_path / "new" / "outbox.db") == sqlite_shape(old)

    def test_a_version_1_file_opens_and_serves(self, tmp_path: Path) -> None:
        """An outbox written by version 1 stores, leases and delivers as before."""
        path = tmp_path / "outbox.db"
        with sqlite3.connect(path) as db:
            db.executescript(VERSION_1["sqlite"])
        round_trip(Outbox(path))

    def test_another_version_is_left_untouched(self, tmp_path: Path) -> None:
        """A file of schema version 2 is refused with the version named."""
        path = tmp_path / "outbox.db"
        with sqlite3.connect(path) as db:
            db.executescript(VERSION_1["sqlite"].replace("('version', '1')", "('version', '2')"))
        with pytest.raises(OutboxError, match="schema version 2"):
            Outbox(path)
