"""The local outbox: a SQLite database of every event not yet accepted by Atlan.

With no tenant configured it keeps every event, so runs are real and inspectable before
anything is set up. An event is written here *before* it is sent and marked delivered only
after Atlan answered 202, in one transaction: a crash at any point loses nothing (delivery is
at-least-once). Rows hold JSON only (never a pickle, never a token); the file is created 0600.

Concurrency: WAL mode and a busy timeout let several processes share the file. A row being
sent is *claimed* (by a lease that expires), so two replays, or a replay and a live job, never
send the same event at the same time.

The class is built in layers, each in its own module: the connection and transactions
(:mod:`atlan_ext._database`, the part a backend changes), the schema
(:mod:`atlan_ext._schema`), leases (:mod:`atlan_ext._leases`) and what couriers share
(:mod:`atlan_ext._shared_state`); here are what it stores and reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from atlan_ext._database import WAIT_SECONDS
from atlan_ext._journal import pending_records
from atlan_ext._leases import LEASE_SECONDS, Leases
from atlan_ext._processes import pid_alive as pid_alive  # public: imported from here
from atlan_ext._records import (
    EVENT_COLUMNS,
    RUN_COLUMNS,
    RUN_UPSERT,
    OutboxEvent,
    RunRecord,
    event_from_row,
    run_from_row,
    run_row,
)
from atlan_ext._shared_state import SharedState
from atlan_ext._state import STATE, say_once
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

_PRUNE_EVERY = 3600.0
_RETENTION_DAYS = 7.0


def on_read(hook: Callable[[Outbox], None]) -> None:
    """Call ``hook(outbox)`` before each read of an outbox (once per hook): the delivery layer
    writes there what it holds in memory, so reads in this process are never behind it."""
    with STATE.lock:
        if hook not in STATE.read_hooks:
            STATE.read_hooks.append(hook)


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


class Outbox(Leases, SharedState):
    """A handle on one outbox database file (or ``":memory:"``). Thread-safe.

    :func:`atlan_ext.stores.open_outbox` opens a path or a PostgreSQL URL; the SQL that
    differs between the two lives in the few methods and attributes a backend overrides
    (``_connect``, ``_read``, ``_write``, ``_new_id``, ``claim_pending``, ``health``; see
    :class:`atlan_ext._database.Database`)."""

    #: How :meth:`runs` orders runs updated at the same time (newest first).
    _NEWEST = "updated DESC, rowid DESC"

    def __init__(self, path: os.PathLike[str] | str, *, wait: float = WAIT_SECONDS) -> None:
        super().__init__(path, wait=wait)
        self.recover()
        if self.path != ":memory:":
            with contextlib.suppress(OutboxError):
                self._prune_if_due()

    @property
    def journal_folder(self) -> Path:
        """Where processes leave events for this outbox before storing them (see
        :mod:`atlan_ext._journal`)."""
        return Path(self.path).parent / "journal"

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
        if self.path == ":memory:":  # no journal folder
            return taken
        for path, records in pending_records(self.journal_folder):
            try:
                with self._write():
                    self._fence(path)
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

    def _fence(self, journal: Path) -> None:
        """In :meth:`recover`'s transaction, before the journal of a process gone is checked
        against the outbox: wait until nothing that process sent can still be committed.
        Nothing to wait for in a SQLite file: a write is the writer's own and ends with its
        process, and ``BEGIN IMMEDIATE`` keeps two recoveries apart (a shared backend waits
        for the dead writer's sessions)."""

    def __repr__(self) -> str:
        return f"Outbox({self.path!r})"

    # -- runs --------------------------------------------------------------------------------

    def _runs(self, where: str, params: Sequence[Any]) -> List[RunRecord]:
        with self._read():
            rows = self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs {where}",  # noqa: S608 - fixed clauses
                params,
            ).fetchall()
        return [run_from_row(row) for row in rows]

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
        if check is not None:  # judged on everything this process handed over so far
            self._settle()
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
                now + LEASE_SECONDS if claim else None,
                now if delivered else None,
                int(delivered),
            ),
        )

    def mark_delivered(self, ids: Sequence[int]) -> None:
        """Mark events delivered (Atlan answered 202), in one transaction; those marked
        already stay as they were."""
        if not ids:
            return
        now = time.time()
        with self._write():
            self._set_by_ids(
                "delivered=?, attempts=attempts+1, last_error=NULL, claimed_by=NULL,"
                " claimed_until=NULL",
                (now,),
                ids,
                " AND delivered IS NULL",
            )

    def mark_failed(self, ids: Sequence[int], error: str, *, attempted: bool = True) -> None:
        """Record why events are not delivered (a failed attempt, unless ``attempted`` is
        false) and release the claim, so a replay can send them."""
        if not ids:
            return
        with self._write():
            self._set_by_ids(
                "attempts=attempts+?, last_error=?, claimed_by=NULL, claimed_until=NULL",
                (int(attempted), error[:500]),
                ids,
                " AND delivered IS NULL",
            )

    def _remember(self, event: Dict[str, Any], connector: str, state: str, now: float) -> None:
        """Record the run (its job, datasets and state) from one of its lifecycle events, so
        later steps need only the run id. Inside the caller's transaction."""
        self._db.execute(RUN_UPSERT, run_row(event, connector, state, now))

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
                f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY event_time, id",  # noqa: S608
                params,
            ).fetchall()
        return [event_from_row(row) for row in rows]

    def iter_events(self, batch: int = 1000) -> Iterator[OutboxEvent]:
        """All events, oldest first, read in batches (memory does not grow with the file)."""
        self._settle()
        last = 0
        while True:
            with self._read():
                rows = self._db.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield event_from_row(row)
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
