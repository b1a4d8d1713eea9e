"""Background delivery: order kept, batches, a bounded queue, and nothing lost at exit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import Tenant

from atlan_ext import Job, lineage_run
from atlan_ext.delivery import default_outbox, flush
from atlan_ext.outbox import Outbox
from atlan_ext.testing import MockAtlan, assert_paired

JOB = Job("ol-spark", "background_job")


def background_runs(tenant: MockAtlan, count: int) -> None:
    """``count`` empty runs in a row, delivered in the background to ``tenant``."""
    client = tenant.client()
    for _ in range(count):
        with lineage_run(JOB, client=client, background=True):
            pass


class TestOrder:
    def test_every_run_arrives_start_first(self) -> None:
        """Many background runs: every event arrives, each run's START before its end."""
        with MockAtlan(home=os.environ["ATLAN_EXT_HOME"]) as tenant:
            background_runs(tenant, 300)
            assert flush(30)
        assert len(tenant.accepted) == 600
        assert_paired(tenant.accepted)
        assert default_outbox().counts() == (0, 600)

    def test_batched_into_few_requests(self) -> None:
        """Events queued while a request is under way go out together, as one array."""
        with MockAtlan() as tenant:
            tenant.latency = 0.05
            background_runs(tenant, 200)
            assert flush(30)
        assert len(tenant.accepted) == 400
        assert len(tenant.received) < 100
        assert_paired(tenant.accepted)

    def test_delivered_promptly_after_a_pause(self) -> None:
        """Runs close together are handed over without waking the delivery thread, which
        looks at its queue on its own for a moment after it took work; a run after a longer
        pause wakes it: delivered at once, not after the thread's 10 s idle wait."""
        with MockAtlan() as tenant:
            client = tenant.client()  # one client: one sender, its thread alive throughout
            for _ in range(20):
                with lineage_run(JOB, client=client, background=True):
                    pass
            assert flush(600)  # pyatlan loaded, and the thread looking
            time.sleep(1.5)  # it stopped looking (1 s after it last took work)
            started = time.monotonic()
            with lineage_run(JOB, client=client, background=True):
                pass
            assert flush(600)
            took = time.monotonic() - started
        assert len(tenant.accepted) == 42
        assert took < 6, f"the run after a pause waited {took:.1f} s for the delivery thread"

    def test_failure_keeps_the_rest_behind(self, caplog: pytest.LogCaptureFixture) -> None:
        """A background START that is not accepted keeps its run's later events behind it
        (nothing overtakes it), one warning says so, and once Atlan answers again the sender
        itself sends them, START first."""
        with (
            MockAtlan(home=os.environ["ATLAN_EXT_HOME"]) as tenant,
            caplog.at_level(logging.WARNING, logger="atlan_ext"),
        ):
            tenant.script(*[503] * 6)
            background_runs(tenant, 1)
            deadline = time.monotonic() + 10
            while not tenant.received and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            assert tenant.accepted == []
            assert [e.event_type for e in default_outbox().events(pending_only=True)] == [
                "START",
                "COMPLETE",
            ]
            assert flush(30)  # the tenant answers again: the sender sends what it kept
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        warnings = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
        assert len(warnings) == 1
        assert "HTTP 503" in warnings[0]
        assert default_outbox().counts() == (0, 2)


class TestBoundedQueue:
    def test_overflow_is_sent_by_the_sender_once_there_is_room(self) -> None:
        """More events than the in-memory bound while Atlan is slow: the overflow waits in
        the outbox and the sender sends it once there is room; every event arrives, each
        run in order."""
        with MockAtlan(home=os.environ["ATLAN_EXT_HOME"]) as tenant:
            tenant.latency = 0.5
            runs = 5_100  # 10,200 events: over the 10,000 the sender keeps in memory
            background_runs(tenant, runs)
            tenant.latency = 0
            assert flush(120)
        assert default_outbox().counts() == (0, 2 * runs)
        assert len(tenant.accepted) == 2 * runs
        assert_paired(tenant.accepted)


SCRIPT = """
import sys
from atlan_ext import Job, lineage_run
from pyatlan.client.atlan import AtlanClient
from atlan_ext.testing import fast_retry
client = AtlanClient(base_url=sys.argv[1], api_key="k", retry=fast_retry())
for _ in range(int(sys.argv[2])):
    with lineage_run(Job("ol-spark", "exiting"), client=client, background=True):
        pass
print("exiting", flush=True)
"""


def run_script(tmp_path: Path, base_url: str, runs: int) -> float:
    """Run SCRIPT; the seconds from its last run to its exit (pyatlan's import, which can
    take 30 s on a busy machine, is not part of what exit may take)."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), base_url, str(runs)],
        # No courier takes over at exit: what the test sees is what the script's exit left.
        env={"ATLAN_EXT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "ATLAN_EXT_COURIER": "off"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "exiting"
    ended = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return time.monotonic() - ended


class TestExit:
    def test_flush_at_exit(self, tmp_path: Path, loopback_tenant: Tenant) -> None:
        """A script that exits right after its runs still delivers them: exit flushes."""
        run_script(tmp_path, loopback_tenant.base_url, 200)
        arrived = [
            e
            for *_, body, _ in loopback_tenant.received
            for e in (body if isinstance(body, list) else [body])
        ]
        assert len(arrived) == 400
        assert_paired(arrived)
        assert Outbox(tmp_path / "outbox.db").counts() == (0, 400)

    def test_nothing_lost_when_exiting_while_atlan_is_down(self, tmp_path: Path) -> None:
        """Atlan down: the script still exits within the bounded flush, and every event is
        in the outbox, free for the next replay."""
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        elapsed = run_script(tmp_path, f"http://127.0.0.1:{port}", 50)
        assert elapsed < 30
        outbox = Outbox(tmp_path / "outbox.db")
        assert outbox.counts() == (100, 0)
        assert len(outbox.claim_pending(1000)) == 100  # no claim of the dead process left
