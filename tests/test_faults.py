"""Lineage never breaks, stalls or hides from the job: misconfiguration and faults, through
the public API and real processes.

Faults are real where the machine allows: a hanging tenant is a socket that accepts and never
answers, a refused one a closed port, a locked outbox another connection holding
``BEGIN EXCLUSIVE``, a full disk a small tmpfs (root only; else skipped, said so).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from conftest import Tenant
from test_courier import arrived, wait_until

from atlan_ext import (
    AtlanExtError,
    Job,
    LineageAuthenticationError,
    LineageDeliveryError,
    RunId,
    lineage_run,
)
from atlan_ext.courier import drain
from atlan_ext.delivery import Delivery, flush
from atlan_ext.events import build_event
from atlan_ext.exceptions import TenantSettingsError
from atlan_ext.outbox import Outbox
from atlan_ext.send import Tenant as AtlanTenant
from atlan_ext.testing import MockAtlan, assert_paired, fast_retry

JOB = Job("ol-spark", "fault_job")
KEY = "sk-fault-test-0123456789abcdef"
RUN_ID = RunId.new()
BAD_URLS = ["http://127.0.0.1:", "htp:/x", "tenant.atlan.com", "https://", "http://h:99999"]


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def hanging_tenant() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: List[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def child_env(home: Path, **values: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLAN_")}
    env["ATLAN_EXT_HOME"] = str(home)
    env.update(values)
    return env


def python(
    code: str, home: Path, timeout: float = 300, **values: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(home, **values),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def lineage_cli(
    *args: str, home: Path, timeout: float = 300, **values: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlan_ext.cli", *args],
        env=child_env(home, **values),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == "atlan_ext"]


# -- misconfiguration degrades: the job runs, one warning names the setting --------------------


class TestMisconfigured:
    @pytest.mark.parametrize("url", BAD_URLS)
    def test_malformed_base_url(
        self, url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The body runs, its result is untouched, one warning names ATLAN_BASE_URL and the
        fix, and the events are kept in the outbox."""
        monkeypatch.setenv("ATLAN_BASE_URL", url)
        monkeypatch.setenv("ATLAN_API_KEY", KEY)
        ran = []
        for _ in range(3):
            with lineage_run(JOB) as run:
                ran.append(run.run_id)
        assert len(ran) == 3
        said = [m for m in warnings_of(caplog) if "ATLAN_BASE_URL" in m]
        assert len(said) == 1, warnings_of(caplog)
        assert "https://your-tenant.atlan.com" in said[0]
        assert KEY not in " ".join(warnings_of(caplog))
        assert run._delivery.outbox.counts() == (6, 0)

    @pytest.mark.parametrize(
        ("present", "missing"),
        [("ATLAN_BASE_URL", "ATLAN_API_KEY"), ("ATLAN_API_KEY", "ATLAN_BASE_URL")],
    )
    def test_half_configured_names_the_missing_setting(
        self,
        present: str,
        missing: str,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        monkeypatch.setenv(present, "https://tenant.atlan.test" if "URL" in present else KEY)
        with lineage_run(JOB):
            pass
        said = " ".join(warnings_of(caplog))
        assert f"{missing} is not" in said
        assert f"set {missing}" in said

    @pytest.mark.parametrize(
        ("settings", "named"),
        [
            ({"ATLAN_BASE_URL": "https://tenant.atlan.test"}, "ATLAN_API_KEY is not"),
            ({"ATLAN_BASE_URL": "htp:/x", "ATLAN_API_KEY": KEY}, "ATLAN_BASE_URL"),
            ({}, "no Atlan tenant configured"),
        ],
    )
    def test_strict_raises_for_a_tenant_setting_and_makes_nothing(
        self, settings: Dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """strict=True asks for delivery: with the tenant's settings wrong or missing, the
        block does not run, TenantSettingsError names the setting and the way to keep lineage
        locally instead, and no event is made (nothing to pair); client="local" runs."""
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        ran = False
        with pytest.raises(TenantSettingsError) as caught, lineage_run(JOB, strict=True):
            ran = True
        assert not ran
        assert named in str(caught.value)
        assert "client='local'" in str(caught.value)
        assert KEY not in str(caught.value)
        assert not caught.value.retryable
        with lineage_run(JOB, strict=True, client="local") as run:
            pass
        assert [e.event_type for e in Outbox(run._delivery.outbox.path).events()] == [
            "START",
            "COMPLETE",
        ]

    @pytest.mark.parametrize("damage", ["garbage", "folder", "symlink-to-text", "home-is-a-file"])
    def test_broken_outbox_still_sends_and_is_never_overwritten(
        self,
        damage: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A broken outbox: the job runs, one warning, and the events still reach Atlan
        (from memory); the damaged file is left as it was."""
        home = tmp_path / "broken"
        home.mkdir()
        path = home / "outbox.db"
        if damage == "garbage":
            path.write_bytes(b"not sqlite at all" * 64)
        elif damage == "folder":
            path.mkdir()
        elif damage == "symlink-to-text":
            (home / "notes.txt").write_text("my notes\n")
            path.symlink_to(home / "notes.txt")
        else:
            home = tmp_path / "a-file"
            home.write_text("not a folder")
        before = path.read_bytes() if path.is_file() else None
        with MockAtlan(home=str(home)) as tenant:
            with lineage_run(JOB, client=tenant.client()):
                result = 42
            assert flush(10)
        assert result == 42
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert any("ATLAN_EXT_HOME" in m or "outbox" in m for m in warnings_of(caplog))
        if before is not None:
            assert path.read_bytes() == before

    def test_wrap_with_a_malformed_url_runs_the_command(self, tmp_path: Path) -> None:
        done = lineage_cli(
            "wrap", "--connection", "c", "--job", "j", "--",
            sys.executable, "-c", "import sys; print('ran'); sys.exit(3)",
            home=tmp_path, ATLAN_BASE_URL="htp:/x", ATLAN_API_KEY=KEY,
        )  # fmt: skip
        assert done.returncode == 3
        assert done.stdout == "ran\n"
        assert "ATLAN_BASE_URL" in done.stderr
        assert "Traceback" not in done.stderr
        assert KEY not in done.stderr
        assert [e.event_type for e in Outbox(tmp_path / "outbox.db").events()] == [
            "START",
            "FAIL",
        ]

    @pytest.mark.parametrize("damage", ["garbage", "folder"])
    def test_wrap_with_a_broken_outbox_runs_the_command(self, damage: str, tmp_path: Path) -> None:
        if damage == "garbage":
            (tmp_path / "outbox.db").write_bytes(b"x" * 4096)
        else:
            (tmp_path / "outbox.db").mkdir()
        done = lineage_cli(
            "wrap", "--connection", "c", "--job", "j", "--", sys.executable, "-c", "print('ran')",
            home=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0
        assert done.stdout == "ran\n"
        assert "ATLAN_EXT_HOME" in done.stderr
        assert "Traceback" not in done.stderr


# -- one timeout per job ---------------------------------------------------------------------

FIVE_RUNS = """
import time
from atlan_ext import Job, lineage_run
started = time.monotonic()
for number in range(5):
    with lineage_run(Job("ol-spark", "hanging"), delivery_timeout=1):
        pass
print(f"{time.monotonic() - started:.3f} {time.time():.3f}", flush=True)
"""


class TestOneTimeoutPerJob:
    def test_five_runs_against_a_hanging_tenant(self, tmp_path: Path) -> None:
        """Five sync runs, delivery_timeout=1, a tenant that never answers, no courier: the
        job waits once, not five times (well under 3 s), exit adds under 1 s, one
        announcement, and all ten events are kept for a replay."""
        with hanging_tenant() as url:
            done = python(
                FIVE_RUNS, tmp_path, ATLAN_BASE_URL=url, ATLAN_API_KEY=KEY, ATLAN_EXT_COURIER="off"
            )
            ended = time.time()
        assert done.returncode == 0, done.stderr
        in_job, last_line = map(float, done.stdout.split())
        assert in_job < 3.0, done.stderr
        # Exit is timed from the script's last line (the interpreter's start and pyatlan's
        # import, 30 s on a busy machine, are not exit's). It waits for a tenant known to be
        # down not at all; while pyatlan is still being imported it gives the sender its
        # bounded moment, exit_flush_seconds (5 s), then stores what is left (a few seconds at
        # most on a busy machine; pyatlan alone would wait ~38 s). 2 s more: the interpreter's
        # own teardown of pyatlan's modules, on a busy machine.
        bound = 1.0 if "pyatlan was still being imported" not in done.stderr else 5.0 + 3.0
        assert ended - last_line < bound + 2.0, (ended - last_line, done.stderr)
        assert "Traceback" not in done.stderr
        # The job's wait ended on pyatlan's import or on the tenant: each is named as such.
        assert "timed out" in done.stderr or "pyatlan was still being imported" in done.stderr
        assert "10 lineage event(s) were not delivered" in done.stderr
        assert "atlan-lineage replay" in done.stderr
        outbox = Outbox(tmp_path / "outbox.db")
        assert outbox.counts() == (10, 0)
        assert len(outbox.claim_pending(100)) == 10  # no claim of the dead process left

    def test_locked_outbox_holds_the_job_at_most_once(self, tmp_path: Path) -> None:
        """Another process holds the outbox in an exclusive transaction: the run's waits on
        it are bounded by delivery_timeout, once per job, and the events are stored once
        the lock is gone."""
        Outbox(tmp_path / "outbox.db").close()
        holder = sqlite3.connect(tmp_path / "outbox.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        code = """
        import time
        from atlan_ext import Job, lineage_run
        from atlan_ext.delivery import flush
        started = time.monotonic()
        for number in range(3):
            with lineage_run(Job("ol-spark", "locked"), delivery_timeout=1):
                pass
        print(f"{time.monotonic() - started:.3f}", flush=True)
        print(flush(15), flush=True)
        """
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=child_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        in_job = float(process.stdout.readline())
        holder.execute("ROLLBACK")
        holder.close()
        out, err = process.communicate(timeout=60)
        assert in_job < 2.5, err
        assert out.strip() == "True", err
        assert "locked" in err
        assert Outbox(tmp_path / "outbox.db").counts() == (6, 0)

    @pytest.mark.parametrize(
        "idle",
        # Idle longer than a sender thread lives without work (10 s): it stays for them.
        [0, pytest.param(12, marks=pytest.mark.slow)],
    )
    def test_delivered_while_the_outbox_is_locked_is_recorded_as_delivered(
        self, tmp_path: Path, loopback_tenant: Tenant, idle: int
    ) -> None:
        """Atlan takes the events while another process holds the outbox: they are recorded
        as delivered once it is free (at the latest at exit), not forgotten: the outbox is
        what status, verify and a resumed run's checks read."""
        Outbox(tmp_path / "outbox.db").close()
        holder = sqlite3.connect(tmp_path / "outbox.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        code = """
        import sys
        import time
        from atlan_ext import Job, lineage_run
        from atlan_ext.delivery import flush
        for number in range(3):
            with lineage_run(Job("ol-spark", "locked-sent"), background=True):
                pass
        print(flush(120), flush=True)
        sys.stdin.readline()  # the test frees the outbox first
        time.sleep(float(sys.argv[1]))
        """
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(idle)],
            env=child_env(
                tmp_path,
                ATLAN_BASE_URL=loopback_tenant.base_url,
                ATLAN_API_KEY="k",
                ATLAN_EXT_COURIER="off",
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdin is not None
        assert process.stderr is not None
        said: List[str] = []
        reader = threading.Thread(target=lambda: said.extend(process.stderr), daemon=True)
        reader.start()
        try:
            assert process.stdout.readline().strip() == "True", said
            assert len(arrived(loopback_tenant)) == 6
            # The sender's store as delivered waited for the lock and gave up meanwhile.
            assert wait_until(lambda: any("locked" in line for line in said), 60), said
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        process.stdin.write("\n")
        process.stdin.close()
        assert process.wait(timeout=120) == 0, said
        reader.join(10)
        assert Outbox(tmp_path / "outbox.db").counts() == (0, 6), said
        assert len(arrived(loopback_tenant)) == 6


# -- errors say which: refused, timed out, HTTP status; 401/403 at once -------------------------


class TestWhichFailure:
    def run_strict(self, url: str, monkeypatch: pytest.MonkeyPatch) -> LineageDeliveryError:
        # pyatlan loaded first, without a deadline (3-30 s): the 2 s below are Atlan's alone,
        # else a first test here is told "pyatlan was still being imported" instead.
        import pyatlan.client.atlan  # noqa: F401

        monkeypatch.setenv("ATLAN_BASE_URL", url)
        monkeypatch.setenv("ATLAN_API_KEY", KEY)
        with (
            pytest.raises(LineageDeliveryError) as caught,
            lineage_run(JOB, strict=True, delivery_timeout=2),
        ):
            pass
        return caught.value

    def test_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        error = self.run_strict(f"http://127.0.0.1:{free_port()}", monkeypatch)
        assert "refused" in str(error)
        assert error.retryable

    def test_timed_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with hanging_tenant() as url:
            error = self.run_strict(url, monkeypatch)
        assert "timed out" in str(error)

    def test_http_status(self, monkeypatch: pytest.MonkeyPatch, loopback_tenant: Tenant) -> None:
        loopback_tenant.script = [500] * 10
        error = self.run_strict(loopback_tenant.base_url, monkeypatch)
        assert "HTTP 500" in str(error)
        assert error.status == 500

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_is_not_retried(
        self, status: int, monkeypatch: pytest.MonkeyPatch, loopback_tenant: Tenant
    ) -> None:
        """A client built from the environment does not retry 401/403: the error is
        LineageAuthenticationError, at once."""
        loopback_tenant.script = [status] * 10
        started = time.monotonic()
        error = self.run_strict(loopback_tenant.base_url, monkeypatch)
        assert isinstance(error, LineageAuthenticationError), error
        assert time.monotonic() - started < 8  # pyatlan's import included; no back-off
        assert len(loopback_tenant.received) <= 2  # pyatlan may refresh a 401 once
        assert KEY not in str(error)
        assert error.__context__ is None
        assert error.__cause__ is None


# -- nothing lost, nothing half sent -----------------------------------------------------------


class TestAtlanIsNotBlamed:
    def test_a_slow_outbox_record_after_a_202_is_not_the_tenants_fault(
        self, tmp_path: Path, loopback_tenant: Tenant, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Atlan answers 202 at once, but another connection holds the outbox for 3 s while
        the delivery is recorded: a strict send that waits 1 s neither raises nor says Atlan
        did not answer, and jobs go on waiting for Atlan (it said "no answer", tripped the
        breaker and strict raised)."""
        from pyatlan.client.atlan import AtlanClient

        path = tmp_path / "outbox.db"
        outbox = Outbox(path)
        answer = threading.Event()
        loopback_tenant.holds = [answer]

        def hold_the_outbox() -> None:
            wait_until(lambda: loopback_tenant.arriving == 1, 120)
            other = sqlite3.connect(path, isolation_level=None, timeout=30)
            other.execute("BEGIN IMMEDIATE")
            answer.set()  # Atlan answers while the outbox is held
            time.sleep(3)
            other.execute("COMMIT")
            other.close()

        holder = threading.Thread(target=hold_the_outbox)
        holder.start()
        client = AtlanClient(base_url=loopback_tenant.base_url, api_key="k", retry=fast_retry())
        delivery = Delivery(client, "spark", outbox=outbox, timeout=1, durable=True, strict=True)
        try:
            delivery.send(build_event("START", JOB, RunId.new()), "START")
        finally:
            answer.set()
            holder.join()
        said = " ".join(warnings_of(caplog))
        assert "timed out" not in said
        assert "no longer wait" not in said
        assert flush(60)
        assert [e.status for e in outbox.events()] == ["delivered"]
        assert [status for *_, status in loopback_tenant.received] == [202]

    def test_a_hand_off_waits_for_the_outbox_at_most_delivery_timeout(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Another process holds the outbox while the delivery thread records a delivery
        (holding this handle meanwhile): a durable hand-off with delivery_timeout=1 waits
        about 1 s, not until the thread gives up on the outbox (it waited 5.5 s), and its
        event still arrives."""
        from pyatlan.client.atlan import AtlanClient

        path = tmp_path / "outbox.db"
        answer = threading.Event()
        loopback_tenant.holds = [answer]
        client = AtlanClient(base_url=loopback_tenant.base_url, api_key="k", retry=fast_retry())
        delivery = Delivery(
            client, "spark", outbox=Outbox(path), timeout=1, durable=True, background=True
        )
        delivery.send(build_event("START", JOB, RunId.new()), "START")
        assert wait_until(lambda: loopback_tenant.arriving == 1, 120)
        other = sqlite3.connect(path, isolation_level=None, timeout=30)
        other.execute("BEGIN IMMEDIATE")
        try:
            answer.set()  # the thread now records the delivery: it waits for the outbox
            time.sleep(0.5)
            started = time.monotonic()
            delivery.send(build_event("START", JOB, RunId.new()), "START")
            waited = time.monotonic() - started
        finally:
            answer.set()
            other.execute("COMMIT")
            other.close()
        assert waited < 5, waited
        assert flush(60)
        assert [status for *_, status in loopback_tenant.received] == [202, 202]


class TestNothingLost:
    def test_strict_start_failure_leaves_no_lone_start(self, tmp_path: Path) -> None:
        """strict=True and a START that is not delivered: the error is raised, the body does
        not run, and the outbox pairs the START with an ABORT for the replay."""
        with MockAtlan(home=str(tmp_path)) as tenant:
            tenant.script(*[503] * 6)
            ran = False
            with (
                pytest.raises(LineageDeliveryError),
                lineage_run(JOB, client=tenant.client(), strict=True),
            ):
                ran = True
            assert not ran
        pending = [e.event for e in Outbox(tmp_path / "outbox.db").events(pending_only=True)]
        assert [e["eventType"] for e in pending] == ["START", "ABORT"]
        assert_paired(pending)

    def test_a_strict_runs_abort_waits_behind_its_start_for_every_courier(
        self, loopback_tenant: Tenant
    ) -> None:
        """strict=True, and Atlan holds the START past the job's wait: the job gives up on
        it while the delivery thread still has it in hand. The run's ABORT is stored behind
        that START, so a replay in another process (as ``atlan-lineage replay`` or another
        process's courier) does not send the ABORT first; this process sends both, START
        first, once Atlan answers."""
        outbox = Path(os.environ["ATLAN_EXT_HOME"]) / "outbox.db"
        replaying = subprocess.Popen(  # pyatlan imported first (3-30 s), then told to go
            [sys.executable, "-c", textwrap.dedent(f"""
                import sys
                from atlan_ext.outbox import Outbox
                from atlan_ext.replay import replay
                from atlan_ext.testing import fast_retry
                from pyatlan.client.atlan import AtlanClient
                client = AtlanClient(
                    base_url={loopback_tenant.base_url!r}, api_key="k", retry=fast_retry()
                )
                print("ready", flush=True)
                sys.stdin.readline()
                print(replay(client, Outbox({str(outbox)!r}), time_limit=1).delivered)
            """)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert replaying.stdout is not None
        assert replaying.stdout.readline().strip() == "ready"
        from pyatlan.client.atlan import AtlanClient

        client = AtlanClient(base_url=loopback_tenant.base_url, api_key="k", retry=fast_retry())
        answer = threading.Event()
        loopback_tenant.holds = [answer]  # the START waits for the test
        loopback_tenant.script = [503]
        loopback_tenant.retry_after = "1"
        try:
            with (
                pytest.raises(LineageDeliveryError),
                lineage_run(JOB, client=client, strict=True, delivery_timeout=0.5),
            ):
                pass
            assert loopback_tenant.arriving == 1  # the START, in the delivery thread's hands
            out, _ = replaying.communicate("go\n", timeout=120)
            assert out.strip() == "0"  # the ABORT waits behind the START
        finally:
            answer.set()
            if replaying.poll() is None:
                replaying.kill()
        assert flush(120)
        sent = [(body["eventType"], status) for _, _, body, status in loopback_tenant.received]
        assert sent == [("START", 503), ("START", 202), ("ABORT", 202)]

    def test_a_run_remembered_never_goes_back_to_an_earlier_state(
        self, loopback_tenant: Tenant
    ) -> None:
        """A run's START is delivered before it is stored; its COMPLETE is refused (400) and
        stored at once; the START stored after it leaves the run remembered as COMPLETE (it
        went back to START: close-orphans would then add an ABORT, and a `complete` step
        would pass its check)."""
        from pyatlan.client.atlan import AtlanClient

        client = AtlanClient(base_url=loopback_tenant.base_url, api_key="k", retry=fast_retry())
        loopback_tenant.script = [202, 202, 202, 400]
        for name in ("first", "second"):  # the first warms the connection: START goes here
            with lineage_run(Job("ol-spark", name), client=client) as run:
                pass
        flush(60)
        outbox = run._delivery.outbox
        assert [(e.event_type, e.status) for e in outbox.events(run.run_id)] == [
            ("START", "delivered"),
            ("COMPLETE", "pending"),
        ]
        record = outbox.run(run.run_id)
        assert record is not None
        assert record.state == "COMPLETE"
        assert run.run_id not in [orphan.run_id for orphan in outbox.orphans(0)]

    def test_a_journal_an_earlier_release_left_is_taken_in(self, tmp_path: Path) -> None:
        """Journal records written before the checksum became Adler-32 (kind 0 in the
        header: CRC-32) by a process now gone are still read and stored when the outbox is
        opened; a record whose checksum does not match ends the chain, as before."""
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        events = [build_event(state, JOB, RUN_ID) for state in ("START", "COMPLETE")]
        data = b""
        for number, event in enumerate(events):
            payload = json.dumps({"c": "spark", "l": event["eventType"], "e": event}).encode()
            checksum = zlib.crc32(payload) ^ (1 if number == 1 else 0)  # the second: torn
            data += struct.pack("<B3xII", 1, len(payload), checksum) + payload
        data += bytes(12)
        folder = tmp_path / "journal"
        folder.mkdir()
        name = f"journal-{socket.gethostname()}-{gone.stdout.strip()}-0123456789ab.bin"
        (folder / name).write_bytes(data)
        stored = Outbox(tmp_path / "outbox.db").events(RUN_ID)
        assert [(e.event_type, e.status) for e in stored] == [("START", "pending")]
        assert stored[0].event == events[0]

    def test_wrap_of_a_missing_command_sends_fail(self, tmp_path: Path) -> None:
        done = lineage_cli(
            "wrap", "--connection", "c", "--job", "j", "--", "no-such-command-xyz",
            home=tmp_path,
        )  # fmt: skip
        assert done.returncode == 127
        assert "Traceback" not in done.stderr
        events = Outbox(tmp_path / "outbox.db").events()
        assert [e.event_type for e in events] == ["START", "FAIL"]

    def test_kill_9_in_background_mode_loses_nothing(self, tmp_path: Path) -> None:
        """Background runs against a tenant that never answers, then kill -9: every event
        the job handed over is in the outbox."""
        code = """
        import time
        from atlan_ext import Job, lineage_run
        for number in range(50):
            with lineage_run(Job("ol-spark", "killed"), background=True):
                pass
        print("handed over", flush=True)
        time.sleep(60)
        """
        with hanging_tenant() as url:
            process = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(code)],
                env=child_env(tmp_path, ATLAN_BASE_URL=url, ATLAN_API_KEY=KEY),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            assert process.stdout.readline() == "handed over\n"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        outbox = Outbox(tmp_path / "outbox.db")
        assert outbox.counts() == (100, 0)
        assert_paired([e.event for e in outbox.claim_pending(1000)])  # dead claims freed

    def test_full_disk_still_delivers(self, tmp_path: Path) -> None:
        """The outbox's disk is full: lineage still reaches Atlan, from memory."""
        mount = tmp_path / "small"
        mount.mkdir()
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
            capture_output=True,
        )
        if made.returncode != 0:
            pytest.skip("cannot mount a small tmpfs here (not root?): full disk not tried")
        try:
            Outbox(mount / "outbox.db").close()
            with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
                while True:
                    filler.write(b"\0" * 4096)
                    filler.flush()
            with MockAtlan(home=str(mount)) as tenant:
                for _ in range(5):
                    with lineage_run(JOB, client=tenant.client(), run_facets=_big_facet()):
                        pass
                assert flush(10)  # delivered from memory: nothing owed
            assert len(tenant.accepted) == 10
            assert_paired(tenant.accepted)
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def _big_facet() -> Dict[str, Any]:
    return {"notes": {"text": "x" * 8192}}


# -- never silent --------------------------------------------------------------------------------

BACKGROUND_SCRIPT = """
from atlan_ext import Job, lineage_run
for number in range(3):
    with lineage_run(Job("ol-spark", "silent"), background=True):
        pass
"""


class TestNeverSilent:
    @pytest.mark.parametrize("fault", ["503", "403", "refused", "hanging"])
    def test_background_announces_what_was_not_delivered(
        self, fault: str, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        with contextlib.ExitStack() as stack:
            if fault in ("503", "403"):
                loopback_tenant.script = [int(fault)] * 100
                url = loopback_tenant.base_url
            elif fault == "refused":
                url = f"http://127.0.0.1:{free_port()}"
            else:
                url = stack.enter_context(hanging_tenant())
            done = python(BACKGROUND_SCRIPT, tmp_path, ATLAN_BASE_URL=url, ATLAN_API_KEY=KEY)
        assert done.returncode == 0
        assert "not delivered to" in done.stderr, done.stderr
        assert url in done.stderr
        assert "a courier process delivers them" in done.stderr or (
            "atlan-lineage replay" in done.stderr  # 403: nothing more goes until it is fixed
        )
        assert KEY not in done.stderr
        assert "Traceback" not in done.stderr

    def test_wrap_announces_what_was_not_delivered(self, tmp_path: Path) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        done = lineage_cli(
            "wrap", "--connection", "c", "--job", "j", "--timeout", "2", "--",
            sys.executable, "-c", "pass",
            home=tmp_path, ATLAN_BASE_URL=url, ATLAN_API_KEY=KEY,
        )  # fmt: skip
        assert done.returncode == 0
        assert "not delivered to" in done.stderr
        assert "a courier process delivers them" in done.stderr

    def test_status_shows_each_pending_events_last_error(self, tmp_path: Path) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        lineage_cli(
            "wrap", "--connection", "c", "--job", "j", "--timeout", "2", "--",
            sys.executable, "-c", "pass",
            home=tmp_path, ATLAN_BASE_URL=url, ATLAN_API_KEY=KEY,
        )  # fmt: skip
        status = lineage_cli("status", home=tmp_path)
        assert status.returncode == 0
        assert status.stdout.count("last error: ") == 2, status.stdout


# -- no secret anywhere --------------------------------------------------------------------------


class TestNoSecret:
    def test_users_error_holding_the_key_is_blanked(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ATLAN_API_KEY", KEY)
        monkeypatch.setenv("ATLAN_BASE_URL", "htp:/x")  # kept locally
        with pytest.raises(RuntimeError), lineage_run(JOB) as run:
            raise RuntimeError(f"login failed with token {KEY}")
        outbox = run._delivery.outbox
        fail = outbox.events(run.run_id)[-1].event
        facet = fail["run"]["facets"]["errorMessage"]
        assert KEY not in facet["message"]
        assert "***" in facet["message"]
        assert KEY not in facet["stackTrace"]
        flush(1)
        for file in Path(outbox.path).parent.rglob("*"):  # the hand-off journal's too
            if file.is_file():
                assert KEY.encode() not in file.read_bytes(), file

    def test_outbox_folder_is_private_under_umask_000(self, tmp_path: Path) -> None:
        home = tmp_path / "private"
        code = """
        import os
        os.umask(0)
        from atlan_ext import Job, lineage_run
        with lineage_run(Job("ol-spark", "umask")):
            pass
        """
        done = python(code, home)
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for file in home.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file


# -- the CLI never prints a traceback -----------------------------------------------------------


class TestCliNeverTracebacks:
    @pytest.mark.parametrize(
        "args",
        [
            ["wrap", "--connection", "c", "--job", "j", "--timeout", "nan", "--", "true"],
            ["wrap", "--connection", "c", "--job", "j", "--timeout", "inf", "--", "true"],
            ["replay", "--batch-size", "-1"],
            ["replay", "--limit", "0"],
            ["status", "--limit", "x"],
            ["replay", "--base-url", "htp:/x"],
        ],
    )
    def test_bad_arguments_are_usage_errors(self, args: List[str], tmp_path: Path) -> None:
        done = lineage_cli(*args, home=tmp_path, ATLAN_API_KEY=KEY)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("atlan-lineage"), done.stderr
        assert "--" in last or "ATLAN_" in last  # it names the argument or setting

    def test_bad_base_url_is_named(self, tmp_path: Path) -> None:
        done = lineage_cli("replay", "--base-url", "htp:/x", home=tmp_path, ATLAN_API_KEY=KEY)
        assert "--base-url" in done.stderr

    def test_outbox_that_is_a_folder(self, tmp_path: Path) -> None:
        (tmp_path / "outbox.db").mkdir()
        done = lineage_cli("status", home=tmp_path)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1
        assert "ATLAN_EXT_HOME" in done.stderr

    def test_replay_on_a_read_only_outbox(self, tmp_path: Path) -> None:
        with MockAtlan(home=str(tmp_path)):
            pass
        with lineage_run(JOB, client="local", outbox=Outbox(tmp_path / "outbox.db")):
            pass
        assert flush(60)  # stored by this process's delivery thread before the outbox is shared
        mount = tmp_path / "ro"
        mount.mkdir()
        made = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(tmp_path), str(mount)], capture_output=True
        )
        if made.returncode != 0:
            pytest.skip("cannot bind-mount read-only here (not root?)")
        try:
            done = lineage_cli(
                "replay", home=mount, ATLAN_BASE_URL=f"http://127.0.0.1:{free_port()}",
                ATLAN_API_KEY=KEY,
            )  # fmt: skip
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "atlan-lineage:" in done.stderr

    def test_status_into_a_closed_pipe(self, tmp_path: Path) -> None:
        for _ in range(30):
            with lineage_run(JOB, client="local", outbox=Outbox(tmp_path / "outbox.db")):
                pass
        done = subprocess.run(
            f"{sys.executable} -m atlan_ext.cli status | head -1",
            shell=True,
            env=child_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in done.stderr
        assert "BrokenPipe" not in done.stderr


class TestPythonArguments:
    @pytest.mark.parametrize(
        "options",
        [
            {"delivery_timeout": "10"},
            {"delivery_timeout": float("inf")},
            {"delivery_timeout": float("nan")},
            {"delivery_timeout": 0},
            {"client": 42},
            {"client": "https://tenant.atlan.com"},
            {"inputs": "s3://bucket/key"},
            {"outputs": "s3://bucket/key"},
        ],
    )
    def test_checked_at_the_call(self, options: Dict[str, Any]) -> None:
        with pytest.raises(AtlanExtError) as caught:
            lineage_run(JOB, **options)
        assert isinstance(caught.value, (ValueError, TypeError))
        text = str(caught.value)
        assert any(name in text for name in ("delivery_timeout", "client", "inputs", "outputs"))
        if "inputs" in options or "outputs" in options:
            assert "['s3://bucket/key']" in text


class TestFacetSize:
    def test_a_huge_facet_is_refused_at_the_call(self) -> None:
        with pytest.raises(AtlanExtError) as caught:
            lineage_run(JOB, run_facets={"dump": {"text": "x" * 2_000_000}})
        assert "'dump'" in str(caught.value)
        assert "1 MB" in str(caught.value)

    def test_a_huge_error_message_still_ends_the_run(self) -> None:
        """The run must end even when the user's exception text is megabytes long."""
        from atlan_ext.testing import capture_lineage

        with capture_lineage() as events, pytest.raises(ValueError):
            with lineage_run(JOB):
                raise ValueError("y" * 5_000_000)
        assert [e["eventType"] for e in events] == ["START", "FAIL"]
        message = events[-1]["run"]["facets"]["errorMessage"]["message"]
        assert len(message) < 20_000
        assert "characters left out" in message


FORKED = """
import os, sys
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "parent")):
    pass
pid = os.fork()
if pid == 0:  # what Airflow's task runner does: run, emit, os._exit
    with lineage_run(Job("ol-spark", "child")):
        pass
    os._exit(0)
os.waitpid(pid, 0)
with lineage_run(Job("ol-spark", "parent_again")):
    pass
"""


FORKED_WHILE_IMPORTING = """
import importlib.abc, os, sys, time
PARENT = os.getpid()
class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pyatlan.client.atlan" and os.getpid() == PARENT:
            time.sleep(6)  # the delivery thread is importing pyatlan when the fork comes
        return None
sys.meta_path.insert(0, Slow())
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "parent"), delivery_timeout=1):
    pass
pid = os.fork()
if pid == 0:
    with lineage_run(Job("ol-spark", "child"), delivery_timeout=1):
        pass
    time.sleep(3)  # a while past the delivery thread's first pause (1 s): no busy loop
    print("child done", flush=True)
    sys.exit(0)
os.waitpid(pid, 0)
"""


FORKED_AND_GONE = """
import os
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "parent")):
    pass
pid = os.fork()
if pid == 0:  # hands its run over and is gone at once: the run is in its journal, or sent
    with lineage_run(Job("ol-spark", "child"), background=True):
        pass
    os._exit(0)
os.waitpid(pid, 0)
"""

GONE_AT_ONCE = """
import os, signal
from atlan_ext import Job, lineage_run
with lineage_run(Job("ol-spark", "gone"), background=True):
    pass
os.kill(os.getpid(), signal.SIGKILL)
"""


def job_states(tenant: Tenant) -> List[Any]:
    """(job name, event type) of every event the tenant received, sorted."""
    return sorted((e["job"]["name"], e["eventType"]) for e in arrived(tenant))


class TestFork:
    @pytest.mark.slow  # waits on real processes for long: run by .ci/run
    def test_a_child_forked_while_pyatlan_is_imported_hands_its_run_to_a_courier(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Forked while the parent's delivery thread imports pyatlan, the child cannot import
        it (the import lock stays held by a thread it does not have: it would wait forever or
        get a half-made module, and its run was lost as a "settings" error): it says so, and
        a courier delivers its run once it ends."""
        done = python(
            FORKED_WHILE_IMPORTING,
            tmp_path,
            ATLAN_BASE_URL=loopback_tenant.base_url,
            ATLAN_API_KEY=KEY,
        )
        assert done.returncode == 0, done.stderr
        assert "child done" in done.stdout
        assert "it was forked while another thread was importing it" in done.stderr
        assert "cannot make a client" not in done.stderr
        assert "unexpected error" not in done.stderr  # the delivery thread ran in a loop

        expected = sorted(
            (job, state) for job in ("parent", "child") for state in ("START", "COMPLETE")
        )
        assert wait_until(lambda: len(job_states(loopback_tenant)) >= len(expected), 180), (
            job_states(loopback_tenant)
        )
        assert job_states(loopback_tenant) == expected

    def test_what_a_child_gone_at_once_left_goes_with_the_parent_s_courier(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """The child hands its run over and ends with os._exit: what its journal holds is
        taken in by the parent at exit (the parent delivered all of its own) and delivered by
        the parent's courier. Before, it waited for some later process to open the outbox."""
        done = python(
            FORKED_AND_GONE, tmp_path, ATLAN_BASE_URL=loopback_tenant.base_url, ATLAN_API_KEY=KEY
        )
        assert done.returncode == 0, done.stderr
        expected = sorted(
            (job, state) for job in ("parent", "child") for state in ("START", "COMPLETE")
        )
        assert wait_until(lambda: len(job_states(loopback_tenant)) >= len(expected), 180), (
            job_states(loopback_tenant),
            done.stderr,
        )
        assert job_states(loopback_tenant) == expected

    def test_a_running_courier_takes_in_the_journal_of_a_process_gone_since(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """A courier loop already running when a process is killed right after its run (no
        tenant of its own: its run is in its journal, or stored) delivers that run without
        any other process opening the outbox. Before, the loop took in journals only when the
        outbox was opened."""
        outbox = Outbox(tmp_path / "outbox.db")
        stop = threading.Event()
        results: List[Any] = []
        courier = threading.Thread(
            target=lambda: results.append(
                drain(
                    AtlanTenant(loopback_tenant.base_url, KEY, 10.0).client(),
                    outbox,
                    seconds=300,
                    linger=300,
                    stop=stop,
                )
            ),
            daemon=True,
        )
        courier.start()
        try:
            killed = python(GONE_AT_ONCE, tmp_path)
            assert killed.returncode == -signal.SIGKILL, killed.stderr
            assert wait_until(lambda: len(job_states(loopback_tenant)) >= 2, 180), (
                job_states(loopback_tenant),
                killed.stderr,
            )
        finally:
            stop.set()
            courier.join(60)
        assert job_states(loopback_tenant) == [("gone", "COMPLETE"), ("gone", "START")]
        assert outbox.counts()[0] == 0

    def test_a_forked_child_sends_its_own_once_and_leaves_the_parent_working(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """The child uses none of the parent's threads, locks or connections: its run
        arrives once, although it leaves with os._exit; the parent goes on sending."""
        done = python(FORKED, tmp_path, ATLAN_BASE_URL=loopback_tenant.base_url, ATLAN_API_KEY=KEY)
        assert done.returncode == 0, done.stderr
        expected = sorted(
            [(job, state) for job in ("parent", "child", "parent_again")
             for state in ("START", "COMPLETE")]
        )  # fmt: skip

        # What pyatlan's import on a busy machine kept either process from sending goes with
        # the courier that takes over at exit: wait for it, generously.
        assert wait_until(lambda: len(job_states(loopback_tenant)) >= len(expected), 180), (
            job_states(loopback_tenant)
        )
        assert job_states(loopback_tenant) == expected
        outbox = Outbox(tmp_path / "outbox.db")
        assert outbox.counts()[0] == 0
