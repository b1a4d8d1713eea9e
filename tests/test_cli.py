"""The atlan-lineage command, end to end: real processes, a real loopback tenant, the outbox."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from conftest import Tenant, serve

import atlan_ext
from atlan_ext import Job, RunId, lineage_run
from atlan_ext.events import build_event
from atlan_ext.outbox import Outbox

KEY = "cli-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def env(home: Path, base_url: Optional[str] = None, courier: bool = True) -> Dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("ATLAN_")}
    values["ATLAN_EXT_HOME"] = str(home)
    if not courier:
        values["ATLAN_EXT_COURIER"] = "off"
    if base_url:
        values["ATLAN_BASE_URL"] = base_url
        values["ATLAN_API_KEY"] = KEY
    return values


def cli(
    *args: str, home: Path, base_url: Optional[str] = None, courier: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlan_ext.cli", *args],
        env=env(home, base_url, courier),
        capture_output=True,
        text=True,
        timeout=300,  # ends with the process: generous for a busy machine
        **kwargs,
    )


def stored(home: Path) -> List[Any]:
    return Outbox(home / "outbox.db").events()


def recorded(home: Path, error: str) -> bool:
    """True once an event in the outbox has ``error`` in its last error."""
    return (home / "outbox.db").exists() and any(
        error in (e.last_error or "") for e in stored(home)
    )


def _default_sigint() -> None:
    # A job started in the background by a shell without job control inherits SIGINT
    # ignored, and so would the command: give wrap the disposition a terminal gives it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wrapped_sleeper(home: Path, **options: Any) -> subprocess.Popen[str]:
    """`atlan-lineage wrap` of a command that sleeps, returned once the command runs."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlan_ext.cli",
            *WRAP,
            "--",
            sys.executable,
            "-c",
            "import time; print('ready', flush=True); time.sleep(60)",
        ],
        env=env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_default_sigint,
        **options,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


WRAP = [
    "wrap",
    "--connection",
    "ol-demo",
    "--job",
    "demo",
    "--input",
    "s3://b/in",
    "--output",
    "s3://b/out",
]


class TestWrap:
    @pytest.mark.parametrize(
        ("script", "status", "state"),
        [
            ("pass", 0, "COMPLETE"),
            ("raise SystemExit(3)", 3, "FAIL"),
            ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 128 + 15, "ABORT"),
        ],
    )
    def test_exit_status_and_terminal_state(
        self, tmp_path: Path, script: str, status: int, state: str
    ) -> None:
        """wrap exits with the command's status (128+N for signal N) and ends the run with the
        matching state; with no tenant, both events are kept and stderr says so once."""
        done = cli(*WRAP, "--", sys.executable, "-c", script, home=tmp_path)
        assert done.returncode == status, done.stderr
        events = stored(tmp_path)
        assert [e.event_type for e in events] == ["START", state]
        assert done.stderr.count("no Atlan tenant configured") == 1
        if state != "COMPLETE":
            message = events[1].event["run"]["facets"]["errorMessage"]["message"]
            assert ("status 3" in message) if state == "FAIL" else ("SIGTERM" in message)

    @pytest.mark.parametrize(
        ("command", "given", "expected"),
        [("wrap", [], "COMMAND"), ("start", [], "JOB"), ("start", ["--job-type", "DAG"], "DAG")],
    )
    def test_job_type_facet(
        self, tmp_path: Path, command: str, given: List[str], expected: str
    ) -> None:
        """Runs from the command line send the jobType facet: COMMAND for wrap, JOB for the
        step commands, or the --job-type given; integration ATLAN_EXT."""
        args = [command, "--connection", "c", "--job", "j", *given]
        if command == "wrap":
            args += ["--", sys.executable, "-c", "pass"]
        assert cli(*args, home=tmp_path).returncode == 0
        facet = stored(tmp_path)[0].event["job"]["facets"]["jobType"]
        assert (facet["jobType"], facet["integration"]) == (expected, "ATLAN_EXT")

    def test_stdio_untouched(self, tmp_path: Path) -> None:
        """The command's stdin, stdout and stderr are its own."""
        done = cli(
            *WRAP,
            "--",
            sys.executable,
            "-c",
            "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('e')",
            home=tmp_path,
            input="hello",
        )
        assert done.stdout == "HELLO"
        assert done.stderr.endswith("e")

    def test_sigterm_is_forwarded(self, tmp_path: Path) -> None:
        """SIGTERM to wrap reaches the command; the run ends with ABORT, status 143."""
        process = wrapped_sleeper(tmp_path)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143
        assert [e.event_type for e in stored(tmp_path)] == ["START", "ABORT"]

    def test_sigint_is_forwarded_without_a_terminal(self, tmp_path: Path) -> None:
        """SIGINT sent to wrap (not typed on a terminal) reaches the command: ABORT, 130."""
        process = wrapped_sleeper(tmp_path)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert [e.event_type for e in stored(tmp_path)] == ["START", "ABORT"]

    def test_missing_command(self, tmp_path: Path) -> None:
        """wrap without a command is a clear error."""
        done = cli(*WRAP, home=tmp_path)
        assert done.returncode == 2
        assert "needs a command" in done.stderr


class TestTenantDownThenReplay:
    def test_events_wait_then_replay_delivers_them_as_made(self, tmp_path: Path) -> None:
        """Tenant down, couriers off: wrap is held at most --timeout, events stay in the
        outbox; tenant up: replay delivers every event exactly as made, START first."""
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        done = cli(
            *WRAP,
            "--timeout",
            "1",
            "--",
            sys.executable,
            "-c",
            "pass",
            home=tmp_path,
            base_url=base_url,
            courier=False,
        )
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert elapsed < 15, elapsed  # pyatlan alone takes ~38 s to give up
        assert KEY not in done.stderr
        made = [e.event for e in stored(tmp_path)]
        assert [e["eventType"] for e in made] == ["START", "COMPLETE"]
        tenant = serve(port)
        try:
            replayed = cli("replay", home=tmp_path, base_url=base_url)
            assert replayed.returncode == 0, replayed.stderr
            assert "delivered 2" in replayed.stdout
            assert [body for _, _, body, _ in tenant.received] in ([made], made)
        finally:
            tenant.shutdown()
            tenant.server_close()
        assert all(e.delivered is not None for e in stored(tmp_path))

    def test_503_forever_stays_in_the_outbox(self, tmp_path: Path, loopback_tenant: Tenant) -> None:
        """A tenant answering 503 to everything: nothing is lost, the error is recorded."""
        loopback_tenant.script = [503] * 100
        loopback_tenant.retry_after = "1"
        # The command ends once the START's 503 is recorded (pyatlan's import, which can take
        # 30 s on a busy machine, comes first): wrap's --timeout is then only its wait for a
        # tenant that keeps answering 503 (a few more tries), all of which wrap waits out. It
        # also sets the client's read timeout (10 s: about 3.4 s, for a loopback answer that
        # needs milliseconds): a try that timed out would replace the recorded 503.
        answered = tmp_path / "answered"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlan_ext.cli",
                *WRAP,
                "--timeout",
                "10",
                "--",
                sys.executable,
                "-c",
                WAIT_FOR_FILE,
                str(answered),
            ],
            env=env(tmp_path, loopback_tenant.base_url, courier=False),  # none takes over
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not recorded(tmp_path, "503"):
            assert process.poll() is None, "wrap ended before a 503 was recorded"
            assert time.monotonic() < deadline, "no 503 recorded within 120 s"
            time.sleep(0.05)
        answered.touch()
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0
        events = stored(tmp_path)
        assert [e.status for e in events] == ["pending", "pending"]
        assert "503" in (events[0].last_error or "")
        assert "503" in stderr


# A command that ends once the file named by its argument exists (at most two minutes).
WAIT_FOR_FILE = """
import os, sys, time
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def fill(home: Path, runs: int) -> None:
    os.environ["ATLAN_EXT_HOME"] = str(home)
    try:
        outbox = Outbox(home / "outbox.db")
        for _ in range(runs):
            with lineage_run(Job("ol-demo", "bulk"), outbox=outbox):
                pass
    finally:
        del os.environ["ATLAN_EXT_HOME"]


def delivered_keys(tenant: Tenant) -> List[str]:
    keys = []
    for *_, body, status in tenant.received:
        if status == 202:
            for event in body if isinstance(body, list) else [body]:
                keys.append(event["run"]["runId"] + event["eventType"])
    return keys


class TestReplay:
    @pytest.mark.slow  # waits on real processes for long: run by .ci/run
    def test_kill_9_during_replay_then_replay_again(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """A replay killed -9 mid-way loses nothing: the next replay delivers the rest."""
        fill(tmp_path, 100)
        loopback_tenant.delay = 0.05
        process = subprocess.Popen(
            [sys.executable, "-m", "atlan_ext.cli", "replay", "--batch-size", "5"],
            env=env(tmp_path, loopback_tenant.base_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while len(loopback_tenant.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.kill()
        process.wait()
        assert Outbox(tmp_path / "outbox.db").counts()[0] > 0
        loopback_tenant.delay = 0
        again = cli("replay", home=tmp_path, base_url=loopback_tenant.base_url)
        assert again.returncode == 0, again.stderr
        assert Outbox(tmp_path / "outbox.db").counts() == (0, 200)
        assert set(delivered_keys(loopback_tenant)) == {
            e.run_id + e.event_type for e in stored(tmp_path)
        }

    def test_two_replays_at_once_send_each_event_once(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Two replay processes at once never send the same event twice."""
        fill(tmp_path, 60)
        loopback_tenant.delay = 0.01
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "atlan_ext.cli", "replay", "--batch-size", "4"],
                env=env(tmp_path, loopback_tenant.base_url),
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in processes]
        assert all(p.returncode == 0 for p in processes), outputs
        keys = delivered_keys(loopback_tenant)
        assert len(keys) == 120
        assert len(set(keys)) == 120
        assert all("delivered" in out for out in outputs)

    def test_replay_without_tenant(self, tmp_path: Path) -> None:
        """replay with no tenant configured says how to configure one."""
        done = cli("replay", home=tmp_path)
        assert done.returncode == 2
        assert "ATLAN_BASE_URL" in done.stderr


class TestSteps:
    def test_one_run_across_shell_steps(self, tmp_path: Path) -> None:
        """start prints the run id; later steps need only it; transitions are checked across
        processes."""
        started = cli(
            "start",
            "--connection",
            "ol-demo",
            "--job",
            "steps",
            "--input",
            "s3://b/in",
            home=tmp_path,
        )
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        assert cli("running", "--run-id", run_id, home=tmp_path).returncode == 0
        assert (
            cli("fail", "--run-id", run_id, "--message", "disk full", home=tmp_path).returncode == 0
        )
        again = cli("complete", "--run-id", run_id, home=tmp_path)
        assert again.returncode == 2
        assert "already ended with FAIL" in again.stderr
        events = stored(tmp_path)
        assert [e.event_type for e in events] == ["START", "RUNNING", "FAIL"]
        assert events[-1].event["inputs"][0]["name"] == "in"
        assert events[-1].event["run"]["facets"]["errorMessage"]["message"] == "disk full"
        shown = cli("status", home=tmp_path)
        assert run_id in shown.stdout
        assert "ol-demo/steps" in shown.stdout

    def test_unknown_run_id(self, tmp_path: Path) -> None:
        """A step for a run the outbox does not know: a clear error, non-zero exit."""
        done = cli("complete", "--run-id", "01a21218-66ef-7949-a244-deae6c99a2c9", home=tmp_path)
        assert done.returncode == 2
        assert "unknown run id" in done.stderr
        assert "Traceback" not in done.stderr

    def test_malformed_uri(self, tmp_path: Path) -> None:
        """A malformed dataset URI is refused before anything is stored."""
        done = cli("start", "--connection", "c", "--job", "j", "--input", "orders", home=tmp_path)
        assert done.returncode == 2
        assert "'orders' is not a dataset URI" in done.stderr
        assert stored(tmp_path) == []


class TestOrphans:
    def test_kill_9_then_close_orphans(self, tmp_path: Path) -> None:
        """A wrapped run killed -9 has START and no end; close-orphans ends it with ABORT and
        says why. A run whose process still lives is never closed."""
        process = wrapped_sleeper(tmp_path, start_new_session=True)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.environ["ATLAN_EXT_HOME"] = str(tmp_path)
        try:
            with lineage_run(
                Job("ol-demo", "still-running"), outbox=Outbox(tmp_path / "outbox.db")
            ) as live:
                done = cli("close-orphans", "--older-than", "0s", home=tmp_path)
                assert done.returncode == 0, done.stderr
        finally:
            del os.environ["ATLAN_EXT_HOME"]
        assert "1 orphan run(s) closed" in done.stdout
        assert f"skipped {live.run_id}" in done.stdout
        events = [e for e in stored(tmp_path) if e.event["job"]["name"] == "demo"]
        assert [e.event_type for e in events] == ["START", "ABORT"]
        message = events[1].event["run"]["facets"]["errorMessage"]["message"]
        assert "close-orphans" in message
        assert "is gone" in message
        assert re.search(r"no terminal event \d+ s after START", message), message
        none = cli("close-orphans", "--older-than", "0s", "--dry-run", home=tmp_path)
        assert none.stdout.strip() == "no orphan run to close"

    @pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
    def test_close_orphans_sees_a_reused_pid(self, tmp_path: Path) -> None:
        """A run recorded an hour ago whose process id now belongs to a younger process
        (the id was reused): closed with ABORT, not skipped as still running."""
        import sqlite3

        run_id = cli("start", "--connection", "c", "--job", "old", home=tmp_path).stdout.strip()
        younger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            an_hour_ago = time.time() - 3600
            with sqlite3.connect(tmp_path / "outbox.db") as db:  # the dead run's id, reused
                db.execute(
                    "UPDATE runs SET pid=?, created=?, updated=? WHERE run_id=?",
                    (younger.pid, an_hour_ago, an_hour_ago, run_id),
                )
            done = cli("close-orphans", "--older-than", "30m", home=tmp_path)
        finally:
            younger.kill()
            younger.wait()
        assert done.returncode == 0, done.stderr
        assert f"closed {run_id}" in done.stdout
        assert [e.event_type for e in stored(tmp_path)] == ["START", "ABORT"]

    def test_duration_is_checked(self, tmp_path: Path) -> None:
        """--older-than takes a number and a unit."""
        done = cli("close-orphans", "--older-than", "6 hours", home=tmp_path)
        assert done.returncode == 2
        assert "90s, 30m, 6h, 2d" in done.stderr


class TestTools:
    def test_corrupted_database(self, tmp_path: Path) -> None:
        """A corrupted outbox gets a clear error with its path, and is left untouched."""
        database = tmp_path / "outbox.db"
        database.write_bytes(b"this is not sqlite" * 100)
        before = database.read_bytes()
        done = cli("status", home=tmp_path)
        assert done.returncode == 1
        assert str(database) in done.stderr
        assert "Traceback" not in done.stderr
        assert database.read_bytes() == before

    def test_foreign_database(self, tmp_path: Path) -> None:
        """Another application's SQLite file is refused, not written to."""
        import sqlite3

        database = tmp_path / "outbox.db"
        with sqlite3.connect(database) as db:
            db.execute("CREATE TABLE notes (x)")
        done = cli("status", home=tmp_path)
        assert done.returncode == 1
        assert "not an atlan-ext outbox" in done.stderr

    def test_outbox_file_is_private(self, tmp_path: Path) -> None:
        """The outbox is created 0600."""
        cli(*WRAP, "--", sys.executable, "-c", "pass", home=tmp_path)
        assert (tmp_path / "outbox.db").stat().st_mode & 0o777 == 0o600

    def test_status_started_is_the_start_events_time(self, tmp_path: Path) -> None:
        """A START stored late (made two hours before it reached this outbox): status says
        the run started when its START says, not when the outbox heard of it."""
        made = datetime.now(timezone.utc) - timedelta(hours=2)
        event = build_event("START", Job("c", "late"), RunId.new(), event_time=made)
        Outbox(tmp_path / "outbox.db").add(event, "spark", lifecycle_state="START")
        done = cli("status", home=tmp_path)
        assert done.returncode == 0, done.stderr
        shown = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(made.timestamp()))
        assert f"started {shown}" in done.stdout

    def test_validate_says_when_there_is_nothing_to_judge(self, tmp_path: Path) -> None:
        """A missing file is an [input] error (exit 1), not the schema's; an empty folder
        has no event to judge: exit 2, said (it printed "0 event(s) valid", exit 0)."""
        missing = cli("validate", str(tmp_path / "nonexistent.json"), home=tmp_path)
        assert missing.returncode == 1
        assert f"error [input]: {tmp_path / 'nonexistent.json'}" in missing.stdout
        (tmp_path / "empty").mkdir()
        empty = cli("validate", str(tmp_path / "empty"), home=tmp_path)
        assert empty.returncode == 2
        assert "no events to validate" in empty.stderr
        assert "Traceback" not in empty.stderr + missing.stderr

    def test_status_says_when_it_shows_only_the_newest_runs(self, tmp_path: Path) -> None:
        """25 runs, status shows 20 and says more are there (--limit); with --limit 30, all
        of them and no such note."""
        outbox = Outbox(tmp_path / "outbox.db")
        for number in range(25):
            event = build_event("START", Job("c", f"job{number}"), RunId.new())
            outbox.add(event, "spark", lifecycle_state="START")
        first = cli("status", home=tmp_path).stdout
        assert first.count(" run ") == 20
        assert "the newest 20 runs (more with --limit)" in first
        every = cli("status", "--limit", "30", home=tmp_path).stdout
        assert every.count(" run ") == 25
        assert "more with --limit" not in every

    def test_validate(self, tmp_path: Path) -> None:
        """validate passes good files and reports every problem in bad ones, non-zero."""
        cli(*WRAP, "--", sys.executable, "-c", "pass", home=tmp_path)
        good = tmp_path / "good.jsonl"
        good.write_text("\n".join(json.dumps(e.event) for e in stored(tmp_path)))
        assert cli("validate", str(good), home=tmp_path).returncode == 0
        bad_events = [e.event for e in stored(tmp_path)]
        bad_events[0]["eventType"] = "DONE"
        bad_events[1]["eventTime"] = "2026-11-25T10:00:00"
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(bad_events))
        done = cli("validate", str(bad), home=tmp_path)
        assert done.returncode == 1
        assert "'DONE' is not a run state" in done.stdout
        assert "time zone" in done.stdout

    def test_validate_run_cycle(self, tmp_path: Path) -> None:
        """validate checks the run cycle by event time, over every file given together."""
        cli(*WRAP, "--", sys.executable, "-c", "pass", home=tmp_path)
        start, complete = (e.event for e in stored(tmp_path))
        for name, event in (("start.json", start), ("complete.json", complete)):
            (tmp_path / name).write_text(json.dumps(event))
        together = cli(
            "validate", str(tmp_path / "complete.json"), str(tmp_path / "start.json"), home=tmp_path
        )
        assert together.returncode == 0, together.stdout
        start["eventTime"], complete["eventTime"] = complete["eventTime"], start["eventTime"]
        path = tmp_path / "reversed.json"
        path.write_text(json.dumps([start, complete]))
        done = cli("validate", str(path), home=tmp_path)
        assert done.returncode == 1
        assert "cannot come before START" in done.stdout

    def test_states_table(self, tmp_path: Path) -> None:
        """states prints the mapping table."""
        done = cli("states", home=tmp_path)
        assert done.returncode == 0
        assert "OpenLineageEventType.COMPLETE" in done.stdout
        assert len(done.stdout.strip().splitlines()) == 8

    def test_version_and_every_commands_help_says_what_it_does(self, tmp_path: Path) -> None:
        """--version prints the version; each command's --help opens with what it does, and
        the options a newcomer reaches for first say what they take."""
        version = cli("--version", home=tmp_path)
        assert version.returncode == 0
        assert version.stdout.strip() == f"atlan-lineage {atlan_ext.__version__}"
        for command in ("replay", "prune", "status", "states", "close-orphans", "start"):
            shown = cli(command, "--help", home=tmp_path)
            assert shown.returncode == 0
            assert shown.stdout.split("\n\n")[1].strip().endswith("."), shown.stdout
        fail = cli("fail", "--help", home=tmp_path).stdout
        assert "why (default: failed)" in fail
        assert "an input dataset's URI" in fail
        assert "the run's id" in fail

    def test_help_does_not_import_pyatlan(self, tmp_path: Path) -> None:
        """--help answers without importing pyatlan's client."""
        code = (
            "import sys\nfrom atlan_ext.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('pyatlan.client' in sys.modules)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env(tmp_path)
        )
        assert done.stdout.strip().endswith("False")

    def test_api_key_file(self, tmp_path: Path, loopback_tenant: Tenant) -> None:
        """The key may come from --api-key-file; it is sent and never printed."""
        key_file = tmp_path / "key"
        key_file.write_text("file-key-0123456789\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "atlan_ext.cli",
                "--base-url",
                loopback_tenant.base_url,
                "--api-key-file",
                str(key_file),
                *WRAP,
                "--timeout",
                "120",  # the first send imports pyatlan: up to a minute on a busy machine
                "--",
                sys.executable,
                "-c",
                "pass",
            ],
            env=env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,  # beyond the import and wrap's own --timeout; ends when wrap does
        )
        assert done.returncode == 0, done.stderr
        assert loopback_tenant.received[0][1]["authorization"] == "Bearer file-key-0123456789"
        assert "file-key" not in done.stderr + done.stdout


class TestPrune:
    def test_prune_keeps_pending_and_drops_delivered(self, tmp_path: Path) -> None:
        outbox = Outbox(tmp_path / "outbox.db")
        with lineage_run(Job("c", "kept"), client="local", outbox=outbox):
            pass
        with lineage_run(Job("c", "sent"), client="local", outbox=outbox) as run:
            pass
        sent = [e.id for e in outbox.events(run.run_id)]
        outbox.mark_delivered(sent)
        done = cli("prune", "--older-than", "0s", home=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "pruned 2 delivered event(s)" in done.stdout
        assert Outbox(tmp_path / "outbox.db").counts() == (2, 0)
        assert [r.job_name for r in Outbox(tmp_path / "outbox.db").runs()] == ["kept"]

    def test_retention_setting(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from atlan_ext.outbox import retention_seconds

        assert retention_seconds() == 7 * 86400
        monkeypatch.setenv("ATLAN_EXT_RETENTION_DAYS", "0.5")
        assert retention_seconds() == 43200
        monkeypatch.setenv("ATLAN_EXT_RETENTION_DAYS", "forever")
        assert retention_seconds() == 7 * 86400
