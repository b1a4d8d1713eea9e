"""The outbox on PostgreSQL: one outbox shared by every host of a fleet.

The same tables and the same guarantees as the SQLite file (:class:`atlan_ext.outbox.Outbox`,
whose methods this class reuses), in a schema ``atlan_ext`` of the database the URL names.
Only what PostgreSQL does differently lives here: the connection (psycopg 3, imported only
when a ``postgresql://`` URL is used), transactions, ids, claims taken with ``FOR UPDATE
SKIP LOCKED``, and knowing that a lease holder on another host is gone (its session ended).

The password comes from the URL, ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads the last two);
it is never in :attr:`PostgresOutbox.path`, a repr, a log line or an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Iterator, List, Optional, Sequence, Tuple

from atlan_ext._journal import writer_pid
from atlan_ext._leases import LEASE_SECONDS as _LEASE_SECONDS
from atlan_ext._pg_sql import (
    LEASE,
    OPEN_STATES,
    SCHEMA,
    Db,
    beat_while_alive,
    open_schema,
    stored,
    writer_alive,
    writer_lock,
)
from atlan_ext._pg_url import is_url, password_of, passwords, redacted, remember_password
from atlan_ext._processes import HOST
from atlan_ext._records import event_from_row
from atlan_ext._state import SHIELD
from atlan_ext._tenant import redact
from atlan_ext._values import run_key
from atlan_ext.exceptions import MissingDependencyError, OutboxError
from atlan_ext.outbox import Outbox, OutboxEvent, RunRecord, default_path

__all__ = ["PostgresOutbox", "is_url", "password_of", "redacted"]

_APP_PREFIX = "atlan-ext "  # + the handle's id: how other hosts know it is still connected


class PostgresOutbox(Outbox):
    """An outbox in a PostgreSQL database, shared by several hosts. Thread-safe."""

    _NEWEST = "updated DESC, created DESC, run_id"
    _LOCK_ROWS = " FOR UPDATE"
    _BY_ID = ""
    _closed = False  # after close(): never reconnected (a use raises OutboxError)

    def __init__(self, url: str, *, wait: float = 5.0) -> None:
        try:
            import psycopg
        except ImportError:
            raise MissingDependencyError(
                f"the outbox {redacted(url)} is a PostgreSQL URL, and psycopg is not "
                "installed: pip install 'atlan-ext[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._ERRORS = (psycopg.Error,)
        self.__url = url  # may hold the password: never shown
        remember_password(url)  # for a courier this process starts (its environment only)
        super().__init__(redacted(url), wait=wait)

    @property
    def journal_folder(self) -> Path:
        """This host's journals for this outbox (beside the local outbox folder)."""
        key = hashlib.sha256(self.path.encode()).hexdigest()[:12]
        return default_path().parent / f"journal-pg-{key}"

    def _app_name(self) -> str:
        return _APP_PREFIX + self.owner.rsplit(":", 1)[-1]

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            # The URL's own options (e.g. -c synchronous_commit=off) are kept, ours added.
            theirs = psycopg.conninfo.conninfo_to_dict(self.__url).get("options") or ""
            connection = psycopg.connect(
                self.__url,
                autocommit=True,
                connect_timeout=max(1, int(self.wait)),
                application_name=self._app_name(),
                # Waits for another session's locks end after `wait`, as SQLite's busy timeout.
                options=f"{theirs} -c search_path={SCHEMA}"
                f" -c lock_timeout={max(1, int(self.wait * 1000))}".strip(),
            )
        except psycopg.Error as error:
            raise OutboxError(
                f"cannot open the outbox {self.path} ({self._trouble(error)}): check the URL, "
                "that the server runs, and the password (in the URL, PGPASSWORD or ~/.pgpass)"
            ) from None
        db = Db(connection)
        try:
            # The writer lock is held shared while this session lives: a recovery of this
            # process's journal waits for it.
            open_schema(
                db, writer_lock(HOST, os.getpid()), self.path, psycopg.errors.UndefinedTable
            )
        except OutboxError:
            db.close()
            raise
        except psycopg.Error as error:
            db.close()
            text = redact(str(error), passwords(self.__url))
            raise OutboxError(f"the outbox {self.path} cannot be used ({text})") from None
        return db

    def _fence(self, journal: Path) -> None:
        """Wait (at most :attr:`wait`; else this journal is left for the next recovery) until
        every session of the journal's dead writer has ended: a statement it sent before it
        was killed is committed by its session after the process died (found by review: the
        recovery stored that event a second time). Two recoveries of one journal wait for
        each other here too, so the second sees what the first stored."""
        pid = writer_pid(journal)
        if pid is not None:
            self._db.execute("SELECT pg_advisory_xact_lock(?, ?)", writer_lock(HOST, pid))

    def _trouble(self, error: BaseException) -> str:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        text = redact(text, passwords(self.__url))  # libpq may quote the URL's password
        return f"the outbox {self.path} cannot be used ({text}): it is tried again later"

    def close(self) -> None:
        """Close the database connection, for good: a later use raises :class:`OutboxError`
        (as a closed SQLite outbox does), and this handle's writer beat ends."""
        with self._lock:
            self._closed = True
            with contextlib.suppress(Exception):
                self._db.close()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise OutboxError(f"the outbox {self.path} was closed: open it again to use it")

    def _after_fork(self) -> None:
        # A connection must not be shared with a forked child; the child opens its own.
        self._inherited = None
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self.owner = f"{self.owner.split(':', 1)[0]}:{self._pid}:{os.urandom(16).hex()}"
        self._db = self._connect()

    @contextlib.contextmanager
    def _read(self, wait: Optional[float] = None) -> Iterator[None]:
        self._refuse_if_closed()  # before a forked child would open a connection of its own
        if self._pid != os.getpid():
            self._after_fork()
        with SHIELD, self._holding(wait):
            self._refuse_if_closed()  # by another thread meanwhile (the beat's, say)
            if self._db.broken:  # the server restarted, or the network dropped: reconnect
                self._db = self._connect()
            try:
                yield
            except self._ERRORS as error:
                raise OutboxError(self._trouble(error)) from None

    @contextlib.contextmanager
    def _write(self, wait: Optional[float] = None) -> Iterator[None]:
        """One transaction, waiting at most ``wait`` seconds (default :attr:`wait`) for locks
        another session holds; committed, or rolled back on any error."""
        deadline = None if wait is None else time.monotonic() + wait
        with self._read(wait), self._db.connection.transaction():
            if deadline is not None:
                wait = max(deadline - time.monotonic(), 0.001)
            if wait is not None and wait < self.wait:  # else the session's (one round trip less)
                self._db.execute(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")
            yield

    def _new_id(self, insert: str, params: Sequence[Any]) -> int:
        row = self._db.execute(f"{insert} RETURNING id", params).fetchone()
        return int(row[0])

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
        """As :meth:`Outbox.add`, in one round trip to the server: the run's record and the
        event are one statement, committed on its own. With ``check`` (or a ``wait`` shorter
        than :attr:`wait`), two: the run's row is locked and read first, then the statement
        and the commit go together."""
        if check is not None:  # judged on everything this process handed over so far
            self._settle()
        if lifecycle_state in OPEN_STATES:
            self._beat_while_alive()
        statement, params = stored(
            self.owner, event, connector, lifecycle_state, claim, time.time()
        )
        bounded = wait is not None and wait < self.wait
        with self._read():
            if check is None and not bounded:
                return int(self._db.execute(statement, params).fetchone()[0])
            connection = self._db.connection
            # Pipeline mode: BEGIN, SET and SELECT travel together, as do INSERT and COMMIT.
            with connection.pipeline(), connection.transaction():
                if bounded:
                    timeout = max(1, int(float(wait or 0) * 1000))
                    self._db.execute(f"SET LOCAL lock_timeout = {timeout}")
                if check is not None:
                    row = self._db.execute(
                        "SELECT state FROM runs WHERE run_id=? FOR UPDATE",
                        (run_key(event["run"]["runId"]),),
                    ).fetchone()
                    check(row[0] if row else None)
                cursor = self._db.execute(statement, params)
            return int(cursor.fetchone()[0])

    def add_many(
        self,
        items: Sequence[Tuple[Dict[str, Any], str, Optional[str]]],
        *,
        claim: bool = False,
        delivered: bool = False,
        texts: Optional[Sequence[Optional[str]]] = None,
    ) -> List[int]:
        """As :meth:`Outbox.add_many`, in one round trip to the server: one statement per
        event, sent with BEGIN and COMMIT in one pipeline."""
        if not items:
            return []
        if any(lifecycle in OPEN_STATES for _event, _connector, lifecycle in items):
            self._beat_while_alive()
        now = time.time()
        known = list(texts) if texts is not None else [None] * len(items)
        statements = [
            stored(self.owner, event, connector, lifecycle, claim, now, delivered, text)
            for (event, connector, lifecycle), text in zip(items, known)
        ]
        with self._read():
            if len(statements) == 1:  # one statement is its own transaction
                return [int(self._db.execute(*statements[0]).fetchone()[0])]
            connection = self._db.connection
            with connection.pipeline(), connection.transaction():
                cursors = [self._db.execute(statement, params) for statement, params in statements]
            return [int(cursor.fetchone()[0]) for cursor in cursors]

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
        statement, params = stored(
            self.owner, event, connector, lifecycle_state, claim, now, delivered, text
        )
        return int(self._db.execute(statement, params).fetchone()[0])

    # -- orphans: judged by the writer's host, and its beat where the pid cannot be seen --------

    def orphans(self, older_than: float) -> List[RunRecord]:
        """Runs that started (START or RUNNING last), were not updated for ``older_than``
        seconds, and whose writer is not known to live: on this host the caller asks
        :attr:`RunRecord.process_alive` (the pid, as on SQLite); a writer on another host is
        alive while its beat is fresh. A step command's run (its ``start`` process ended) is
        judged by its age alone, as on SQLite."""
        candidates = super().orphans(older_than)
        elsewhere = [record for record in candidates if record.host != HOST]
        if not elsewhere:
            return candidates
        with self._read():
            now = float(self._db.execute("SELECT EXTRACT(EPOCH FROM now())").fetchone()[0])
            beats = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'writer:%'"))
        return [record for record in candidates if not writer_alive(record, beats, now)]

    def _beat_while_alive(self) -> None:
        """Before this process stores an open run: its writer's beat starts (once)."""
        beat_while_alive(self.path, self._execute_alone, lambda: self._closed)

    def _execute_alone(self, statement: str, params: Sequence[Any]) -> None:
        with self._read():  # autocommit: one statement, one round trip (no BEGIN/COMMIT)
            self._db.execute(statement, params)

    def health(self) -> List[str]:
        """What is wrong: the server cannot be reached or written; empty when it is sound."""
        try:
            with self._write():
                self._db.execute("SELECT 1 FROM meta LIMIT 1").fetchone()
        except OutboxError as error:
            return [str(error)]
        return []

    def _dead_owners(self, owners: List[str]) -> List[str]:
        """Lease holders gone: this host's dead processes, and holders on any host whose
        database session ended (a killed process's connection closes with it)."""
        gone = set(super()._dead_owners(owners))
        with self._read():
            alive = {
                row[0]
                for row in self._db.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE ?",
                    (_APP_PREFIX + "%",),
                )
            }
        for owner in owners:
            if _APP_PREFIX + owner.rsplit(":", 1)[-1] not in alive:
                gone.add(owner)
        return sorted(gone)

    def claim_pending(
        self, limit: int, lease: float = _LEASE_SECONDS, exclude_runs: Collection[str] = ()
    ) -> List[OutboxEvent]:
        """Lease up to ``limit`` pending events, oldest first; an event is taken only with
        every earlier pending event of its run (so a run's events never overtake each other,
        whichever host stored them), and rows another session is claiming are skipped."""
        self._settle()
        self._release_dead_claims()
        now = time.time()
        excluded = list(exclude_runs)
        skip = f"AND run_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        with self._write():
            # A claim need not wait for its flush to disk: a server that loses it in a crash
            # has lost the claimer's session too, and gone sessions' claims are freed anyway.
            self._db.execute("SET LOCAL synchronous_commit = off")
            rows: List[Tuple[int, str, str]] = self._db.execute(
                f"""SELECT id, run_id, event_time FROM events e
                   WHERE delivered IS NULL AND (claimed_until IS NULL OR claimed_until < ?)
                   AND NOT EXISTS (
                       SELECT 1 FROM events p WHERE p.run_id = e.run_id
                       AND p.delivered IS NULL AND p.claimed_until >= ?
                       AND (p.event_time < e.event_time
                            OR (p.event_time = e.event_time AND p.id < e.id)))
                   {skip} ORDER BY event_time, id LIMIT ?
                   FOR UPDATE SKIP LOCKED""",  # noqa: S608 - placeholders only
                [now, now, *excluded, limit],
            ).fetchall()
            # The pending events of those runs, in one round trip (not one per row: that was
            # most of a courier's time on PostgreSQL).
            pending: Dict[str, List[Tuple[str, int]]] = {}
            if rows:
                for event_id, run_id, event_time in self._db.execute(
                    "SELECT id, run_id, event_time FROM events"
                    " WHERE run_id = ANY(?) AND delivered IS NULL",
                    (sorted({row[1] for row in rows}),),
                ):
                    pending.setdefault(run_id, []).append((event_time, event_id))
            taken: List[int] = []
            chosen = set()
            for event_id, run_id, event_time in rows:
                # Taken only behind its run's earlier events: one in another session's hands
                # (claimed, or being claimed right now and so skipped above) holds the run.
                if all(
                    earlier in chosen
                    for when, earlier in pending.get(run_id, [])
                    if (when, earlier) < (event_time, event_id)
                ):
                    taken.append(event_id)
                    chosen.add(event_id)
            return self._lease(taken, now + lease)

    # -- claims and marks: one statement for a whole batch (a round trip each costs most) ---

    def _set_by_ids(
        self,
        assignments: str,
        params: Sequence[Any],
        ids: Sequence[int],
        where: str = "",
        where_params: Sequence[Any] = (),
    ) -> None:
        if ids:
            self._db.execute(
                f"UPDATE events SET {assignments} WHERE id = ANY(?){where}",  # noqa: S608
                [*params, list(ids), *where_params],
            )

    def _lease(self, ids: Sequence[int], until: float) -> List[OutboxEvent]:
        if not ids:
            return []
        found = [
            event_from_row(row)
            for row in self._db.execute(
                LEASE,
                (self.owner, until, list(ids)),
            )
        ]
        found.sort(key=lambda stored: (stored.event_time, stored.id))
        return found
