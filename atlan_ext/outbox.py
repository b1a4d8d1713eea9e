"""The local outbox: a SQLite database of every event not yet accepted by Atlan.

With no tenant configured it keeps every event, so runs are real and inspectable before
anything is set up. An event is written here *before* it is sent and marked delivered only
after Atlan answered 202, in one transaction: a crash at any point loses nothing (delivery is
at-least-once). Rows hold JSON only (never a pickle, never a token); the file is created 0600.

Concurrency: WAL mode and a busy timeout let several processes share the file. A row being
sent is *claimed* (by a lease that expires), so two replays, or a replay and a live job, never
send the same event at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    cast,
)

from atlan_ext._journal import pending_records
from atlan_ext._state import SHIELD, STATE, say_once
from atlan_ext._values import run_key
from atlan_ext.exceptions import OutboxError

__all__ = [
    "Outbox",
    "OutboxEvent",
    "RunRecord",
    "default_path",
    "on_read",
    "retention_seconds",
]

_HOST = socket.gethostname()
_SCHEMA_ID = "atlan-ext-outbox"
_SCHEMA_VERSION = "1"
_LEASE_SECONDS = 300.0
_DEAD_CHECK_SECONDS = 5.0
_WAIT_SECONDS = 5.0

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job_namespace TEXT NOT NULL,
    job_name TEXT NOT NULL,
    connector TEXT NOT NULL,
    state TEXT,
    job TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    pid INTEGER,
    host TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_time TEXT NOT NULL,
    connector TEXT NOT NULL,
    event TEXT NOT NULL,
    created REAL NOT NULL,
    delivered REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_by TEXT,
    claimed_until REAL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (delivered, event_time, id);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, event_time, id);
CREATE INDEX IF NOT EXISTS events_claimed ON events (claimed_by) WHERE claimed_by IS NOT NULL;
"""


def on_read(hook: Callable[[Outbox], None]) -> None:
    """Call ``hook(outbox)`` before each read of an outbox (once per hook): the delivery layer
    writes there what it holds in memory, so reads in this process are never behind it."""
    with STATE.lock:
        if hook not in STATE.read_hooks:
            STATE.read_hooks.append(hook)


_PRUNE_EVERY = 3600.0
_RETENTION_DAYS = 7.0


def retention_seconds() -> float:
    """How long delivered events are kept: ``ATLAN_EXT_RETENTION_DAYS`` (default 7; a value
    that is not a positive number gets one warning and the default)."""
    text = os.environ.get("ATLAN_EXT_RETENTION_DAYS")
    if not text:
        return _RETENTION_DAYS * 86400
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days > 0 or days == float("inf"):
        say_once(
            f"retention:{text}",
            "atlan_ext: ATLAN_EXT_RETENTION_DAYS=%r is not a positive number of days; "
            "delivered events are kept %g days",
            text,
            _RETENTION_DAYS,
        )
        return _RETENTION_DAYS * 86400
    return days * 86400


def default_path() -> Path:
    """``$ATLAN_EXT_HOME/outbox.db``, else the per-user data folder of the platform."""
    home = os.environ.get("ATLAN_EXT_HOME")
    if home:
        return Path(home).expanduser() / "outbox.db"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "atlan-ext" / "outbox.db"


@dataclass(frozen=True)
class OutboxEvent:
    """One event row: the event as made, and where its delivery stands."""

    id: int
    run_id: str
    event_type: str
    connector: str
    event: Dict[str, Any]
    created: float
    delivered: Optional[float]
    attempts: int
    last_error: Optional[str]

    @property
    def status(self) -> str:
        """``"delivered"`` or ``"pending"``."""
        return "delivered" if self.delivered is not None else "pending"


@dataclass(frozen=True)
class RunRecord:
    """What the outbox remembers of a run: its job, datasets and lifecycle state."""

    run_id: str
    job_namespace: str
    job_name: str
    connector: str
    state: Optional[str]
    job: Dict[str, Any]
    inputs: List[Dict[str, Any]]
    outputs: List[Dict[str, Any]]
    created: float
    updated: float
    pid: Optional[int]
    host: Optional[str]

    @property
    def process_alive(self) -> bool:
        """True if the process that started the run still runs on this host: a process with
        its id exists and, where the system tells (Linux), started before the run was
        recorded (else the id was reused by another process, and the run's is gone)."""
        return (
            self.host == _HOST
            and self.pid is not None
            and pid_alive(self.pid, started_by=self.created)
        )


class Outbox:
    """A handle on one outbox database file (or ``":memory:"``). Thread-safe.

    :func:`atlan_ext.stores.open_outbox` opens a path or a PostgreSQL URL; the SQL that
    differs between the two lives in the few methods and attributes a backend overrides
    (``_connect``, ``_read``, ``_write``, ``_new_id``, ``claim_pending``, ``health``)."""

    #: The database errors that become :class:`OutboxError`.
    _ERRORS: Tuple[Type[BaseException], ...] = (sqlite3.Error,)
    #: How :meth:`runs` orders runs updated at the same time (newest first).
    _NEWEST = "updated DESC, rowid DESC"
    #: Appended to the reads a claim or a checked add acts on: locks the rows where a
    #: transaction does not already hold the whole database.
    _LOCK_ROWS = ""

    def __init__(self, path: os.PathLike[str] | str, *, wait: float = _WAIT_SECONDS) -> None:
        self.path = str(path)
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex}"
        self.wait = wait  # the longest a call waits for another process's transaction
        self._lock = threading.RLock()
        self._dead_checked = -_DEAD_CHECK_SECONDS
        self._pid = os.getpid()
        self._inherited: Optional[sqlite3.Connection] = None  # a forked parent's connection
        self._db: Any = self._connect()  # sqlite3's, or another backend's connection
        if self.path != ":memory:":
            self.recover()
            with contextlib.suppress(OutboxError):
                self._prune_if_due()

    @property
    def journal_folder(self) -> Path:
        """Where processes leave events for this outbox before storing them (see
        :mod:`atlan_ext._journal`)."""
        return Path(self.path).parent / "journal"

    def health(self) -> List[str]:
        """What is wrong with the file: corruption, or that it cannot be written; empty when
        it is sound."""
        problems: List[str] = []
        try:
            with self._read():
                row = self._db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                problems.append(f"the outbox {self.path} is damaged ({row[0] if row else '?'})")
        except OutboxError as error:
            problems.append(str(error))
        try:
            with self._write():
                pass
        except OutboxError as error:
            problems.append(f"the outbox cannot be written: {error}")
        return problems

    def prune(self, older_than: Optional[float] = None) -> int:
        """Delete delivered events older than ``older_than`` seconds (default: the retention,
        ``ATLAN_EXT_RETENTION_DAYS``, 7 days), and the records of runs left with no event;
        returns how many events went. Pending events are never deleted."""
        limit = time.time() - (retention_seconds() if older_than is None else older_than)
        with self._write():
            gone = self._db.execute(
                "DELETE FROM events WHERE delivered IS NOT NULL AND delivered < ?", (limit,)
            ).rowcount
            self._db.execute(
                "DELETE FROM runs WHERE updated < ? AND run_id NOT IN"
                " (SELECT DISTINCT run_id FROM events)",
                (limit,),
            )
            self._db.execute(
                "INSERT INTO meta VALUES ('pruned', ?)"
                " ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (repr(time.time()),),
            )
        return int(gone)

    def _prune_if_due(self) -> None:
        """Prune at most once an hour, when an outbox is opened."""
        with self._read():
            row = self._db.execute("SELECT value FROM meta WHERE key='pruned'").fetchone()
        try:
            last = float(row[0]) if row else 0.0
        except ValueError:
            last = 0.0
        if time.time() - last >= _PRUNE_EVERY:
            self.prune()

    def recover(self) -> int:
        """Take in the events that processes now gone left in their journals (killed
        before their sender stored them); returns how many were new. Never raises."""
        taken = 0
        for path, records in pending_records(self.journal_folder):
            try:
                with self._write():
                    now = time.time()
                    for connector, lifecycle, event in records:
                        known = self._db.execute(
                            "SELECT 1 FROM events WHERE run_id=? AND event_type=? AND event_time=?",
                            (
                                run_key(event["run"]["runId"]),
                                event["eventType"],
                                event["eventTime"],
                            ),
                        ).fetchone()
                        if known is None:
                            self._insert(event, connector, lifecycle, False, now)
                            taken += 1
                path.unlink()
            except (OutboxError, OSError, KeyError, TypeError):
                continue
        return taken

    def __repr__(self) -> str:
        return f"Outbox({self.path!r})"

    # -- opening -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        memory = self.path == ":memory:"
        if not memory:
            target = Path(self.path)
            try:
                if not target.parent.is_dir():
                    # Private: the folder holds lineage of private jobs and SQLite's -wal file.
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.parent.chmod(0o700)
                from atlan_ext._safe_files import guard_file, guard_folder

                guard_folder(target.parent)
                for suffix in ("", "-wal", "-shm", "-journal"):
                    guard_file(Path(f"{target}{suffix}"), create=not suffix)
            except OSError as error:
                raise OutboxError(
                    f"cannot create the outbox at {self.path} ({error.strerror}): set "
                    "ATLAN_EXT_HOME to a folder you can write to"
                ) from None
        try:
            db = sqlite3.connect(
                self.path, timeout=self.wait, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise OutboxError(
                f"cannot open the outbox {self.path} ({error}): set ATLAN_EXT_HOME to a folder "
                "you can write to"
            ) from None
        try:
            self._check_and_create(db, memory)
        except sqlite3.DatabaseError as error:
            db.close()
            raise OutboxError(
                f"{self.path} is not an atlan-ext outbox ({error}); it was left untouched. "
                "Move it away or set ATLAN_EXT_HOME to another folder"
            ) from None
        return db

    def _check_and_create(self, db: sqlite3.Connection, memory: bool) -> None:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise sqlite3.DatabaseError("it holds other tables")
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None or row[0] != _SCHEMA_ID:
                raise sqlite3.DatabaseError("its meta table is not ours")
            version = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            if version is None or version[0] != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"it has schema version {version[0] if version else None}, "
                    f"this atlan-ext reads {_SCHEMA_VERSION}"
                )
        if not memory:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        if not tables:
            with _transaction(db):
                for statement in _DDL.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('version', ?)",
                    (_SCHEMA_ID, _SCHEMA_VERSION),
                )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def _settle(self) -> None:
        """Before a read: what this process handed over but has not written yet is written
        (see :func:`on_read`), so a read shows everything done so far."""
        for hook in STATE.read_hooks:
            hook(self)

    # -- every use of the database: one lock, and sqlite's errors as OutboxError ----------------

    def _after_fork(self) -> None:
        """In a forked child: a connection and lock of its own (the parent's are left alone:
        SQLite forbids using a connection across fork), and claims in its own name."""
        self._inherited = self._db  # never closed here
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self.owner = f"{_HOST}:{self._pid}:{uuid.uuid4().hex}"
        self._db = self._connect()

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        if self._pid != os.getpid():
            self._after_fork()
        with SHIELD, self._lock:
            try:
                yield
            except self._ERRORS as error:
                raise OutboxError(self._trouble(error)) from None

    @contextlib.contextmanager
    def _write(self, wait: Optional[float] = None) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction, waiting at most ``wait`` seconds (default:
        :attr:`wait`) for another process's; committed, or rolled back on any error."""
        with self._read():
            bounded = wait is not None and wait < self.wait
            if bounded:
                self._db.execute(f"PRAGMA busy_timeout={int(cast(float, wait) * 1000)}")
            try:
                self._db.execute("BEGIN IMMEDIATE")
            finally:
                if bounded:
                    self._db.execute(f"PRAGMA busy_timeout={int(self.wait * 1000)}")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- runs --------------------------------------------------------------------------------

    def _runs(self, where: str, params: Sequence[Any]) -> List[RunRecord]:
        with self._read():
            rows = self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where}",  # noqa: S608 - fixed clauses
                params,
            ).fetchall()
        return [_run_record(row) for row in rows]

    def run(self, run_id: str) -> Optional[RunRecord]:
        """The remembered run, or ``None``."""
        self._settle()
        found = self._runs("WHERE run_id=?", (run_key(run_id),))
        return found[0] if found else None

    def runs(self, limit: int = 50) -> List[RunRecord]:
        """The most recently updated runs, newest first."""
        self._settle()
        return self._runs(f"ORDER BY {self._NEWEST} LIMIT ?", (limit,))

    def orphans(self, older_than: float) -> List[RunRecord]:
        """Runs that started (START or RUNNING last) and were not updated for ``older_than`` s."""
        self._settle()
        return self._runs(
            "WHERE state IN ('START', 'RUNNING') AND updated < ? ORDER BY created",
            (time.time() - older_than,),
        )

    # -- events ------------------------------------------------------------------------------

    def add(
        self,
        event: Dict[str, Any],
        connector: str,
        *,
        lifecycle_state: Optional[str] = None,
        claim: bool = False,
        check: Optional[Callable[[Optional[str]], None]] = None,
        wait: Optional[float] = None,
    ) -> int:
        """Store a pending event and return its id.

        ``lifecycle_state`` (for START, RUNNING and the terminal states) records the run, its
        job, datasets and new state, in the same transaction. ``check``, when
        given, is called with the run's stored state inside that transaction and may raise to
        refuse the event (transitions checked across processes). ``claim`` leases the row to
        this handle, so a replay elsewhere leaves it alone while this process sends it.
        ``wait`` bounds the wait for another process's transaction (else :attr:`wait`).
        Raises :class:`OutboxError` when the event cannot be stored.
        """
        with self._write(wait):
            if check is not None:
                row = self._db.execute(
                    f"SELECT state FROM runs WHERE run_id=?{self._LOCK_ROWS}",  # noqa: S608
                    (run_key(event["run"]["runId"]),),
                ).fetchone()
                check(row[0] if row else None)
            return self._insert(event, connector, lifecycle_state, claim, time.time())

    def add_many(
        self,
        items: Sequence[Tuple[Dict[str, Any], str, Optional[str]]],
        *,
        claim: bool = False,
        delivered: bool = False,
        texts: Optional[Sequence[Optional[str]]] = None,
    ) -> List[int]:
        """Store several ``(event, connector, lifecycle_state)`` in one transaction, in order;
        return their ids. ``delivered``: Atlan already accepted them (sent before stored).
        ``texts``: the events as compact JSON, where the caller has it already."""
        if not items:
            return []
        now = time.time()
        known = list(texts) if texts is not None else [None] * len(items)
        with self._write():
            return [
                self._insert(event, connector, lifecycle, claim, now, delivered, text)
                for (event, connector, lifecycle), text in zip(items, known)
            ]

    def _insert(
        self,
        event: Dict[str, Any],
        connector: str,
        lifecycle_state: Optional[str],
        claim: bool,
        now: float,
        delivered: bool = False,
        text: Optional[str] = None,
    ) -> int:
        if lifecycle_state is not None:
            self._remember(event, connector, lifecycle_state, now)
        return self._new_id(
            "INSERT INTO events (run_id, event_type, event_time, connector, event, created,"
            " claimed_by, claimed_until, delivered, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            (
                run_key(event["run"]["runId"]),
                event["eventType"],
                event["eventTime"],
                connector,
                text if text is not None else json.dumps(event, separators=(",", ":")),
                now,
                self.owner if claim else None,
                now + _LEASE_SECONDS if claim else None,
                now if delivered else None,
                int(delivered),
            ),
        )

    def _new_id(self, insert: str, params: Sequence[Any]) -> int:
        """Run an ``INSERT INTO events`` and return the new row's id."""
        event_id = self._db.execute(insert, params).lastrowid
        assert event_id is not None
        return int(event_id)

    def _trouble(self, error: BaseException) -> str:
        """A database error as a sentence naming the fix."""
        assert isinstance(error, sqlite3.Error)
        return _trouble(self.path, error)

    def mark_delivered(self, ids: Sequence[int]) -> None:
        """Mark events delivered (Atlan answered 202), in one transaction; those marked
        already stay as they were."""
        if not ids:
            return
        now = time.time()
        with self._write():
            self._db.executemany(
                "UPDATE events SET delivered=?, attempts=attempts+1, last_error=NULL,"
                " claimed_by=NULL, claimed_until=NULL WHERE id=? AND delivered IS NULL",
                [(now, event_id) for event_id in ids],
            )

    def mark_failed(self, ids: Sequence[int], error: str, *, attempted: bool = True) -> None:
        """Record why events are not delivered (a failed attempt, unless ``attempted`` is
        false) and release the claim, so a replay can send them."""
        if not ids:
            return
        with self._write():
            self._db.executemany(
                "UPDATE events SET attempts=attempts+?, last_error=?, claimed_by=NULL,"
                " claimed_until=NULL WHERE id=? AND delivered IS NULL",
                [(int(attempted), error[:500], event_id) for event_id in ids],
            )

    def release(self, ids: Sequence[int]) -> None:
        """Give up the claim on events without counting an attempt."""
        if not ids:
            return
        with self._write():
            self._db.executemany(
                "UPDATE events SET claimed_by=NULL, claimed_until=NULL WHERE id=? AND claimed_by=?",
                [(event_id, self.owner) for event_id in ids],
            )

    def release_mine(self) -> None:
        """Give up every claim this handle holds on undelivered events."""
        with self._write():
            self._db.execute(
                "UPDATE events SET claimed_by=NULL, claimed_until=NULL"
                " WHERE claimed_by=? AND delivered IS NULL",
                (self.owner,),
            )

    def claim_pending(
        self, limit: int, lease: float = _LEASE_SECONDS, exclude_runs: Collection[str] = ()
    ) -> List[OutboxEvent]:
        """Lease up to ``limit`` pending events to this handle, oldest first (by event time,
        then by when they were stored).

        An event is left out while an earlier pending event of its run is leased elsewhere,
        so START is always sent before the later events of its run; ``exclude_runs`` leaves
        out whole runs.
        """
        self._settle()
        self._release_dead_claims()
        now = time.time()
        excluded = list(exclude_runs)
        skip = f"AND run_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        with self._write():
            rows = self._db.execute(
                f"""SELECT id FROM events e
                   WHERE delivered IS NULL AND (claimed_until IS NULL OR claimed_until < ?)
                   AND NOT EXISTS (
                       SELECT 1 FROM events p WHERE p.run_id = e.run_id
                       AND p.delivered IS NULL AND p.claimed_until >= ?
                       AND (p.event_time < e.event_time
                            OR (p.event_time = e.event_time AND p.id < e.id)))
                   {skip} ORDER BY event_time, id LIMIT ?""",  # noqa: S608 - placeholders only
                [now, now, *excluded, limit],
            ).fetchall()
            ids = [row[0] for row in rows]
            self._db.executemany(
                "UPDATE events SET claimed_by=?, claimed_until=? WHERE id=?",
                [(self.owner, now + lease, event_id) for event_id in ids],
            )
            return self._events_by_ids(ids)

    def _held_elsewhere(self, owner: Optional[str], until: Optional[float], now: float) -> bool:
        """True for a lease another live handle holds (not ours, not expired, its process
        not gone)."""
        return (
            owner not in (None, self.owner)
            and until is not None
            and until >= now
            and not _dead_here(owner)
        )

    def claim_ids(self, ids: Sequence[int]) -> List[OutboxEvent]:
        """Lease the events ``ids`` that are still pending and not leased by another live
        process (a replay may have taken or sent them meanwhile), oldest first."""
        now = time.time()
        taken: List[int] = []
        with self._write():
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                taken.extend(
                    row[0]
                    for row in self._db.execute(
                        f"SELECT id, claimed_by, claimed_until FROM events WHERE id IN ({marks})"  # noqa: S608
                        f" AND delivered IS NULL ORDER BY id{self._LOCK_ROWS}",
                        chunk,
                    )
                    if not self._held_elsewhere(row[1], row[2], now)
                )
            self._db.executemany(
                "UPDATE events SET claimed_by=?, claimed_until=? WHERE id=?",
                [(self.owner, now + _LEASE_SECONDS, event_id) for event_id in taken],
            )
            return self._events_by_ids(taken)

    def take_earlier(self, firsts: Dict[str, int]) -> Tuple[List[OutboxEvent], List[str]]:
        """Before a run's events in hand are sent: its pending events stored before them.

        ``firsts`` maps run ids to the id of the first event in hand of that run. Earlier
        pending events that nobody else holds are leased to this handle and returned, oldest
        first, to be sent ahead; runs with an earlier event leased by another live sender are
        returned as held, and their events in hand must wait (a terminal event never
        overtakes its START, even when another process stored the START).
        """
        if not firsts:
            return [], []
        now = time.time()
        taken: List[int] = []
        held: List[str] = []
        with self._write():
            for run_id, first in firsts.items():
                rows = self._db.execute(
                    "SELECT id, claimed_by, claimed_until FROM events"  # noqa: S608
                    " WHERE run_id=? AND delivered IS NULL AND id < ?"
                    f" ORDER BY event_time, id{self._LOCK_ROWS}",
                    (run_key(run_id), first),
                ).fetchall()
                busy = [row for row in rows if self._held_elsewhere(row[1], row[2], now)]
                if busy:
                    held.append(run_id)
                else:
                    taken.extend(row[0] for row in rows)
            self._db.executemany(
                "UPDATE events SET claimed_by=?, claimed_until=? WHERE id=?",
                [(self.owner, now + _LEASE_SECONDS, event_id) for event_id in taken],
            )
            return self._events_by_ids(taken), held

    def _remember(self, event: Dict[str, Any], connector: str, state: str, now: float) -> None:
        """Record the run (its job, datasets and state) from one of its lifecycle events, so
        later steps need only the run id. Inside the caller's transaction."""
        job = event["job"]
        self._db.execute(
            """INSERT INTO runs (run_id, job_namespace, job_name, connector, state, job,
                                 inputs, outputs, created, updated, pid, host)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(run_id) DO UPDATE SET state=excluded.state,
                   inputs=excluded.inputs, outputs=excluded.outputs, updated=excluded.updated""",
            (
                run_key(event["run"]["runId"]),
                job["namespace"],
                job["name"],
                connector,
                state,
                json.dumps(job),
                json.dumps(event.get("inputs", [])),
                json.dumps(event.get("outputs", [])),
                now,
                now,
                os.getpid(),
                _HOST,
            ),
        )

    def _release_dead_claims(self) -> None:
        """Free leases held by processes of this host that no longer exist (killed -9).
        Looked for at most every few seconds: a dead process's claims are rare."""
        now = time.monotonic()
        if now - self._dead_checked < _DEAD_CHECK_SECONDS:
            return
        self._dead_checked = now
        with self._read():
            owners = [
                row[0]
                for row in self._db.execute(
                    "SELECT DISTINCT claimed_by FROM events WHERE claimed_by IS NOT NULL"
                    " AND delivered IS NULL AND claimed_until >= ?",
                    (time.time(),),
                )
            ]
        dead = self._dead_owners([owner for owner in owners if owner])
        if dead:
            with self._write():
                self._db.executemany(
                    "UPDATE events SET claimed_by=NULL, claimed_until=NULL WHERE claimed_by=?",
                    [(owner,) for owner in dead],
                )

    def _dead_owners(self, owners: List[str]) -> List[str]:
        """Which of these lease holders are gone: here, processes of this host that no
        longer exist (a shared backend also knows of other hosts' processes)."""
        return [owner for owner in owners if _dead_here(owner)]

    def _events_by_ids(self, ids: Sequence[int]) -> List[OutboxEvent]:
        found: List[OutboxEvent] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                _event(row)
                for row in self._db.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE id IN ({marks})"  # noqa: S608
                    " ORDER BY event_time, id",
                    chunk,
                )
            )
        # In the order the events were made across chunks too: a run's START stored after its
        # COMPLETE (a crowded sender) must still go first.
        found.sort(key=lambda stored: (stored.event.get("eventTime", ""), stored.id))
        return found

    def events(
        self, run_id: Optional[str] = None, *, pending_only: bool = False
    ) -> List[OutboxEvent]:
        """Events in the order they were made, of one run or of all."""
        self._settle()
        clauses, params = [], []
        if run_id is not None:
            clauses.append("run_id=?")
            params.append(run_key(run_id))
        if pending_only:
            clauses.append("delivered IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read():
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY event_time, id",  # noqa: S608
                params,
            ).fetchall()
        return [_event(row) for row in rows]

    def iter_events(self, batch: int = 1000) -> Iterator[OutboxEvent]:
        """All events, oldest first, read in batches (memory does not grow with the file)."""
        self._settle()
        last = 0
        while True:
            with self._read():
                rows = self._db.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _event(row)
            last = rows[-1][0]

    def last_error(self) -> Optional[str]:
        """Why the most recently stored undelivered event was not delivered, if it was tried."""
        self._settle()
        with self._read():
            row = self._db.execute(
                "SELECT last_error FROM events WHERE delivered IS NULL AND last_error IS NOT NULL"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def counts(self) -> Tuple[int, int]:
        """``(pending, delivered)`` event counts."""
        self._settle()
        with self._read():
            row = self._db.execute(
                "SELECT COUNT(*) - COUNT(delivered), COUNT(delivered) FROM events"
            ).fetchone()
        return int(row[0]), int(row[1])

    # -- what every courier sharing this outbox agrees on --------------------------------------

    def _shared(self, key: str) -> float:
        """A time stored in the meta table (0 when none), read inside the caller's
        transaction with the row locked where the backend locks rows."""
        self._db.execute("INSERT INTO meta VALUES (?, '0') ON CONFLICT (key) DO NOTHING", (key,))
        row = self._db.execute(
            f"SELECT value FROM meta WHERE key=?{self._LOCK_ROWS}",  # noqa: S608
            (key,),
        ).fetchone()
        try:
            return float(row[0]) if row else 0.0
        except ValueError:
            return 0.0

    def _set_shared(self, key: str, value: float) -> None:
        self._db.execute("UPDATE meta SET value=? WHERE key=?", (repr(value), key))

    def take_slot(self, spacing: float) -> float:
        """The time (``time.time()``) at which this handle may make its next request, when
        every sender on the outbox keeps ``spacing`` seconds between requests: a budget of
        ``60 / spacing`` requests a minute shared by all couriers of a fleet."""
        with self._write():
            slot = max(time.time(), self._shared("next-request"))
            self._set_shared("next-request", slot + spacing)
        return slot

    def pause_sending(self, until: float) -> None:
        """Ask every courier on this outbox to send nothing before ``until`` (epoch seconds),
        e.g. after Atlan answered 429; a later pause already set stays."""
        with self._write():
            if self._shared("paused-until") < until:
                self._set_shared("paused-until", until)

    def paused_until(self) -> float:
        """Until when sending is paused (epoch seconds; in the past when it is not)."""
        with self._read():
            row = self._db.execute("SELECT value FROM meta WHERE key='paused-until'").fetchone()
        try:
            return float(row[0]) if row else 0.0
        except ValueError:
            return 0.0

    def beat(self, name: str) -> None:
        """Record that the service ``name`` (e.g. a courier service) is alive now."""
        with self._write():
            self._shared(f"beat:{name}")
            self._set_shared(f"beat:{name}", time.time())

    def last_beat(self, name: str) -> float:
        """When the service ``name`` last said it was alive (epoch seconds; 0 if never)."""
        with self._read():
            row = self._db.execute(
                "SELECT value FROM meta WHERE key=?", (f"beat:{name}",)
            ).fetchone()
        try:
            return float(row[0]) if row else 0.0
        except ValueError:
            return 0.0


def _trouble(path: str, error: sqlite3.Error) -> str:
    text = str(error)
    if "locked" in text or "busy" in text:
        fix = "another process holds it; it is tried again later"
    elif "readonly" in text or "read-only" in text:
        fix = "make it writable, or set ATLAN_EXT_HOME to a folder you can write to"
    elif "full" in text:
        fix = "free disk space, or set ATLAN_EXT_HOME to a folder on another disk"
    else:
        fix = "set ATLAN_EXT_HOME to another folder if it keeps failing"
    return f"the outbox {path} cannot be used ({text}): {fix}"


def _dead_here(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    return not pid_alive(int(pid_text))


def pid_alive(pid: int, *, started_by: Optional[float] = None) -> bool:
    """True if a process with this id exists on this host; with ``started_by`` (a
    ``time.time()``), only if it started by then, where the system tells when a process
    started (Linux's ``/proc``; elsewhere the id alone decides). A process that started
    later holds a reused id."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    if started_by is None:
        return True
    started = _process_start_time(pid)
    # /proc's boot time is whole seconds: a second of slack, and one more for clock ticks.
    return started is None or started <= started_by + 2.0


def _process_start_time(pid: int) -> Optional[float]:
    """When process ``pid`` started, as a ``time.time()``, or ``None`` where it cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:  # noqa: PTH123
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/stat", encoding="ascii") as system:  # noqa: PTH123
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime "))
        ticks = os.sysconf("SC_CLK_TCK")
        # Field 22 of stat (starttime, in clock ticks after boot); fields[0] is field 3.
        return boot + int(fields[19]) / ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_RUN_COLUMNS = (
    "run_id, job_namespace, job_name, connector, state, job, inputs, outputs, created,"
    " updated, pid, host"
)
_EVENT_COLUMNS = (
    "id, run_id, event_type, connector, event, created, delivered, attempts, last_error"
)


def _event(row: Sequence[Any]) -> OutboxEvent:
    return OutboxEvent(
        id=row[0],
        run_id=row[1],
        event_type=row[2],
        connector=row[3],
        event=json.loads(row[4]),
        created=row[5],
        delivered=row[6],
        attempts=row[7],
        last_error=row[8],
    )


def _run_record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        job_namespace=row[1],
        job_name=row[2],
        connector=row[3],
        state=row[4],
        job=json.loads(row[5]),
        inputs=json.loads(row[6]),
        outputs=json.loads(row[7]),
        created=row[8],
        updated=row[9],
        pid=row[10],
        host=row[11],
    )


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
