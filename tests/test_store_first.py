"""Store first, one courier: the rows of the delivery issue, each through real processes and
the public API (a loopback tenant, a socket that never answers, a closed port)."""

from __future__ import annotations

import concurrent.futures
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from conftest import Tenant
from test_courier import wait_until
from test_faults import KEY, child_env, free_port, hanging_tenant, lineage_cli, python

from atlan_ext import RunId
from atlan_ext.outbox import Outbox


def kept(home: Path) -> List[Any]:
    return Outbox(home / "outbox.db").events()


def arrived(tenant: Tenant) -> List[Dict[str, Any]]:
    """Every event the tenant accepted (202), in the order it accepted them."""
    return [
        event
        for _, _, body, status in list(tenant.received)
        if status == 202
        for event in (body if isinstance(body, list) else [body])
    ]


def eventually(check: Callable[[], bool]) -> bool:
    """True as soon as ``check()`` is (generous: a courier imports pyatlan first, which can
    take 30 s on a busy machine)."""
    return wait_until(check, 180.0)


@pytest.mark.slow
class TestNothingDropped:
    @pytest.mark.parametrize("tenant_kind", ["hanging", "refused"])
    def test_thirty_thousand_background_runs_then_a_normal_exit(
        self, tmp_path: Path, tenant_kind: str
    ) -> None:
        """30,000 background runs against a tenant that hangs (or refuses), then a normal
        exit: all 60,000 events are kept, and stderr does not blame the outbox."""
        code = """
            from atlan_ext import Job, lineage_run
            job = Job("ol-spark", "many")
            for _ in range(30_000):
                with lineage_run(job, background=True, delivery_timeout=1):
                    pass
            print("done", flush=True)
        """

        def run(url: str) -> subprocess.CompletedProcess[str]:
            return python(
                code,
                tmp_path,
                timeout=600,
                ATLAN_BASE_URL=url,
                ATLAN_API_KEY=KEY,
                ATLAN_EXT_COURIER="off",
            )

        if tenant_kind == "hanging":
            with hanging_tenant() as url:
                done = run(url)
        else:
            done = run(f"http://127.0.0.1:{free_port()}")
        assert done.returncode == 0, done.stderr
        assert "done" in done.stdout
        assert "neither the outbox" not in done.stderr
        assert "dropped" not in done.stderr
        pending, delivered = Outbox(tmp_path / "outbox.db").counts()
        assert (pending, delivered) == (60_000, 0)
        assert "were not delivered" in done.stderr


SIGTERM_LOOP = """
import sys, time
from atlan_ext import Job, lineage_run
background = sys.argv[1] == "background"
job = Job("ol-spark", "terminated")
print("ready", flush=True)
while True:
    with lineage_run(job, background=background):
        time.sleep(0.001)
"""


class TestSigterm:
    # Each trial is two fresh processes importing pyatlan (the loop, then its courier): the
    # suite runs 4 trials of the background loop, .ci/run's slow stage 50 of each mode.
    @pytest.mark.parametrize(
        ("trials", "mode"),
        [
            (4, "background"),
            pytest.param(50, "sync", marks=pytest.mark.slow),
            pytest.param(50, "background", marks=pytest.mark.slow),
        ],
        ids=["4-background", "50-sync", "50-background"],
    )
    def test_sigterm_at_random_moments_loses_no_abort_and_never_reorders(
        self, tmp_path: Path, loopback_tenant: Tenant, mode: str, trials: int
    ) -> None:
        """SIGTERM at a random moment into a loop of runs, Atlan healthy, several trials: the
        process dies of SIGTERM, and what reaches Atlan (the process's own sends, then the
        courier's) has every run START first, and the interrupted run's ABORT after its
        START."""
        rng = random.Random(19)

        def trial(number: int) -> None:
            home = tmp_path / f"trial{number}"
            process = subprocess.Popen(
                [sys.executable, "-c", SIGTERM_LOOP, mode],
                env=child_env(home, ATLAN_BASE_URL=loopback_tenant.base_url, ATLAN_API_KEY=KEY),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.4))
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=120) == -signal.SIGTERM
            # Everything the process made is delivered: by itself, or by the courier.
            log = home / "courier.log"
            assert eventually(lambda: Outbox(home / "outbox.db").counts()[0] == 0), (
                log.read_text() if log.exists() else "no courier log"
            )

        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # independent processes
            for future in [pool.submit(trial, number) for number in range(trials)]:
                future.result()
        runs: Dict[str, List[str]] = {}
        for event in arrived(loopback_tenant):
            runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
        assert runs
        aborted = 0
        for types in runs.values():
            first = [t for i, t in enumerate(types) if t not in types[:i]]  # duplicates: once
            assert first[0] == "START", types
            terminal = [t for t in first if t in ("COMPLETE", "ABORT", "FAIL")]
            assert len(terminal) == 1, types
            aborted += terminal == ["ABORT"]
        # A SIGTERM that lands between two runs finds no open run (and SIGTERM's default
        # action back): nothing to abort. Most land inside one.
        assert aborted >= trials // 2


STRICT_AFTER_FAILURE = """
import sys
from atlan_ext import Job, LineageDeliveryError, lineage_run
job = Job("ol-spark", "strict")
with lineage_run(job, delivery_timeout=float(sys.argv[1])):
    pass
raised = 0
for _ in range(3):
    try:
        with lineage_run(job, strict=True, delivery_timeout=float(sys.argv[1])):
            print("body ran", flush=True)
    except LineageDeliveryError as error:
        raised += 1
print(f"raised {raised}", flush=True)
"""


class TestStrict:
    @pytest.mark.parametrize(
        "answer",
        [
            503,
            pytest.param(500, marks=pytest.mark.slow),
            pytest.param(429, marks=pytest.mark.slow),
            401,
            pytest.param("refused", marks=pytest.mark.slow),
            pytest.param("hanging", marks=pytest.mark.slow),
        ],
    )
    def test_strict_raises_after_an_earlier_failure_every_time(
        self, tmp_path: Path, loopback_tenant: Tenant, answer: Any
    ) -> None:
        """After an earlier failed send in the same process, every strict START that is not
        delivered raises (the block never runs), whatever the failure was."""

        def run(url: str, timeout: str = "10") -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-c", STRICT_AFTER_FAILURE, timeout],
                env=child_env(
                    tmp_path, ATLAN_BASE_URL=url, ATLAN_API_KEY=KEY, ATLAN_EXT_COURIER="off"
                ),
                capture_output=True,
                text=True,
                timeout=300,
            )

        if answer == "refused":
            done = run(f"http://127.0.0.1:{free_port()}")
        elif answer == "hanging":
            with hanging_tenant() as url:
                done = run(url, "3")
        else:
            loopback_tenant.script.extend([int(answer)] * 1000)
            done = run(loopback_tenant.base_url)
        assert done.returncode == 0, done.stderr
        assert "body ran" not in done.stdout
        assert "raised 3" in done.stdout


class TestStepsWithoutAnOutbox:
    def test_steps_on_a_read_only_outbox_deliver(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """With no usable outbox, start sends its START itself (and prints the run id only
        once Atlan took it); complete, given the job, sends COMPLETE: both arrive."""
        home = tmp_path / "steps"
        home.mkdir()
        (home / "outbox.db").mkdir()  # a folder where the file should be: unusable
        job = ["--connection", "ol-spark", "--job", "steps", "--timeout", "120"]
        tenant = {"ATLAN_BASE_URL": loopback_tenant.base_url, "ATLAN_API_KEY": KEY}
        started = lineage_cli("start", *job, home=home, **tenant)
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        completed = lineage_cli("complete", "--run-id", run_id, *job, home=home, **tenant)
        assert completed.returncode == 0, completed.stderr
        types = [e["eventType"] for e in arrived(loopback_tenant) if e["run"]["runId"] == run_id]
        assert types == ["START", "COMPLETE"]

    def test_start_fails_when_atlan_does_not_take_it(self, tmp_path: Path) -> None:
        """No usable outbox and no tenant answering: start exits 1 and prints no run id."""
        home = tmp_path / "steps"
        home.mkdir()
        (home / "outbox.db").mkdir()
        started = lineage_cli(
            "start",
            "--connection",
            "ol-spark",
            "--job",
            "steps",
            "--timeout",
            "5s",
            home=home,
            ATLAN_BASE_URL=f"http://127.0.0.1:{free_port()}",
            ATLAN_API_KEY=KEY,
        )
        assert started.returncode == 1
        assert started.stdout.strip() == ""
        assert "Traceback" not in started.stderr

    @pytest.mark.parametrize("command", ["start", "complete"])
    def test_neither_an_outbox_nor_a_tenant_fails_before_anything_is_made(
        self, command: str, tmp_path: Path
    ) -> None:
        """No usable outbox and no tenant: the event could be neither kept nor sent. The
        command says so and exits 1, printing no run id (it printed one, and the event was
        gone with the process)."""
        home = tmp_path / "steps"
        home.mkdir()
        (home / "outbox.db").mkdir()
        given = ["--run-id", RunId.new()] if command == "complete" else []
        done = lineage_cli(command, "--connection", "ol-spark", "--job", "steps", *given, home=home)
        assert done.returncode == 1, done.stderr
        assert done.stdout.strip() == ""
        assert "could be neither kept nor sent" in done.stderr
        assert "replay" not in done.stderr
        assert "Traceback" not in done.stderr

    def test_wrap_with_neither_says_the_lineage_is_lost(self, tmp_path: Path) -> None:
        """wrap still runs its command and exits with its status, and says truthfully that
        its lineage is neither sent nor kept (it said "kept locally in :memory:", and to
        replay it)."""
        home = tmp_path / "wrap"
        home.mkdir()
        (home / "outbox.db").mkdir()
        done = lineage_cli(
            "wrap", "--connection", "ol-spark", "--job", "w", "--", sys.executable, "-c",
            "raise SystemExit(3)", home=home,
        )  # fmt: skip
        assert done.returncode == 3, done.stderr
        assert "is lost when this process exits" in done.stderr
        assert ":memory:" not in done.stderr
        assert "replay" not in done.stderr
        assert "Traceback" not in done.stderr

    def test_wait_without_a_tenant_exits_1(self, tmp_path: Path) -> None:
        """`start --wait` exists to order steps across hosts: with no tenant nothing
        delivers the START, so it exits 1 (it exited 0); the run id is printed and the
        event kept, for a replay once the tenant is set."""
        home = tmp_path / "steps"
        started = lineage_cli(
            "start", "--connection", "ol-spark", "--job", "w", "--wait", home=home
        )
        assert started.returncode == 1, started.stderr
        assert "no Atlan tenant is configured" in started.stderr
        assert "Traceback" not in started.stderr
        run_id = started.stdout.strip()
        assert [e.event_type for e in Outbox(home / "outbox.db").events(run_id)] == ["START"]


LEFTOVERS = """
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "leftover"), background=True):
    pass
"""


class TestLeftoversArriveOnTheirOwn:
    def test_a_scripts_leftovers_arrive_once_the_tenant_is_back(self, tmp_path: Path) -> None:
        """A script exits while the tenant is down; nothing more is run by hand, and its
        events arrive, START first, once a tenant answers on that address."""
        port = free_port()
        done = python(
            LEFTOVERS, tmp_path, ATLAN_BASE_URL=f"http://127.0.0.1:{port}", ATLAN_API_KEY=KEY
        )
        assert done.returncode == 0
        assert "courier process delivers them" in done.stderr
        assert "replay" not in done.stderr
        from conftest import serve

        tenant = serve(port)
        try:
            assert eventually(lambda: len(arrived(tenant)) >= 2)
            assert [e["eventType"] for e in arrived(tenant)][:2] == ["START", "COMPLETE"]
            assert eventually(lambda: Outbox(tmp_path / "outbox.db").counts()[0] == 0)
        finally:
            tenant.shutdown()
            tenant.server_close()

    def test_wraps_leftovers_arrive_once_the_tenant_is_back(self, tmp_path: Path) -> None:
        """The same for ``wrap``: it exits with the command's status, and a courier delivers
        the run's events once the tenant answers."""
        port = free_port()
        done = lineage_cli(
            "wrap",
            "--connection",
            "ol-spark",
            "--job",
            "wrapped",
            "--timeout",
            "1",
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(3)",
            home=tmp_path,
            ATLAN_BASE_URL=f"http://127.0.0.1:{port}",
            ATLAN_API_KEY=KEY,
        )
        assert done.returncode == 3
        assert "courier process delivers them" in done.stderr
        from conftest import serve

        tenant = serve(port)
        try:
            assert eventually(lambda: len(arrived(tenant)) >= 2)
            assert [e["eventType"] for e in arrived(tenant)][:2] == ["START", "FAIL"]
        finally:
            tenant.shutdown()
            tenant.server_close()


SLOW_IMPORT = """
import sys, time, importlib.abc
class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pyatlan.client.atlan":
            time.sleep(float(sys.argv[1]))
        return None
sys.meta_path.insert(0, Slow())
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "slow_import"), delivery_timeout=1):
    pass
print("job done", flush=True)
"""


class TestSlowImport:
    @pytest.mark.slow  # waits on real processes for long: run by .ci/run
    def test_a_slow_pyatlan_import_is_not_blamed_on_the_tenant(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """pyatlan's import takes longer than the job's wait: the job goes on after its
        bounded wait, the message names the import (not "no answer from" the tenant), and the
        events still arrive."""
        done = subprocess.run(
            [sys.executable, "-c", SLOW_IMPORT, "4"],
            env=child_env(tmp_path, ATLAN_BASE_URL=loopback_tenant.base_url, ATLAN_API_KEY=KEY),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "job done" in done.stdout
        assert "pyatlan was still being imported" in done.stderr
        assert "no answer from" not in done.stderr
        assert eventually(lambda: len(arrived(loopback_tenant)) >= 2)
        assert [e["eventType"] for e in arrived(loopback_tenant)][:2] == ["START", "COMPLETE"]


class TestNotConfigured:
    def test_wrap_does_not_wait_out_its_timeout_for_an_answer_that_will_not_change(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """A 401 "not configured" (no OpenLineage connection) is final: wrap --timeout 600
        returns long before it (in seconds; pyatlan's import, up to a minute on a busy
        machine, comes first), says what to fix, and keeps the events."""
        loopback_tenant.script.extend([401] * 100)
        started = time.monotonic()
        done = lineage_cli(
            "wrap",
            "--connection",
            "ol-spark",
            "--job",
            "unconfigured",
            "--timeout",
            "600",
            "--",
            "true",
            home=tmp_path,
            timeout=400,  # a wrap that waited out its --timeout fails here
            ATLAN_BASE_URL=loopback_tenant.base_url,
            ATLAN_API_KEY=KEY,
        )
        assert done.returncode == 0
        assert time.monotonic() - started < 300
        assert "HTTP 401" in done.stderr or "refused the API token" in done.stderr
        assert [e.event_type for e in kept(tmp_path)] == ["START", "COMPLETE"]

    def test_wrap_does_not_wait_out_its_timeout_for_a_tenant_that_is_down(
        self, tmp_path: Path
    ) -> None:
        """A tenant that refuses connections is down after the first try: wrap --timeout
        600 does not wait for it to come back (it did, the whole 600 s, as a Python run
        does not); what is left goes to a courier, the events kept."""
        started = time.monotonic()
        done = lineage_cli(
            "wrap", "--connection", "ol-spark", "--job", "refused", "--timeout", "600", "--",
            "true", home=tmp_path, timeout=400, ATLAN_EXT_COURIER="off",
            ATLAN_BASE_URL=f"http://127.0.0.1:{free_port()}", ATLAN_API_KEY=KEY,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 300  # pyatlan's import (up to a minute) first
        assert "could not connect" in done.stderr
        assert [e.event_type for e in kept(tmp_path)] == ["START", "COMPLETE"]


class TestCourierStopsAtOnce:
    def test_not_configured_stops_the_courier_with_one_line(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """A step against a tenant without an OpenLineage connection (401): the courier makes
        one attempt, stops at once, and says why in courier.log; the event stays pending."""
        loopback_tenant.script.extend([401] * 100)
        done = lineage_cli(
            "start", "--connection", "ol-spark", "--job", "steps", home=tmp_path,
            ATLAN_BASE_URL=loopback_tenant.base_url, ATLAN_API_KEY=KEY,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        log = tmp_path / "courier.log"
        assert eventually(lambda: log.exists() and "stopped:" in log.read_text())
        time.sleep(2)  # a courier that tried again would show more requests by now
        assert len(loopback_tenant.received) <= 2  # pyatlan's own quick retry at most
        assert Outbox(tmp_path / "outbox.db").counts() == (1, 0)


class TestDurations:
    @pytest.mark.parametrize(
        "args",
        [
            ["replay", "--time-limit", "60"],
            ["replay", "--time-limit", "1m"],
            ["flush", "--timeout", "60"],
            ["flush", "--timeout", "60s"],
            ["prune", "--older-than", "90"],
            ["prune", "--older-than", "2d"],
        ],
    )
    def test_seconds_and_units_everywhere(self, tmp_path: Path, args: List[str]) -> None:
        """Every duration option takes 90 (seconds) and 90s/30m/6h/2d alike."""
        done = lineage_cli(*args, home=tmp_path)
        assert "not a" not in done.stderr, done.stderr
        assert done.returncode in (0, 2)
        assert "duration" not in done.stderr

    @pytest.mark.parametrize(
        "args",
        [
            ["replay", "--time-limit", "-5m"],
            ["prune", "--older-than", "-1d"],
            ["flush", "--timeout", "0"],
            ["wrap", "--connection", "c", "--job", "j", "--timeout", "soon", "--", "true"],
        ],
    )
    def test_a_bad_duration_is_named(self, tmp_path: Path, args: List[str]) -> None:
        """A negative, zero or wordy duration is a usage error naming the value."""
        done = lineage_cli(*args, home=tmp_path)
        assert done.returncode == 2
        assert "duration" in done.stderr
        assert "expected one argument" not in done.stderr
        assert "Traceback" not in done.stderr


class TestReplayKeepsTrying:
    @pytest.mark.slow  # waits on real processes for long: run by .ci/run
    def test_replay_outlasts_a_503(self, tmp_path: Path, loopback_tenant: Tenant) -> None:
        """replay under a few 503s keeps trying (with a pause) until everything is
        delivered, and exits 0."""
        python(
            "from atlan_ext import Job, lineage_run\n"
            'with lineage_run(Job("ol-spark", "later"), client="local"): pass',
            tmp_path,
        )
        # Two sends' worth (pyatlan tries each twice): replay keeps trying after its own tries.
        loopback_tenant.script.extend([503] * 4)
        loopback_tenant.retry_after = "1"
        done = lineage_cli(
            "replay",
            "--time-limit",
            "5m",
            home=tmp_path,
            ATLAN_BASE_URL=loopback_tenant.base_url,
            ATLAN_API_KEY=KEY,
        )
        assert done.returncode == 0, done.stderr
        assert "pending 0" in done.stdout
        assert [e["eventType"] for e in arrived(loopback_tenant)] == ["START", "COMPLETE"]
        assert json.dumps(done.stderr).count("not answering") == 1  # one line per change


IN_A_WARM_HAND_OFF = """
import os, signal, sys, zlib
from httpx_retries import Retry
from pyatlan.client.atlan import AtlanClient
from atlan_ext import Job, lineage_run

client = AtlanClient(
    base_url=sys.argv[1], api_key="k", connect_timeout=1, read_timeout=5, retry=Retry(total=0)
)
job = Job("ol-spark", "warm")
with lineage_run(job, client=client):  # warm: the next START goes out from this thread
    pass
armed = []

def hook(frame, event, arg):
    if armed and event == "c_call" and arg is zlib.adler32:  # inside the START's hand-off
        armed.clear()
        os.kill(os.getpid(), signal.SIGTERM)

armed.append(True)
sys.setprofile(hook)
with lineage_run(job, client=client):
    sys.setprofile(None)
    print("not killed", flush=True)
"""


class TestSigtermInAWarmHandOff:
    def test_the_interrupted_start_is_kept_before_its_abort(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """SIGTERM inside the hand-off of a START the job would send on its own thread: the
        START is stored with the ABORT (not left in the journal alone), and the courier sends
        START before ABORT."""
        # Not reaped until the end: a job's parent (a shell, a task runner) may be slow to
        # reap it, and until then its journal belongs to a process that looks alive.
        process = subprocess.Popen(
            [sys.executable, "-c", IN_A_WARM_HAND_OFF, loopback_tenant.base_url],
            env=child_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs: Dict[str, List[str]] = {}

        def second_run_done() -> bool:
            runs.clear()
            for event in arrived(loopback_tenant):
                runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
            return len(runs) == 2 and "ABORT" in list(runs.values())[-1]

        try:
            assert eventually(second_run_done), runs
        finally:
            out, err = process.communicate(timeout=120)
        assert process.returncode == -signal.SIGTERM, err
        assert "not killed" not in out
        assert list(runs.values()) == [["START", "COMPLETE"], ["START", "ABORT"]]


CROWDED = """
from atlan_ext import Job, lineage_run
from atlan_ext.delivery import flush
job = Job("ol-spark", "crowded")
for _ in range(15_000):
    with lineage_run(job, background=True):
        pass
print("flushed", flush(300), flush=True)
"""


@pytest.mark.slow
class TestCrowded:
    def test_a_crowded_sender_keeps_each_runs_order(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """More events wait than memory holds (30,000 made while pyatlan imports, which takes
        seconds; then two 503s): the job stores the rest itself, and every run still reaches
        Atlan START first."""
        loopback_tenant.script.extend([503, 503])
        done = subprocess.run(
            [sys.executable, "-c", CROWDED],
            env=child_env(
                tmp_path,
                ATLAN_BASE_URL=loopback_tenant.base_url,
                ATLAN_API_KEY=KEY,
                ATLAN_EXT_COURIER="off",
            ),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        assert "flushed True" in done.stdout, done.stderr
        seen: Dict[str, str] = {}
        overtaken = 0
        for event in arrived(loopback_tenant):
            run_id = event["run"]["runId"]
            overtaken += event["eventType"] == "COMPLETE" and run_id not in seen
            seen.setdefault(run_id, event["eventType"])
        assert len(seen) == 15_000
        assert overtaken == 0


STRICT_WHILE_CROWDED = """
from atlan_ext import Job, LineageDeliveryError, lineage_run
job = Job("ol-spark", "crowded")
for _ in range(6_000):  # 12,000 events: more than a sender holds in memory
    with lineage_run(job, background=True):
        pass
try:
    with lineage_run(job, strict=True, delivery_timeout=2):
        print("body ran")
except LineageDeliveryError as error:
    print("raised", error.retryable)
"""


@pytest.mark.slow
class TestStrictWhileCrowded:
    def test_a_strict_start_waits_even_behind_a_crowd(self, tmp_path: Path) -> None:
        """12,000 events wait for a tenant that hangs: a strict run's START is still waited
        for (at most delivery_timeout) and, not delivered, raises; the body does not run.
        The exit that follows prints no traceback (the delivery thread, still trying, found
        the interpreter exiting and logged one)."""
        with hanging_tenant() as url:
            done = python(STRICT_WHILE_CROWDED, tmp_path, ATLAN_BASE_URL=url,
                          ATLAN_API_KEY=KEY, ATLAN_EXT_COURIER="off")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "body ran" not in done.stdout
        assert "raised True" in done.stdout, done.stdout
        assert "Traceback" not in done.stderr, done.stderr


STRICT_WITHOUT_AN_OUTBOX = """
from atlan_ext import Job, lineage_run
from atlan_ext.delivery import flush
from atlan_ext.exceptions import LineageDeliveryError

try:
    with lineage_run(Job("ol-spark", "strict-no-outbox"), strict=True):
        print("body ran")
except LineageDeliveryError:
    print("raised")
print("flushed", flush(120))
"""


class TestStrictWithoutAnOutbox:
    def test_the_withdrawn_runs_abort_follows_its_start(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """A strict START Atlan refuses (503, twice: the client retries once) while no outbox
        works: the block does not run, and the run's ABORT, which no outbox keeps either, is
        sent after the START once Atlan answers (it was left unsent before)."""
        home = tmp_path / "strict"
        home.mkdir()
        (home / "outbox.db").mkdir()  # a folder where the file should be: unusable
        loopback_tenant.script.extend([503, 503])  # the client's own retry is refused too
        done = python(
            STRICT_WITHOUT_AN_OUTBOX,
            home,
            timeout=300,
            ATLAN_BASE_URL=loopback_tenant.base_url,
            ATLAN_API_KEY=KEY,
            ATLAN_EXT_COURIER="off",
        )
        assert done.returncode == 0, done.stderr
        assert "body ran" not in done.stdout
        assert "raised" in done.stdout
        assert "flushed True" in done.stdout, done.stderr
        types = [e["eventType"] for e in arrived(loopback_tenant)]
        assert types == ["START", "ABORT"]


class TestRefused:
    def test_a_refused_event_is_not_sent_again_in_a_loop(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Atlan refuses a run's START (HTTP 400) and keeps answering: the sender does not
        send it again while the process lives (it did, hundreds of times a second); the
        START and the COMPLETE behind it stay pending for a replay."""
        loopback_tenant.script.extend([400] * 1000)
        home = tmp_path / "refused"
        go_on = tmp_path / "go-on"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(
                python,
                """
                import os, time
                from atlan_ext import Job, lineage_run
                with lineage_run(Job("ol-spark", "refused")):
                    pass
                while not os.path.exists(os.environ["GO_ON"]):  # until the test saw enough
                    time.sleep(0.05)
                """,
                home,
                ATLAN_BASE_URL=loopback_tenant.base_url,
                ATLAN_API_KEY=KEY,
                ATLAN_EXT_COURIER="off",
                GO_ON=str(go_on),
            )
            # The process lives 3 s after its first try (pyatlan's import, up to 30 s on a
            # busy machine, comes before it): time enough to see it send again in a loop.
            assert eventually(lambda: len(loopback_tenant.received) > 0)
            time.sleep(3)
            go_on.touch()
            done = running.result()
        assert done.returncode == 0, done.stderr
        assert len(loopback_tenant.received) == 1
        assert "HTTP 400" in done.stderr
        assert [e.event_type for e in kept(home) if e.delivered is None] == ["START", "COMPLETE"]


class TestLockedOutboxAnd503:
    def test_a_locked_outbox_and_a_503_keep_every_event_with_few_sends(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Atlan answers 503 (Retry-After: 1) while another process holds the outbox, and the
        job goes on making a background run every 20 ms: the sender waits out each pause
        instead of sending again as each run hands over, and every event is in the outbox
        once it is free. (The storm of 3ad34ef, a sender cutting its pause short each time it
        looked at its queue, is not reproduced by this setup: this pins the outcome only.)"""
        loopback_tenant.script.extend([503] * 10_000)
        loopback_tenant.retry_after = "1"
        home = tmp_path / "locked"
        home.mkdir()
        Outbox(home / "outbox.db").close()
        holder = sqlite3.connect(home / "outbox.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        go_on = tmp_path / "go-on"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(
                python,
                RUNS_UNTIL_TOLD,
                home,
                ATLAN_BASE_URL=loopback_tenant.base_url,
                ATLAN_API_KEY=KEY,
                ATLAN_EXT_COURIER="off",
                GO_ON=str(go_on),
            )
            try:
                assert eventually(lambda: len(loopback_tenant.received) > 0)
                first = len(loopback_tenant.received)
                time.sleep(3)
                sent = len(loopback_tenant.received) - first
            finally:
                holder.execute("ROLLBACK")  # freed before the process exits: it stores then
                holder.close()
                go_on.touch()
            done = running.result()
        assert done.returncode == 0, done.stderr
        runs = int(done.stdout.split()[-1])
        # 3 s under Retry-After: 1 is a few tries (each a batch of what waits), not dozens.
        assert sent <= 6, (sent, runs, done.stderr)
        assert arrived(loopback_tenant) == []
        outbox = Outbox(home / "outbox.db")
        try:
            assert outbox.counts() == (2 * runs, 0), done.stderr
        finally:
            outbox.close()


RUNS_UNTIL_TOLD = """
import os, time
import pyatlan.client.atlan  # imported before the runs begin
from atlan_ext import Job, lineage_run
runs = 0
while not os.path.exists(os.environ["GO_ON"]):  # until the test saw enough
    with lineage_run(Job("ol-spark", "locked"), background=True):
        pass
    runs += 1
    time.sleep(0.02)
print(runs, flush=True)
"""

BACKLOG = """
from atlan_ext import Job, lineage_run
for number in range(1000):
    with lineage_run(Job("ol-spark", f"old_{number}"), client="local"):
        pass
"""

EXITS_WHILE_DRAINING = """
import time
import pyatlan.client.atlan  # a script of pyatlan's: its send starts at once
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "first")):  # 503: owed, so the courier loop starts
    pass
time.sleep(4)  # it is sending the backlog now, a batch a second
print("exits", flush=True)
"""


class TestExitDuringADrain:
    @pytest.mark.slow  # 2,002 events at a second a batch, then a courier: half a minute
    def test_exit_while_the_loop_sends_a_backlog_sends_nothing_twice(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """A job exits while its delivery thread's courier loop sends a backlog other
        processes left: the loop claims nothing more, exit waits for the batches in flight,
        and the courier that takes over sends each event once (100 were sent twice before)."""
        home = tmp_path / "backlog"
        stored = python(BACKLOG, home, ATLAN_EXT_COURIER="off")
        assert stored.returncode == 0, stored.stderr
        loopback_tenant.script.extend([503] * 4)
        loopback_tenant.retry_after = "1"
        loopback_tenant.delay = 1.0
        done = python(
            EXITS_WHILE_DRAINING,
            home,
            ATLAN_BASE_URL=loopback_tenant.base_url,
            ATLAN_API_KEY=KEY,
        )
        assert done.returncode == 0, done.stderr
        assert "exits" in done.stdout

        def accepted() -> List[Any]:
            return [(e["run"]["runId"], e["eventType"]) for e in arrived(loopback_tenant)]

        assert wait_until(lambda: len(set(accepted())) >= 2002, 300), len(set(accepted()))
        time.sleep(1)  # a duplicate in flight would land now
        events = accepted()
        assert len(events) == len(set(events)) == 2002
