"""The SQL the PostgreSQL outbox runs its own way: a connection taking ``?`` placeholders, an
event and its run's record stored in one statement, and the beats of writer processes by
which another host tells that the writer of an open run still lives."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import time
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

from atlan_ext._processes import HOST
from atlan_ext._records import EVENT_COLUMNS, RUN_UPSERT, run_row
from atlan_ext._schema import SCHEMA_ID, SCHEMA_VERSION, statements
from atlan_ext._state import start_thread
from atlan_ext._values import run_key
from atlan_ext.exceptions import OutboxError
from atlan_ext.outbox import RunRecord

__all__ = [
    "BEAT",
    "FORGET_BEATS",
    "LEASE",
    "OPEN_STATES",
    "SCHEMA",
    "WRITER_BEAT_SECONDS",
    "Db",
    "beat_while_alive",
    "open_schema",
    "stored",
    "writer_alive",
    "writer_key",
    "writer_lock",
]

LEASE_SECONDS = 300.0
# A process that stored an open run on this outbox says every few seconds that it lives (so
# a host that cannot see its pid can tell); after WRITER_GONE seconds of silence it is gone.
WRITER_BEAT_SECONDS = 5.0
WRITER_GONE = 3 * WRITER_BEAT_SECONDS
WRITER_FORGET = 86400.0  # beats of writers silent this long are deleted
OPEN_STATES = ("START", "RUNNING")
_WRITER_LOCKS = 0x61746C61  # the first key of writer_lock's advisory locks
SCHEMA = "atlan_ext"  # every session's search_path: set in its startup options
_SCHEMA_LOCK = 0x61746C616E  # pg_advisory_xact_lock key while the schema is created

# Opening a session is this one statement (no lock, no transaction: the schema nearly always
# exists): the search_path the session got, this process's writer lock taken shared (see
# writer_lock), and the schema's identity and version. It fails with UndefinedTable when the
# schema is still to be created (open_schema creates it, under a lock, and asks again).
_OPENED = f"""SELECT current_setting('search_path'), pg_advisory_lock_shared(?, ?) IS NULL,
    (SELECT value FROM {SCHEMA}.meta WHERE key='schema'),
    (SELECT value FROM {SCHEMA}.meta WHERE key='version')"""  # noqa: S608 - constants only

# Storing an event is one statement: the run's record (for lifecycle events) and the event
# in one INSERT, atomic on its own. Its columns and conflict rule are those of
# Outbox._remember and Outbox._insert, which SQLite runs as two statements.
EVENT_INSERT = """INSERT INTO events (run_id, event_type, event_time, connector, event,
    created, claimed_by, claimed_until, delivered, attempts)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"""
RUN_AND_EVENT_INSERT = f"""WITH run AS ({RUN_UPSERT})
{EVENT_INSERT}"""
# A batch of events leased, and read back, in one statement (not one UPDATE per event).
LEASE = f"""UPDATE events SET claimed_by=?, claimed_until=? WHERE id = ANY(?)
    RETURNING {EVENT_COLUMNS}"""  # noqa: S608 - constant columns

# A writer's beat: ``<since> <server time>``. The server's clock judges freshness (hosts'
# clocks differ); ``since`` is compared with the times of runs the same host wrote.
BEAT = (
    "INSERT INTO meta VALUES (?, ? || ' ' || EXTRACT(EPOCH FROM now())::text)"
    " ON CONFLICT (key) DO UPDATE SET value=excluded.value"
)
FORGET_BEATS = (
    "DELETE FROM meta WHERE key LIKE 'writer:%'"
    " AND split_part(value, ' ', 2)::float8 < EXTRACT(EPOCH FROM now()) - ?"
)


# The outboxes (as shown) this process beats on: the pid that started the beating (a forked
# child beats on its own), when it began, and whether the handle beating is closed.
_BEATING: Dict[str, Tuple[int, float, Callable[[], bool]]] = {}
_BEATING_LOCK = threading.Lock()


def beat_while_alive(
    outbox: str,
    execute: Callable[[str, Sequence[Any]], None],
    closed: Callable[[], bool],
) -> None:
    """This process's beat on ``outbox`` (as shown): now (once per process), then every
    :data:`WRITER_BEAT_SECONDS` from a daemon thread while the process lives and the handle
    beating is open (``closed`` says when it is not: the thread ends then, and the next open
    run stored through another handle beats again, as of the same start); gone at a normal
    exit, so a step command's open run is judged by its age at once, as on SQLite.
    ``execute`` runs one statement in a transaction of its own. Never raises."""
    pid = os.getpid()
    with _BEATING_LOCK:
        found = _BEATING.get(outbox)
        if found is not None and found[0] == pid and not found[2]():
            return
        # Before any run this process stores from now on (kept when another handle takes
        # over: runs stored through the closed one still count as this writer's).
        since = found[1] if found is not None and found[0] == pid else time.time()
        _BEATING[outbox] = (pid, since, closed)
    key = writer_key(pid)
    shown = [False]  # whether this beat's row was written and not deleted since
    order = threading.Lock()  # a beat and the end: each statement with its flag

    def beat() -> None:
        with order, contextlib.suppress(Exception):  # a missed beat only ages the last one
            execute(BEAT, (key, repr(since)))
            shown[0] = True

    def beat_on() -> None:
        while not closed():
            time.sleep(WRITER_BEAT_SECONDS)
            if not closed():
                beat()

    def ended() -> None:
        # Called by atexit and by end_beats at exit: the row is deleted once (the beat
        # writes it again if the process goes on, as after the testing kit's shutdown).
        if os.getpid() != pid or closed():  # a forked child leaving: its parent lives
            return
        with order:
            if shown[0]:
                with contextlib.suppress(Exception):
                    execute("DELETE FROM meta WHERE key=?", (key,))
                    shown[0] = False

    with contextlib.suppress(Exception):
        execute(FORGET_BEATS, (WRITER_FORGET,))
    beat()
    start_thread(beat_on, "atlan-ext-writer-beat")
    atexit.register(ended)
    _ENDINGS.append(ended)  # also after exit's own stores (see end_beats)


#: Each beat's end, for :func:`end_beats`.
_ENDINGS: List[Callable[[], None]] = []


def end_beats() -> None:
    """End this process's beats now: exit calls it after its senders stored what they held,
    since a store at exit may begin a beat after the atexit hooks it would register ran."""
    for ended in list(_ENDINGS):
        ended()


def writer_lock(host: str, pid: int) -> Tuple[int, int]:
    """The advisory lock of process ``pid`` of ``host``: each of its sessions holds it shared
    while it lives (it ends with the session, after any statement the process had sent), and a
    recovery of its journal takes it exclusively (a collision of two writers only waits)."""
    key = zlib.crc32(f"{host}:{pid}".encode())
    return _WRITER_LOCKS, key - (1 << 32) if key >= 1 << 31 else key


def writer_key(pid: int) -> str:
    """The meta key this host's process ``pid`` beats under."""
    return f"writer:{HOST}:{pid}"


class Db:
    """A psycopg connection that takes the outbox's SQLite-style ``?`` placeholders."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @staticmethod
    def _sql(statement: str) -> str:
        return statement.replace("%", "%%").replace("?", "%s")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self.connection.execute(self._sql(statement), list(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self.connection.cursor() as cursor:
                cursor.executemany(self._sql(statement), rows)

    @property
    def broken(self) -> bool:
        return bool(self.connection.closed or self.connection.broken)

    def close(self) -> None:
        self.connection.close()


def stored(
    owner: str,
    event: Dict[str, Any],
    connector: str,
    lifecycle_state: Optional[str],
    claim: bool,
    now: float,
    delivered: bool = False,
    text: Optional[str] = None,
) -> Tuple[str, List[Any]]:
    """The statement storing ``event`` (with its run's record for a lifecycle event; the
    same rows as the SQLite outbox writes), and its parameters; ``owner`` claims it."""
    run_id = run_key(event["run"]["runId"])
    params: List[Any] = []
    if lifecycle_state is not None:
        params = run_row(event, connector, lifecycle_state, now)
    params += [
        run_id,
        event["eventType"],
        event["eventTime"],
        connector,
        text if text is not None else json.dumps(event, separators=(",", ":")),
        now,
        owner if claim else None,
        now + LEASE_SECONDS if claim else None,
        now if delivered else None,
        int(delivered),
    ]
    return (EVENT_INSERT if lifecycle_state is None else RUN_AND_EVENT_INSERT), params


def writer_alive(record: RunRecord, beats: Dict[str, str], now: float) -> bool:
    """True when the writer of ``record`` (on another host) beat within :data:`WRITER_GONE`
    seconds, and began beating before the run was recorded (else its pid was reused)."""
    value = beats.get(f"writer:{record.host}:{record.pid}", "")
    try:
        since, at = (float(part) for part in value.split())
    except ValueError:
        return False
    return since <= record.created and now - at <= WRITER_GONE


def open_schema(db: Db, lock: Tuple[int, int], shown: str, missing: Type[Exception]) -> None:
    """A new session's checks: its search_path is the outbox's schema (else OutboxError: a
    pooler dropped the startup options), the schema exists (created under an advisory lock
    when not; ``missing`` is the driver's UndefinedTable) and has this release's version.
    ``lock``, this process's writer lock, is taken shared; ``shown`` names the outbox."""
    try:
        path, _, schema, version = db.execute(_OPENED, lock).fetchone()
    except missing:
        _check_path(db.execute("SELECT current_setting('search_path')").fetchone()[0], shown)
        with db.connection.transaction():
            db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            found = db.execute("SELECT to_regclass('meta')").fetchone()
            if found is None or found[0] is None:
                for statement in statements("postgresql"):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO meta VALUES ('schema', ?), ('version', ?) ON CONFLICT DO NOTHING",
                    (SCHEMA_ID, SCHEMA_VERSION),
                )
        path, _, schema, version = db.execute(_OPENED, lock).fetchone()
    _check_path(path, shown)
    if schema != SCHEMA_ID:
        raise OutboxError(
            f"the schema {SCHEMA} of {shown} is not an atlan-ext outbox; it was left "
            "untouched: point ATLAN_EXT_OUTBOX at another database"
        )
    if version != SCHEMA_VERSION:
        raise OutboxError(
            f"the outbox {shown} has schema version {version}, this atlan-ext reads "
            f"{SCHEMA_VERSION}: upgrade atlan-ext"
        )


def _check_path(path: str, shown: str) -> None:
    """Refuse a session whose search_path is not the one its startup options set: a pooler
    (PgBouncer) drops those options, and the events would go to another schema's tables."""
    if path.replace('"', "").strip() != SCHEMA:
        raise OutboxError(
            f"the outbox {shown} is not usable through this connection: its search_path is "
            f"{path!r}, not {SCHEMA!r}, so the server did not get the connection's options "
            "(a pooler such as PgBouncer drops them); connect to PostgreSQL directly, or "
            f"behind a session-mode pooler run ALTER ROLE <user> SET search_path = {SCHEMA} "
            "(transaction-mode pooling is not supported: the outbox holds session locks)"
        )
