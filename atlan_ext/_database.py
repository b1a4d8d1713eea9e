"""The outbox's database handle: its connection, its one lock, and its transactions.

:class:`Database` is the layer a backend changes: SQLite here, PostgreSQL in
:mod:`atlan_ext._postgres` (which overrides ``_connect``, ``_after_fork``, ``_read``,
``_write``, ``_new_id``, ``_trouble``, ``close`` and ``health``). Everything above it, leases
and the outbox itself, runs the same SQL through ``_read`` and ``_write`` on both.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Type, cast

from atlan_ext._processes import HOST
from atlan_ext._records import EVENT_COLUMNS, OutboxEvent, event_from_row
from atlan_ext._schema import open_sqlite
from atlan_ext._state import SHIELD, STATE
from atlan_ext.exceptions import OutboxError

__all__ = ["WAIT_SECONDS", "Database"]

#: How long a call waits for another process's transaction, unless told otherwise.
WAIT_SECONDS = 5.0


class Database:
    """A connection to one outbox database, used under one lock. Thread-safe; in a forked
    child it opens a connection of its own."""

    #: The database errors that become :class:`OutboxError`.
    _ERRORS: Tuple[Type[BaseException], ...] = (sqlite3.Error,)
    #: Appended to the reads a claim or a checked add acts on: locks the rows where a
    #: transaction does not already hold the whole database.
    _LOCK_ROWS = ""
    #: Follows ``events`` in a read or write of events by id: SQLite's planner (no table
    #: statistics) would otherwise pick the pending index for ``delivered IS NULL`` and walk
    #: every pending event for each batch; the rowid look-up stays allowed.
    _BY_ID = " NOT INDEXED"

    def __init__(self, path: os.PathLike[str] | str, *, wait: float = WAIT_SECONDS) -> None:
        self.path = str(path)
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex}"
        self.wait = wait  # the longest a call waits for another process's transaction
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._inherited: Optional[sqlite3.Connection] = None  # a forked parent's connection
        self._db: Any = self._connect()  # sqlite3's, or another backend's connection

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

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

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
                folder = next((p for p in target.parents if p.exists()), None)
                if folder is not None and not folder.is_dir():  # a file where a folder goes
                    raise OutboxError(
                        f"cannot create the outbox at {self.path}: {folder} is a file, not a "
                        "folder; set ATLAN_EXT_HOME to a folder you can write to"
                    ) from None
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
            open_sqlite(db, memory)
        except sqlite3.DatabaseError as error:
            db.close()
            raise OutboxError(
                f"{self.path} is not an atlan-ext outbox ({error}); it was left untouched. "
                "Move it away or set ATLAN_EXT_HOME to another folder"
            ) from None
        return db

    def _settle(self) -> None:
        """Before a read: what this process handed over but has not written yet is written
        (see :func:`atlan_ext.outbox.on_read`), so a read shows everything done so far."""
        for hook in STATE.read_hooks:
            hook(self)

    # -- every use of the database: one lock, and sqlite's errors as OutboxError ----------------

    def _after_fork(self) -> None:
        """In a forked child: a connection and lock of its own (the parent's are left alone:
        SQLite forbids using a connection across fork), and claims in its own name."""
        self._inherited = self._db  # never closed here
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self.owner = f"{HOST}:{self._pid}:{uuid.uuid4().hex}"
        self._db = self._connect()

    @contextlib.contextmanager
    def _holding(self, wait: Optional[float]) -> Iterator[None]:
        """This handle's lock (one thread at a time on its connection), waited for at most
        ``wait`` seconds (``None``: as long as it takes): another thread of the process may
        hold it while it waits for another process's transaction."""
        if not self._lock.acquire(timeout=-1 if wait is None else max(wait, 0.0)):
            raise OutboxError(
                f"the outbox was busy for more than {wait:g} s (another thread of this "
                "process waits for another process that holds it); it is tried again later"
            )
        try:
            yield
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def _read(self, wait: Optional[float] = None) -> Iterator[None]:
        if self._pid != os.getpid():
            self._after_fork()
        with SHIELD, self._holding(wait):
            try:
                yield
            except self._ERRORS as error:
                raise OutboxError(self._trouble(error)) from None

    @contextlib.contextmanager
    def _write(self, wait: Optional[float] = None) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction, waiting at most ``wait`` seconds (default:
        :attr:`wait`) in all for this handle and another process's; committed, or rolled
        back on any error."""
        deadline = None if wait is None else time.monotonic() + wait
        with self._read(wait):
            if deadline is not None:
                wait = max(deadline - time.monotonic(), 0.001)
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

    def _new_id(self, insert: str, params: Sequence[Any]) -> int:
        """Run an ``INSERT INTO events`` and return the new row's id."""
        event_id = self._db.execute(insert, params).lastrowid
        assert event_id is not None
        return int(event_id)

    def _trouble(self, error: BaseException) -> str:
        """A database error as a sentence naming the fix."""
        assert isinstance(error, sqlite3.Error)
        return _trouble(self.path, error)

    def _events_by_ids(self, ids: Sequence[int]) -> List[OutboxEvent]:
        found: List[OutboxEvent] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                event_from_row(row)
                for row in self._db.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({marks})"  # noqa: S608
                    " ORDER BY event_time, id",
                    chunk,
                )
            )
        # In the order the events were made across chunks too: a run's START stored after its
        # COMPLETE (a crowded sender) must still go first.
        found.sort(key=lambda stored: (stored.event_time, stored.id))
        return found


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
