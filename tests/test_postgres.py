"""The outbox on PostgreSQL: chosen by a URL, the same guarantees as the SQLite file, shared by
writers on several "hosts" (separate ATLAN_EXT_HOMEs) and couriers sending at once.

The tests that need a server use ``ATLAN_EXT_TEST_POSTGRES`` (a URL of a database where the
user may create databases; ``.ci/run`` starts a server and sets it) and skip without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import Handler, Tenant
from conftest import serve as serve_on
from test_courier import arrived, free_port, wait_until
from test_outbox_schema import VERSION_1, round_trip

import atlan_ext._pg_sql as pg_sql
import atlan_ext.courier as courier_module
from atlan_ext.courier import drain, serve
from atlan_ext.exceptions import MissingDependencyError, OutboxError
from atlan_ext.send import Tenant as AtlanTenant
from atlan_ext.stores import open_outbox, redacted, service_running
from atlan_ext.transport import AtlanConfig

SERVER = os.environ.get("ATLAN_EXT_TEST_POSTGRES", "")
needs_server = pytest.mark.skipif(
    not SERVER,
    reason="no PostgreSQL server: set ATLAN_EXT_TEST_POSTGRES to a URL (.ci/run starts one)",
)


BEAT_THREAD = "atlan-ext-writer-beat"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _fresh_database() -> Iterator[str]:
    import psycopg

    name = f"atlan_ext_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield _with_database(SERVER, name)
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    yield from _fresh_database()


@pytest.fixture
def old_pg_url() -> Iterator[str]:
    """Another fresh database, for an outbox made as an older release made it."""
    yield from _fresh_database()


def event(kind: str, run_id: str, second: int) -> Dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": f"2026-12-03T10:00:{second:02d}Z",
        "run": {"runId": run_id},
        "job": {"namespace": "ol-demo", "name": "fleet"},
        "inputs": [],
        "outputs": [],
        "producer": "https://example.com/test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


class TestChoosingTheBackend:
    """A URL picks PostgreSQL; its password never shows."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("postgresql://u:s3cret@db:5432/lineage", "postgresql://u@db:5432/lineage"),
            ("postgresql://u@db/lineage", "postgresql://u@db/lineage"),
            ("postgres://u:s3cret@/x?host=/run/pg", "postgres://u@/x?host=/run/pg"),
            (
                "postgresql://u@db/x?password=s3cret&sslmode=require",
                "postgresql://u@db/x?sslmode=require",
            ),
            ("postgresql://u@db/x?password=s3cret", "postgresql://u@db/x"),
        ],
    )
    def test_the_password_is_cut_from_what_is_shown(self, url: str, shown: str) -> None:
        """redacted() and the transport's repr drop the password."""
        assert redacted(url) == shown
        assert "s3cret" not in repr(AtlanConfig(outbox=url))

    def test_no_psycopg_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without psycopg, a URL gets a typed error naming the extra, and no password."""
        monkeypatch.setitem(sys.modules, "psycopg", None)
        with pytest.raises(MissingDependencyError, match=r"atlan-ext\[postgres\]") as raised:
            open_outbox("postgresql://u:s3cret@127.0.0.1:1/db")
        assert "s3cret" not in str(raised.value)

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://u:s3cret%zz@127.0.0.1:1/db",  # libpq quotes it in its error
            "postgresql://u@127.0.0.1:1/db?password=s3cret%zz",
            "postgresql://u@127.0.0.1:1/db?password=s3cret&bogus=1",
        ],
    )
    def test_a_url_the_driver_refuses_is_an_outbox_error_without_the_password(
        self, url: str
    ) -> None:
        """A malformed URL or option: the driver's message is kept, its password blanked."""
        with pytest.raises(OutboxError) as raised:
            open_outbox(url)
        assert "s3cret" not in str(raised.value)
        assert "s3cret" not in repr(raised.value)

    def test_an_unreachable_server_is_an_outbox_error_without_the_password(self) -> None:
        """Nothing listens on port 1: OutboxError, naming where the password comes from."""
        with pytest.raises(OutboxError, match="PGPASSWORD") as raised:
            open_outbox("postgresql://u:s3cret@127.0.0.1:1/db")
        assert "s3cret" not in str(raised.value)


@needs_server
class TestPostgresOutbox:
    """The outbox's methods keep their meaning on PostgreSQL."""

    def test_events_of_a_run_go_in_order_across_handles(self, pg_url: str) -> None:
        """A second handle (another host) gets no COMPLETE while START is leased elsewhere."""
        first, second = open_outbox(pg_url), open_outbox(pg_url)
        run_id = str(uuid.uuid4())
        first.add(event("START", run_id, 1), "c", lifecycle_state="START")
        second.add(event("COMPLETE", run_id, 2), "c", lifecycle_state="COMPLETE")
        taken = first.claim_pending(1)
        assert [e.event_type for e in taken] == ["START"]
        assert second.claim_pending(10) == []
        first.mark_delivered([taken[0].id])
        assert [e.event_type for e in second.claim_pending(10)] == ["COMPLETE"]
        assert first.run(run_id) is not None
        assert first.counts() == (1, 1)

    def test_a_refused_event_leaves_nothing_and_the_handle_works(self, pg_url: str) -> None:
        """A check refusing inside the one-round-trip store rolls it back; the next goes in."""
        outbox, run_id = open_outbox(pg_url), str(uuid.uuid4())
        outbox.add(event("START", run_id, 1), "c", lifecycle_state="START")

        def refuse(state: Any) -> None:
            raise OutboxError(f"refused after {state}")

        with pytest.raises(OutboxError, match="refused after START"):
            outbox.add(event("COMPLETE", run_id, 2), "c", lifecycle_state="COMPLETE", check=refuse)
        seen: List[Any] = []
        outbox.add(
            event("FAIL", run_id, 3), "c", lifecycle_state="FAIL", check=seen.append, wait=1.0
        )
        assert seen == ["START"]
        assert [e.event_type for e in outbox.events(run_id)] == ["START", "FAIL"]
        record = outbox.run(run_id)
        assert record is not None
        assert record.state == "FAIL"

    def test_a_gone_session_frees_its_leases(self, pg_url: str) -> None:
        """A holder whose database session ended (a host killed) holds nothing, as soon as
        the server has ended the session (its backend leaves a moment after the client: on a
        busy machine, not by the next statement)."""
        gone, other = open_outbox(pg_url), open_outbox(pg_url)
        gone.add(event("START", str(uuid.uuid4()), 1), "c", lifecycle_state="START")
        assert len(gone.claim_pending(5)) == 1
        assert other.claim_pending(5) == []  # held while its session lives
        gone.close()
        assert wait_until(lambda: len(other.claim_pending(5)) == 1, 60)

    def test_a_foreign_schema_version_is_refused(self, pg_url: str) -> None:
        """An outbox written by another schema version is left untouched, with a typed error."""
        open_outbox(pg_url).close()
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute("UPDATE atlan_ext.meta SET value='9' WHERE key='version'")
        with pytest.raises(OutboxError, match="schema version 9"):
            open_outbox(pg_url)

    def test_the_cli_stores_in_the_shared_outbox(self, pg_url: str, tmp_path: Path) -> None:
        """ATLAN_EXT_OUTBOX=<url>: steps on two homes share one outbox; status sees both."""
        env = {**os.environ, "ATLAN_EXT_OUTBOX": pg_url, "ATLAN_EXT_COURIER": "off"}

        def step(home: str, *args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "atlan_ext.cli", *args],
                env={**env, "ATLAN_EXT_HOME": str(tmp_path / home)},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        run_id = step("a", "start", "--connection", "ol-demo", "--job", "j")
        step("b", "complete", "--run-id", run_id)
        types = [e.event_type for e in open_outbox(pg_url).events(run_id)]
        assert types == ["START", "COMPLETE"]
        assert "2 pending" in step("b", "status")


WRITER = textwrap.dedent(
    """
    import sys
    from atlan_ext import Job, start_run
    for _ in range(int(sys.argv[1])):
        run = start_run(Job("ol-demo", "fleet"), client="local")
        run.end()
        print(run.run_id, flush=True)
    """
)


@needs_server
class TestClosing:
    """A closed PostgreSQL outbox stays closed: its writer beat ends, nothing reconnects."""

    def test_the_beat_ends_and_no_session_comes_back(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After close(), the beat thread ends (found by review: it reconnected the handle
        every 5 s) and a use raises OutboxError; a second handle's open run beats again."""
        import psycopg

        monkeypatch.setattr(pg_sql, "WRITER_BEAT_SECONDS", 0.05)
        before = set(threading.enumerate())
        outbox = open_outbox(pg_url)
        outbox.add(event("START", str(uuid.uuid4()), 1), "c", lifecycle_state="START")
        beats = [t for t in threading.enumerate() if t.name == BEAT_THREAD and t not in before]
        assert len(beats) == 1
        name = "atlan-ext " + outbox.owner.rsplit(":", 1)[-1]

        def sessions() -> int:
            with psycopg.connect(pg_url, autocommit=True) as db:
                query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                return int(db.execute(query, (name,)).fetchone()[0])

        assert sessions() == 1
        outbox.close()
        assert wait_until(lambda: not beats[0].is_alive(), 60)
        assert sessions() == 0
        with pytest.raises(OutboxError, match="was closed"):
            outbox.counts()
        assert sessions() == 0
        other = open_outbox(pg_url)
        other.add(event("START", str(uuid.uuid4()), 2), "c", lifecycle_state="START")
        again = [t for t in threading.enumerate() if t.name == BEAT_THREAD and t not in before]
        assert [t for t in again if t.is_alive()] != []
        other.close()


HELD_WRITER = textwrap.dedent(
    """
    import time
    from atlan_ext import Job, start_run
    # Journaled on the job's thread; the sender stores it (claimed) before it sends it.
    run = start_run(Job("ol-demo", "held"), background=True)
    print(run.run_id, flush=True)
    time.sleep(600)
    """
)

# An INSERT of an event made before public.hold's time waits in the server: the writer's is
# in flight when it dies (the time is then set: a recovery's rows, made later, go through).
HOLD = """
CREATE TABLE public.hold (until float8);
INSERT INTO public.hold VALUES ('Infinity');
CREATE FUNCTION public.held() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WHILE EXISTS (SELECT 1 FROM public.hold WHERE NEW.created < until) LOOP
        PERFORM pg_sleep(0.02);
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER held BEFORE INSERT ON atlan_ext.events FOR EACH ROW
    EXECUTE FUNCTION public.held();
"""


@needs_server
class TestRecoveryAfterAKill:
    """A writer killed while its INSERT is in flight: the event is stored once."""

    def test_a_statement_committed_after_the_kill_is_not_stored_again(
        self, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The dead writer's session commits its INSERT while the host recovers its journal;
        the recovery waits for that session and stores nothing twice (found by review: it
        found no row, stored the event, and the session then committed it a second time)."""
        import psycopg

        from atlan_ext._postgres import PostgresOutbox

        open_outbox(pg_url).close()
        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute(HOLD.encode())
        home = tmp_path / "host"
        env = {
            **os.environ,
            "ATLAN_EXT_HOME": str(home),
            "ATLAN_EXT_OUTBOX": pg_url,
            "ATLAN_EXT_COURIER": "off",
            # A tenant that is down: the event is delivered by no one, only stored.
            "ATLAN_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "ATLAN_API_KEY": "key",
        }
        writer = subprocess.Popen(
            [sys.executable, "-c", HELD_WRITER], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert writer.stdout is not None
            run_id = writer.stdout.readline().strip()
            # The sender stores it once pyatlan is imported (minutes on a loaded machine).
            assert wait_until(lambda: _waiting(pg_url, "PgSleep") == 1, 600)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(60)
        assert list(home.glob("journal-pg-*/journal2-*.bin")) != []  # the START is journaled
        monkeypatch.setenv("ATLAN_EXT_HOME", str(home))
        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute("UPDATE public.hold SET until = %s", (time.time(),))
        # The host opens the outbox (a long wait: the release below comes first).
        recovery = threading.Thread(target=lambda: PostgresOutbox(pg_url, wait=120).close())
        recovery.start()
        try:  # it waits for the dead writer's session (or, unfixed, stores the event)
            assert wait_until(lambda: _waiting(pg_url, "Lock") == 1 or not recovery.is_alive(), 120)
        finally:
            with psycopg.connect(pg_url, autocommit=True) as db:
                db.execute("DELETE FROM public.hold")  # the dead writer's statement commits
            recovery.join(180)
        assert wait_until(lambda: _busy_sessions(pg_url) == 0, 60)  # and its session ends
        outbox = open_outbox(pg_url)
        stored = outbox.events(run_id)
        print(json.dumps({"killed": 1, "journaled": 1, "stored": len(stored)}))
        assert [e.event_type for e in stored] == ["START"]
        assert list(home.glob("journal-pg-*/journal2-*.bin")) == []
        outbox.close()


def _waiting(url: str, kind: str) -> int:
    """Sessions of the database waiting for ``kind`` (``PgSleep``: in public.held; ``Lock``:
    for a lock another session holds)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND (wait_event = %s OR wait_event_type = %s)",
            (kind, kind),
        ).fetchone()
        return int(row[0])


@needs_server
class TestFleet:
    """Writers on four "hosts" (killed at random) and two couriers share one outbox."""

    def test_nothing_lost_nothing_twice_in_order(
        self,
        pg_url: str,
        tmp_path: Path,
        loopback_tenant: Tenant,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Every stored event arrives once, each run's START before its end."""
        writers: List[Tuple[Path, subprocess.Popen[str]]] = []
        for number in range(4):
            home = tmp_path / f"host{number}"
            env = {
                **os.environ,
                "ATLAN_EXT_HOME": str(home),
                "ATLAN_EXT_OUTBOX": pg_url,
                "ATLAN_EXT_COURIER": "off",
            }
            process = subprocess.Popen(
                [sys.executable, "-c", WRITER, "300"],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            writers.append((home, process))
        killed = 0
        chooser = random.Random(20)
        for _home, process in writers[::2]:  # half the hosts lose their writer
            assert process.stdout is not None
            process.stdout.readline()  # it has started writing
            time.sleep(chooser.uniform(0.0, 0.5))
            process.send_signal(signal.SIGKILL)
            killed += 1
        finished: List[str] = []
        for _home, process in writers:
            process.wait(300)
        # A statement a killed writer had sent still commits: its session finishes it first.
        assert wait_until(lambda: _busy_sessions(pg_url) == 0, 60)
        for home, process in writers:
            out, _ = process.communicate(timeout=300)
            killed_here = process.returncode == -signal.SIGKILL
            # A killed writer's last printed run may not have its COMPLETE stored yet.
            # communicate() reads the pipe itself, past what readline() buffered: the first
            # id it sees may be the tail of one (whole ids only).
            whole = [run_id for run_id in out.split() if len(run_id) == 36]
            finished.extend(whole[: -1 if killed_here else None])
            # The host opening the outbox again takes in what its killed process journaled.
            monkeypatch.setenv("ATLAN_EXT_HOME", str(home))
            open_outbox(pg_url).close()
        written = open_outbox(pg_url).events()
        assert {e.run_id for e in written} >= set(finished)

        client = AtlanTenant(loopback_tenant.base_url, "key", 10.0).client()
        loopback_tenant.delay = 0.005
        results: List[Any] = []

        def courier() -> None:
            results.append(drain(client, open_outbox(pg_url), seconds=240, linger=1.0))

        couriers = [threading.Thread(target=courier) for _ in range(2)]
        for thread in couriers:
            thread.start()
        for thread in couriers:
            thread.join(300)
        got = arrived(loopback_tenant)
        keys = [(e["run"]["runId"], e["eventType"], e["eventTime"]) for e in got]
        duplicates = len(keys) - len(set(keys))
        order: Dict[str, List[str]] = {}
        for run_id, kind, _ in keys:
            order.setdefault(run_id, []).append(kind)
        out_of_order = sum(1 for kinds in order.values() if kinds[0] != "START")
        report = {
            "writers": len(writers),
            "killed": killed,
            "written": len(written),
            "finished_runs": len(finished),
            "delivered": len(got),
            "duplicates": duplicates,
            "out_of_order": out_of_order,
        }
        print(json.dumps(report))
        assert open_outbox(pg_url).counts() == (0, len(written))
        assert len(got) == len(written)
        assert duplicates == 0
        assert out_of_order == 0
        assert all(len(order[run_id]) == 2 for run_id in finished)


def _busy_sessions(url: str) -> int:
    """Sessions of the database still running a statement (this one's own excepted)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


class _TimedHandler(Handler):
    def do_POST(self) -> None:
        self.server.times.append(time.monotonic())  # type: ignore[attr-defined]
        super().do_POST()


@pytest.fixture
def timed_tenant() -> Iterator[Tenant]:
    """The loopback tenant, also noting when each request arrived."""
    server = Tenant()
    server.RequestHandlerClass = _TimedHandler
    server.times = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def store_runs(url: str, count: int) -> None:
    outbox = open_outbox(url)
    for _ in range(count):
        run_id = str(uuid.uuid4())
        outbox.add(event("START", run_id, 1), "spark", lifecycle_state="START")
        outbox.add(event("COMPLETE", run_id, 2), "spark", lifecycle_state="COMPLETE")
    outbox.close()


def peak_per_second(times: List[float]) -> int:
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


@needs_server
class TestSharedBudget:
    """Couriers on one outbox share the tenant's request budget and its 429 pauses."""

    def test_two_couriers_keep_one_rate(self, pg_url: str, timed_tenant: Tenant) -> None:
        """Two couriers at 600 requests a minute together: 60 requests take about 6 s, never
        more than 10 a second (measured on arrival, where a request that left late lands
        beside the next: a little slack for that on a busy machine)."""
        store_runs(pg_url, 30)
        client = AtlanTenant(timed_tenant.base_url, "key", 10.0).client()

        def courier() -> None:
            drain(client, open_outbox(pg_url), seconds=120, batch_size=1, rate_limit=600)

        threads = [threading.Thread(target=courier) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        times: List[float] = timed_tenant.times  # type: ignore[attr-defined]
        assert len(times) == 60
        assert times[-1] - times[0] >= 5.0  # 59 gaps of 0.1 s (unlimited: well under 1 s)
        assert peak_per_second(times) <= 13
        assert open_outbox(pg_url).counts() == (0, 60)

    def test_a_429_pauses_every_courier(
        self, pg_url: str, timed_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After a 429 (pyatlan's own retry answered 429 too) nothing is sent for the pause,
        by either courier; then everything goes."""
        monkeypatch.setattr(courier_module, "TOO_MANY_PAUSE", 2.0)
        store_runs(pg_url, 5)
        timed_tenant.script = [429] * 4
        client = AtlanTenant(timed_tenant.base_url, "key", 10.0).client()
        lines: List[str] = []

        def courier() -> None:
            drain(
                client,
                open_outbox(pg_url),
                seconds=120,
                batch_size=1,
                rate_limit=6000,
                say=lines.append,
            )

        threads = [threading.Thread(target=courier) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        received = timed_tenant.received
        times: List[float] = timed_tenant.times  # type: ignore[attr-defined]
        last_429 = max(t for t, r in zip(times, received) if r[3] == 429)
        first_429 = min(t for t, r in zip(times, received) if r[3] == 429)
        accepted = [t for t, r in zip(times, received) if r[3] == 202]
        assert any("429" in line for line in lines)
        assert all(t >= first_429 + 1.5 or t < first_429 for t in accepted)
        assert len(accepted) == 10
        assert last_429 < min(accepted)


@needs_server
class TestCourierService:
    """`atlan-lineage courier` serves until SIGTERM; workers leave delivery to it."""

    def test_serves_then_exits_0_on_sigterm(
        self, pg_url: str, loopback_tenant: Tenant, tmp_path: Path
    ) -> None:
        """It delivers what is stored, workers see it running, SIGTERM ends it with 0."""
        store_runs(pg_url, 10)
        env = {
            **os.environ,
            "ATLAN_BASE_URL": loopback_tenant.base_url,
            "ATLAN_API_KEY": "key",
            "ATLAN_EXT_HOME": str(tmp_path / "service"),
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "atlan_ext.cli", "courier", "--outbox", pg_url],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            watcher = open_outbox(pg_url)
            assert wait_until(lambda: watcher.counts() == (0, 20), 120)
            assert wait_until(lambda: service_running(redacted(pg_url)), 60)
        finally:
            service.send_signal(signal.SIGTERM)
            _, errors = service.communicate(timeout=120)
        assert service.returncode == 0, errors
        assert "serving" in errors
        assert errors.strip().endswith("stopped")
        assert len(arrived(loopback_tenant)) == 20


RESTART = os.environ.get("ATLAN_EXT_TEST_POSTGRES_RESTART", "")


@needs_server
@pytest.mark.skipif(
    not RESTART, reason="set ATLAN_EXT_TEST_POSTGRES_RESTART to a command restarting the server"
)
class TestServerRestart:
    """The database restarting mid-delivery loses nothing, and delivery resumes by itself."""

    def test_delivery_resumes_after_a_restart(self, pg_url: str, loopback_tenant: Tenant) -> None:
        """A courier service keeps going through a restart; every event arrives, in order."""
        store_runs(pg_url, 40)
        loopback_tenant.delay = 0.02
        stop = threading.Event()
        lines: List[str] = []
        tenant = AtlanTenant(loopback_tenant.base_url, "key", 10.0)
        service = threading.Thread(
            target=serve,
            args=(tenant, open_outbox(pg_url)),
            kwargs={"rate_limit": 6000, "batch_size": 1, "stop": stop, "say": lines.append},
        )
        service.start()
        try:
            assert wait_until(lambda: len(loopback_tenant.received) >= 5, 120)
            subprocess.run(
                RESTART,
                shell=True,
                check=True,
                stdout=subprocess.DEVNULL,  # the server started again must not hold our pipes
                stderr=subprocess.DEVNULL,
                timeout=120,
            )
            watcher = open_outbox(pg_url)
            assert wait_until(lambda: watcher.counts() == (0, 80), 60), (lines, watcher.counts())
        finally:
            stop.set()
            service.join(120)
        keys = [(e["run"]["runId"], e["eventType"]) for e in arrived(loopback_tenant)]
        assert len(set(keys)) == 80  # nothing lost (a resend after the restart is allowed)
        firsts: Dict[str, str] = {}
        for run_id, kind in keys:
            firsts.setdefault(run_id, kind)
        assert set(firsts.values()) == {"START"}
        assert any("cannot be used" in line for line in lines)
        print(json.dumps({"restart_delivered": len(keys), "duplicates": len(keys) - 80}))


PASSWORD_WORKER = textwrap.dedent(
    """
    import sys
    from atlan_ext import Job, start_run
    from atlan_ext.send import Tenant
    from atlan_ext.stores import open_outbox
    client = Tenant(sys.argv[2], "key", 5.0).client()
    run = start_run(Job("ol-demo", "password"), client=client, outbox=open_outbox(sys.argv[1]))
    run.end()
    """
)


def _couriers_of(home: Path) -> List[int]:
    """The ids of courier processes started for ``home`` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"atlan_ext.courier" in command and f"ATLAN_EXT_HOME={home}".encode() in environ:
            found.append(int(entry.name))
    return found


@needs_server
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
class TestPasswordInTheUrlOnly:
    """A password given only in ``outbox=`` reaches the courier a worker leaves behind."""

    def test_the_spawned_courier_gets_it_in_its_environment_and_delivers(
        self, pg_url: str, tmp_path: Path
    ) -> None:
        """Atlan is down while the worker runs; its courier holds PGPASSWORD (not on its
        command line, not in its log) and delivers once Atlan answers."""
        import socket

        import psycopg

        role, secret = f"atlan_ext_pw_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
        parts = urlsplit(pg_url)
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
            admin.execute(f"ALTER DATABASE {parts.path.lstrip('/')} OWNER TO {role}")
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, f"{role}:{secret}@{host}", parts.path, parts.query, ""))
        with socket.socket() as probe:  # a port where Atlan is not answering yet
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        home = tmp_path / "worker"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ATLAN_", "PG"))}
        env.update(ATLAN_EXT_HOME=str(home))
        tenant = None
        try:
            done = subprocess.run(
                [sys.executable, "-c", PASSWORD_WORKER, url, f"http://127.0.0.1:{port}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stderr
            assert secret not in done.stderr
            assert wait_until(lambda: len(_couriers_of(home)) == 1, 60)
            courier = _couriers_of(home)[0]
            environ = Path(f"/proc/{courier}/environ").read_bytes().split(b"\0")
            assert f"PGPASSWORD={secret}".encode() in environ
            assert secret.encode() not in Path(f"/proc/{courier}/cmdline").read_bytes()
            tenant = serve_on(port)
            assert wait_until(lambda: len(arrived(tenant)) == 2, 180)
            watcher = open_outbox(pg_url)
            assert wait_until(lambda: watcher.counts() == (0, 2), 60)
        finally:
            if tenant is not None:
                tenant.shutdown()
                tenant.server_close()
        assert [e["eventType"] for e in arrived(tenant)] == ["START", "COMPLETE"]
        for written in home.rglob("*"):
            if written.is_file():
                assert secret.encode() not in written.read_bytes(), written


@needs_server
class TestUrlOptions:
    """Options in the URL (e.g. synchronous_commit) are kept beside the outbox's own."""

    def test_the_urls_options_reach_the_session(self, pg_url: str) -> None:
        """A URL asking for read-only sessions gets them: storing fails with a typed error."""
        open_outbox(pg_url).close()  # the schema exists
        separator = "&" if "?" in pg_url else "?"
        with pytest.raises(OutboxError, match="read-only"):
            outbox = open_outbox(f"{pg_url}{separator}options=-cdefault_transaction_read_only%3Don")
            outbox.add(event("START", str(uuid.uuid4()), 1), "c", lifecycle_state="START")


ELSEWHERE = textwrap.dedent(
    """
    import socket, sys, time
    socket.gethostname = lambda: sys.argv[2]  # this process plays a host of its own
    from atlan_ext import Job, start_run
    from atlan_ext.stores import open_outbox
    run = start_run(Job("ol-demo", "long"), client="local", outbox=open_outbox(sys.argv[1]))
    print(run.run_id, flush=True)
    time.sleep(600)
    """
)

STEP_ELSEWHERE = textwrap.dedent(
    """
    import socket, sys
    socket.gethostname = lambda: sys.argv[1]
    from atlan_ext.cli import main
    sys.exit(main(["start", "--connection", "ol-demo", "--job", "steps"]))
    """
)


@needs_server
class TestOrphansAcrossHosts:
    """close-orphans judges a run of another host by its writer's beat, not by a local pid."""

    def _writer(self, pg_url: str, home: Path) -> Tuple[subprocess.Popen[str], str]:
        """A process playing "host-b" that holds a run open; and that run's id."""
        writer = subprocess.Popen(
            [sys.executable, "-c", ELSEWHERE, pg_url, "host-b"],
            env={**os.environ, "ATLAN_EXT_COURIER": "off", "ATLAN_EXT_HOME": str(home)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        return writer, writer.stdout.readline().strip()

    def test_a_live_writer_elsewhere_is_no_orphan(self, pg_url: str, tmp_path: Path) -> None:
        """A run held open on "host-b" is not an orphan (even at age 0) while its writer
        lives; a step run of "host-c" is judged by age."""
        writer, _held = self._writer(pg_url, tmp_path / "b")
        try:
            step = subprocess.run(
                [sys.executable, "-c", STEP_ELSEWHERE, "host-c"],
                env={
                    **os.environ,
                    "ATLAN_EXT_COURIER": "off",
                    "ATLAN_EXT_HOME": str(tmp_path / "c"),
                    "ATLAN_EXT_OUTBOX": pg_url,
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert step.returncode == 0, step.stderr
            stepped = step.stdout.strip()
            outbox = open_outbox(pg_url)
            assert {r.host for r in outbox.runs()} == {"host-b", "host-c"}
            assert [r.run_id for r in outbox.orphans(0)] == [stepped]
            assert outbox.orphans(3600) == []
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(60)

    @pytest.mark.slow  # the beat goes stale 15 s after the kill (three missed beats)
    def test_a_writer_elsewhere_killed_is_an_orphan_once_its_beat_is_stale(
        self, pg_url: str, tmp_path: Path
    ) -> None:
        """Killed -9, the writer of "host-b" stops beating: its open run becomes an orphan
        (judged by the beat, not by a local pid), and its process is not said to live."""
        writer, held = self._writer(pg_url, tmp_path / "b")
        outbox = open_outbox(pg_url)
        assert outbox.orphans(0) == []
        writer.send_signal(signal.SIGKILL)
        writer.wait(60)
        assert wait_until(lambda: [r.run_id for r in outbox.orphans(0)] == [held], 120)
        assert [r.run_id for r in outbox.orphans(0) if r.process_alive] == []


def postgres_shape(url: str) -> Dict[str, List[Tuple[Any, ...]]]:
    """The columns and index definitions of the schema ``atlan_ext``, as PostgreSQL tells."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        return {
            "columns": db.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default"
                " FROM information_schema.columns WHERE table_schema='atlan_ext'"
                " ORDER BY table_name, ordinal_position"
            ).fetchall(),
            "indexes": db.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE schemaname='atlan_ext' ORDER BY indexname"
            ).fetchall(),
        }


@needs_server
class TestSchema:
    """A new PostgreSQL outbox has the version-1 schema (the one definition in _schema.py
    rendered for PostgreSQL), and a version-1 one opens. Here, not in test_outbox_schema.py:
    this file's tests share one worker, and one of them restarts the server."""

    def test_a_new_database_has_the_version_1_schema(self, pg_url: str, old_pg_url: str) -> None:
        """Columns, types, defaults and index definitions match version 1's."""
        import psycopg

        with psycopg.connect(old_pg_url, autocommit=True) as db:
            db.execute(VERSION_1["postgresql"].encode())
        open_outbox(pg_url).close()
        assert postgres_shape(pg_url) == postgres_shape(old_pg_url)
        round_trip(open_outbox(old_pg_url))


# -- a loopback stand-in for what sits between a client and the server -------------------------

_SSL_OR_GSS = (80877103, 80877104)  # requests for encryption: answered "N" (not here)
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


class WireTap:
    """A TCP proxy on 127.0.0.1 in front of the test server that reads the protocol a client
    speaks: the text of every statement it runs, in order (``Q`` and ``E`` messages), and,
    with ``drop_options``, the ``options`` startup parameter left out, as PgBouncer does."""

    def __init__(self, server: str, *, drop_options: bool = False) -> None:
        import psycopg

        self.drop_options = drop_options
        self.statements: List[str] = []
        self.open = threading.Event()  # cleared: what clients send waits here (a stalled server)
        self.open.set()
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        found = psycopg.conninfo.conninfo_to_dict(server)
        host, port = str(found.get("host") or "/tmp"), int(found.get("port") or 5432)
        self._upstream: Any = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str) -> str:
        """``database_url`` (user, password, database) reached through this proxy."""
        parts = urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        return f"postgresql://{user}@127.0.0.1:{self.port}{parts.path}?sslmode=disable"

    def run(self, *, control: bool = False) -> List[str]:
        """The statements run since the last call; transaction control left out unless
        ``control``."""
        with self._lock:
            taken, self.statements = self.statements, []
        return [text for text in taken if control or not text.strip().upper().startswith(_CONTROL)]

    def close(self) -> None:
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        family = socket.AF_UNIX if isinstance(self._upstream, str) else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        self._sockets += [client, server]
        with contextlib.suppress(OSError, ConnectionError):
            server.connect(self._upstream)
            while True:
                size = int.from_bytes(_read_exactly(client, 4), "big")
                body = _read_exactly(client, size - 4)
                if int.from_bytes(body[:4], "big") not in _SSL_OR_GSS:
                    break
                client.sendall(b"N")
            if int.from_bytes(body[:4], "big") == 196608:  # protocol 3.0: a startup packet
                pieces = body[4:].split(b"\0")
                pairs = list(zip(pieces[0::2], pieces[1::2]))
                kept = [
                    (k, v) for k, v in pairs if k and not (self.drop_options and k == b"options")
                ]
                body = body[:4] + b"".join(k + b"\0" + v + b"\0" for k, v in kept) + b"\0"
            server.sendall((len(body) + 4).to_bytes(4, "big") + body)
            threading.Thread(target=self._copy, args=(server, client), daemon=True).start()
            self._read_messages(client, server)
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _read_messages(self, client: socket.socket, server: socket.socket) -> None:
        prepared: Dict[bytes, str] = {}
        portals: Dict[bytes, str] = {}
        while True:
            head = _read_exactly(client, 5)
            body = _read_exactly(client, int.from_bytes(head[1:], "big") - 4)
            kind, fields = head[:1], body.split(b"\0")
            if kind == b"P":  # Parse: statement name, query
                prepared[fields[0]] = fields[1].decode()
            elif kind == b"B":  # Bind: portal, statement name
                portals[fields[0]] = prepared.get(fields[1], "?")
            elif kind in (b"E", b"Q"):  # Execute a portal; a simple query
                text = portals.get(fields[0], "?") if kind == b"E" else fields[0].decode()
                with self._lock:
                    self.statements.append(text)
            self.open.wait()
            server.sendall(head + body)


@pytest.fixture
def tap() -> Iterator[WireTap]:
    """A proxy that reads the statements its clients run."""
    proxy = WireTap(SERVER)
    yield proxy
    proxy.close()


@pytest.fixture
def pooler() -> Iterator[WireTap]:
    """A proxy that drops the ``options`` startup parameter, as PgBouncer does."""
    proxy = WireTap(SERVER, drop_options=True)
    yield proxy
    proxy.close()


def _tables_in_public(url: str) -> List[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall()
    return sorted(row[0] for row in rows)


@needs_server
class TestStatements:
    """A batch costs a few statements on PostgreSQL, whatever its size (read off the wire)."""

    def test_a_courier_batch_of_100_is_a_few_statements(self, pg_url: str, tap: WireTap) -> None:
        """Claiming and marking 100 events: no statement per event (204 before, 5 now)."""
        outbox = open_outbox(tap.url(pg_url))
        assert outbox.claim_pending(100) == []  # its first look for dead claims, done
        runs = [str(uuid.uuid4()) for _ in range(50)]
        outbox.add_many(
            [
                (event(kind, run_id, 1), "c", kind)
                for run_id in runs
                for kind in ("START", "COMPLETE")
            ]
        )
        tap.run()
        taken = outbox.claim_pending(100)
        outbox.mark_delivered([e.id for e in taken[:60]])
        outbox.mark_failed([e.id for e in taken[60:80]], "boom")
        outbox.release([e.id for e in taken[80:]])
        run = tap.run()
        assert len(taken) == 100
        assert outbox.counts() == (40, 60)
        assert len([text for text in run if text.lstrip().upper().startswith("UPDATE")]) == 4
        assert len(run) <= 8, run  # lease: SET, SELECT, SELECT, UPDATE; each mark: one UPDATE

    def test_opening_an_existing_outbox_takes_no_exclusive_lock(
        self, pg_url: str, tap: WireTap
    ) -> None:
        """The schema exists: one statement checks it (and a read of when it was pruned)."""
        open_outbox(tap.url(pg_url)).close()
        tap.run()
        open_outbox(tap.url(pg_url)).close()
        run = tap.run()
        assert not [text for text in run if "xact_lock" in text or "CREATE" in text], run
        assert len(run) == 2, run

    def test_the_writers_beat_is_one_statement_without_a_transaction(
        self, pg_url: str, tap: WireTap
    ) -> None:
        """Storing a START begins this process's beat: its statements run with no BEGIN."""
        outbox = open_outbox(tap.url(pg_url))
        tap.run()
        outbox.add(event("START", str(uuid.uuid4()), 1), "c", lifecycle_state="START")
        sent = tap.run(control=True)
        assert any("writer:" in text or "INSERT INTO meta" in text for text in sent), sent
        assert not [text for text in sent if text.strip().upper().startswith(_CONTROL)], sent


@needs_server
class TestPoolers:
    """A pooler that drops the connection's options (PgBouncer) is refused, not written
    through to another schema."""

    def test_a_new_outbox_behind_a_pooler_is_refused(self, pg_url: str, pooler: WireTap) -> None:
        """No schema yet: a typed error naming the cause and the fix; nothing created."""
        with pytest.raises(OutboxError, match=r"search_path.*pooler.*PgBouncer") as raised:
            open_outbox(pooler.url(pg_url))
        assert "connect to PostgreSQL directly" in str(raised.value)
        assert _tables_in_public(pg_url) == []

    def test_an_existing_outbox_behind_a_pooler_is_refused(
        self, pg_url: str, pooler: WireTap
    ) -> None:
        """The schema exists: still refused, and no event goes to another schema."""
        open_outbox(pg_url).close()
        with pytest.raises(OutboxError, match="search_path"):
            outbox = open_outbox(pooler.url(pg_url))
            outbox.add(event("START", str(uuid.uuid4()), 1), "c", lifecycle_state="START")
        assert _tables_in_public(pg_url) == []

    def test_the_roles_search_path_is_the_fix(self, pg_url: str, pooler: WireTap) -> None:
        """With the role's search_path set in that database (the fix the error names), the
        same pooler works and the events land in the outbox's schema."""
        import psycopg

        open_outbox(pg_url).close()
        with psycopg.connect(pg_url, autocommit=True) as db:
            name = db.execute("SELECT current_database()").fetchone()[0]
            db.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {name} SET search_path = atlan_ext")
        outbox = open_outbox(pooler.url(pg_url))
        outbox.add(event("START", str(uuid.uuid4()), 1), "c", lifecycle_state="START")
        assert open_outbox(pg_url).counts() == (1, 0)
        assert _tables_in_public(pg_url) == []


NO_TENANT_WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from atlan_ext import Job, start_run
    from atlan_ext.stores import open_outbox
    outbox = open_outbox(sys.argv[1])
    for n in range(3):
        with start_run(Job("ol-demo", f"job-{n}"), client="local", outbox=outbox):
            pass
    print("ran", flush=True)
    if sys.argv[2] == "wait":
        time.sleep(600)
    """
)


@needs_server
class TestNoTenantWorker:
    """A worker with no tenant (a courier service delivers) hands its events off through the
    journal, as one with a tenant does: they are in the outbox once it ends, however."""

    def _worker(self, pg_url: str, home: Path, mode: str) -> subprocess.Popen[str]:
        env = {**os.environ, "ATLAN_EXT_COURIER": "off", "ATLAN_EXT_HOME": str(home)}
        worker = subprocess.Popen(
            [sys.executable, "-c", NO_TENANT_WORKER, pg_url, mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ran"
        return worker

    def test_normal_exit_and_sigterm_leave_every_event_stored(
        self, pg_url: str, tmp_path: Path
    ) -> None:
        """Six events a worker, stored by exit (normal or SIGTERM); nothing said of replay."""
        done = self._worker(pg_url, tmp_path / "a", "exit")
        _out, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        assert "replay" not in err, err
        assert "not delivered" not in err, err
        assert open_outbox(pg_url).counts() == (6, 0)
        termed = self._worker(pg_url, tmp_path / "b", "wait")
        termed.send_signal(signal.SIGTERM)
        _out, err = termed.communicate(timeout=120)
        assert "not delivered" not in err, err
        assert open_outbox(pg_url).counts() == (12, 0)

    def test_kill_9_keeps_the_events_for_the_host_s_next_open(
        self, pg_url: str, tmp_path: Path
    ) -> None:
        """Killed at once after its runs: the events stored by the sender, or else in the
        journal, which the same host takes in when it next opens the outbox."""
        killed = self._worker(pg_url, tmp_path / "k", "wait")
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        later = self._worker(pg_url, tmp_path / "k", "exit")  # the same host opens it again
        _out, err = later.communicate(timeout=120)
        assert later.returncode == 0, err
        assert open_outbox(pg_url).counts() == (12, 0)

    def test_a_run_does_not_wait_for_the_server(
        self, pg_url: str, tap: WireTap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The server stalls (the tap holds what the client sends): a no-tenant run still ends
        at once (one journal append on its thread), and its events are stored once the
        server answers. Before, each event was committed on the job's thread: it waited."""
        from atlan_ext import Job, start_run

        monkeypatch.setenv("ATLAN_EXT_HOME", str(tmp_path))
        monkeypatch.setenv("ATLAN_EXT_COURIER", "off")
        outbox = open_outbox(tap.url(pg_url))
        ended = threading.Event()

        def job() -> None:
            with start_run(Job("ol-demo", "stalled"), client="local", outbox=outbox):
                pass
            ended.set()

        tap.open.clear()
        try:
            threading.Thread(target=job, daemon=True).start()
            assert ended.wait(10)
        finally:
            tap.open.set()
        assert wait_until(lambda: outbox.counts() == (2, 0), 120)
