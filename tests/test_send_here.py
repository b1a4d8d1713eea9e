"""Sync delivery on the job's own thread: when the client's timeouts bound a send within
``delivery_timeout`` and Atlan answered moments ago, a sync run sends its events itself
instead of through the delivery thread (two thread hand-offs less), with the same order,
bound and bookkeeping; otherwise it hands them over as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import pytest
import respx
from conftest import Tenant

from atlan_ext import Job, lineage_run
from atlan_ext.delivery import default_outbox, flush
from atlan_ext.send import Tenant as AtlanTenant
from atlan_ext.send import longest_send

JOB = Job("ol-spark", "nightly_orders_load")
URL = "https://tenant.atlan.test"


def bounded_client(base_url: str = URL, read: float = 2.0) -> Any:
    from httpx_retries import Retry
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(  # type: ignore[no-untyped-call]
        base_url=base_url, api_key="k", connect_timeout=0.5, read_timeout=read, retry=Retry(total=0)
    )


@pytest.fixture
def gate() -> Dict[str, threading.Event]:
    """Once ``armed``, the next lineage POST is ``held`` until ``release`` (10 s at most)."""
    return {name: threading.Event() for name in ("armed", "held", "release")}


@pytest.fixture
def senders(gate: Dict[str, threading.Event]) -> Iterator[List[Tuple[str, str, str]]]:
    """A tenant mocked with respx that notes, per event it accepts, the event's state, the
    thread that sent it and its run."""
    seen: List[Tuple[str, str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        name = threading.current_thread().name
        for event in body if isinstance(body, list) else [body]:
            seen.append((event["eventType"], name, event["run"]["runId"]))
        if gate["armed"].is_set() and not gate["held"].is_set():
            gate["held"].set()
            gate["release"].wait(10)
        return httpx.Response(202)

    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.post(path__regex=r"/events/openlineage/.*").mock(side_effect=answer)
        yield seen
    flush(5)


class TestWhichThread:
    def test_a_bounded_client_sends_on_the_jobs_thread(
        self, senders: List[Tuple[str, str, str]]
    ) -> None:
        """The first send goes through the delivery thread (no answer yet: the connection may
        be cold); once Atlan has answered, every event leaves from the job's own thread, in
        order, and is stored as delivered."""
        client = bounded_client()
        for _ in range(3):
            with lineage_run(JOB, client=client):
                pass
        assert [state for state, _, _ in senders] == ["START", "COMPLETE"] * 3
        assert senders[0][1] == "atlan-ext-sender"
        assert {name for _, name, _ in senders[1:]} == {threading.current_thread().name}
        assert flush(5)
        assert default_outbox().counts() == (0, 6)

    def test_pyatlans_default_client_goes_through_the_delivery_thread(
        self, senders: List[Tuple[str, str, str]]
    ) -> None:
        """pyatlan's defaults (read timeout 900 s, 5 retries) do not fit delivery_timeout: a
        hanging tenant could hold the job, so every send goes through the delivery thread."""
        from pyatlan.client.atlan import AtlanClient

        client = AtlanClient(base_url=URL, api_key="k")  # type: ignore[no-untyped-call]
        for _ in range(3):
            with lineage_run(JOB, client=client):
                pass
        assert {name for _, name, _ in senders} == {"atlan-ext-sender"}

    def test_a_short_delivery_timeout_keeps_the_delivery_thread(
        self, senders: List[Tuple[str, str, str]]
    ) -> None:
        """The same bounded client (a send may take 2.5 s) with delivery_timeout=1: the
        client's bound does not fit, so the job never sends itself."""
        client = bounded_client()
        for _ in range(3):
            with lineage_run(JOB, client=client, delivery_timeout=1):
                pass
        assert {name for _, name, _ in senders} == {"atlan-ext-sender"}


class TestOrder:
    def test_threads_sharing_a_client_keep_each_runs_order(
        self, senders: List[Tuple[str, str, str]], gate: Dict[str, threading.Event]
    ) -> None:
        """Four threads run sync runs on one bounded client. The first one's START goes out
        from its own thread and Atlan holds it until the other three have handed theirs to
        the delivery thread (a read of the outbox sees them waiting); then all run freely.
        Every run arrives START first, nothing is lost, everything is stored as delivered."""
        client = bounded_client()
        with lineage_run(JOB, client=client):  # Atlan answered: the next send may go here
            pass
        assert flush(5)  # and the delivery thread holds nothing
        gate["armed"].set()
        runs: List[str] = []

        def work() -> None:
            for _ in range(15):
                with lineage_run(JOB, client=client) as run:
                    pass
                runs.append(run.run_id)

        threads = [threading.Thread(target=work, name=f"job-{n}") for n in range(4)]
        threads[0].start()
        assert gate["held"].wait(10)
        for thread in threads[1:]:
            thread.start()
        deadline = time.monotonic() + 10
        while default_outbox().counts()[0] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)  # a read stores what waits: job-0's START and the three others
        pending = default_outbox().counts()[0]
        gate["release"].set()
        for thread in threads:
            thread.join()
        assert flush(5)
        assert pending == 4  # none hidden in the delivery thread's hands
        assert len(senders) == 122
        firsts = {name: state for state, name, _ in reversed(senders[2:])}
        assert senders[2][:2] == ("START", "job-0")  # held, on its own thread
        assert firsts.get("atlan-ext-sender") == "START"  # the others', handed over meanwhile
        assert default_outbox().counts() == (0, 122)
        for run_id in runs:
            states = [state for state, _, run in senders if run == run_id]
            assert states == ["START", "COMPLETE"]


class TestBound:
    def test_a_hang_after_a_warm_start_holds_the_job_at_most_the_timeout(
        self, loopback_tenant: Tenant
    ) -> None:
        """Atlan answers one run, then stops answering: the next run's START, sent on the
        job's thread, gives up at the client's read timeout (within delivery_timeout), the
        COMPLETE does not wait at all, and both are delivered, START first, once Atlan
        answers again."""
        client = bounded_client(loopback_tenant.base_url, read=0.4)
        with lineage_run(JOB, client=client):
            pass
        loopback_tenant.delay = 1.5
        started = time.monotonic()
        with lineage_run(JOB, client=client, delivery_timeout=1) as run:
            pass
        held = time.monotonic() - started
        loopback_tenant.delay = 0
        assert held < 1.5  # 0.4 s read timeout, nothing else waited for
        assert flush(15)
        mine = [
            event["eventType"]
            for _, _, body, status in loopback_tenant.received
            for event in (body if isinstance(body, list) else [body])
            if event["run"]["runId"] == run.run_id and status == 202
        ]
        assert mine[0] == "START"
        assert "COMPLETE" in mine
        assert default_outbox().counts()[0] == 0


SIGTERM_SCRIPT = """
import sys, time
import atlan_ext.delivery
from httpx_retries import Retry
from pyatlan.client.atlan import AtlanClient
from atlan_ext import Job, lineage_run

atlan_ext.delivery.exit_flush_seconds = 1
client = AtlanClient(
    base_url=sys.argv[1], api_key="k", connect_timeout=1, read_timeout=8, retry=Retry(total=0)
)
job = Job("ol-spark", "killed")
with lineage_run(job, client=client):
    pass
print("warm", flush=True)
sys.stdin.readline()  # the test slows the tenant first
with lineage_run(job, client=client, delivery_timeout=10):  # START hangs on this thread
    pass
"""


class TestSigterm:
    def test_sigterm_during_a_send_on_the_jobs_thread(
        self, loopback_tenant: Tenant, tmp_path: Path
    ) -> None:
        """SIGTERM while the job's thread waits for Atlan in its own send: the handler's
        ABORT does not wait behind the send it interrupted; the process dies of SIGTERM within
        the exit flush (1 s here), and START and ABORT are kept for a replay."""
        env: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith("ATLAN_")}
        env["ATLAN_EXT_HOME"] = str(tmp_path)
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SIGTERM_SCRIPT), loopback_tenant.base_url],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdin is not None
        assert process.stdout.readline().strip() == "warm"
        loopback_tenant.delay = 30
        before = loopback_tenant.arriving
        process.stdin.write("go\n")
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while loopback_tenant.arriving == before:  # the START is on its way: it hangs there
            assert time.monotonic() < deadline, "the second run's START never reached Atlan"
            time.sleep(0.01)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == -signal.SIGTERM
        assert time.monotonic() - signalled < 5  # not the 10 s delivery_timeout
        from atlan_ext.outbox import Outbox

        kept = Outbox(tmp_path / "outbox.db").events(pending_only=True)
        assert [event.event_type for event in kept] == ["START", "ABORT"]
        loopback_tenant.delay = 0


class TestLongestSend:
    def test_the_environments_client_fits_its_timeout(self) -> None:
        """The client built from ATLAN_BASE_URL/ATLAN_API_KEY makes one attempt whose connect
        and read timeouts add up to the delivery timeout."""
        for timeout in (1.0, 10.0, 60.0):
            client = AtlanTenant(URL, "k", timeout).client()
            assert longest_send(client) == pytest.approx(timeout)

    def test_pyatlans_defaults(self) -> None:
        """Connect 30 s + read 900 s, six attempts, up to 120 s between them."""
        from pyatlan.client.atlan import AtlanClient

        client = AtlanClient(base_url=URL, api_key="k")  # type: ignore[no-untyped-call]
        assert longest_send(client) == pytest.approx(6 * 930 + 5 * 120)

    def test_sleeps_capped_by_total_timeout(self) -> None:
        from httpx_retries import Retry
        from pyatlan.client.atlan import AtlanClient

        retry = Retry(total=2, max_backoff_wait=5)
        retry.total_timeout = 3  # httpx-retries 0.5+ has it (not the one Python 3.9 gets)
        client = AtlanClient(  # type: ignore[no-untyped-call]
            base_url=URL, api_key="k", connect_timeout=1, read_timeout=2, retry=retry
        )
        assert longest_send(client) == pytest.approx(3 * 3 + 3)

    def test_unreadable_settings_have_no_bound(self) -> None:
        """A retry policy of another kind (it may sleep as it likes), or no timeouts."""
        from httpx_retries import Retry

        class Patient(Retry):
            pass

        class Client:
            connect_timeout = 1.0
            read_timeout = 1.0
            retry: Any = Patient(total=0)

        assert longest_send(Client()) is None
        Client.retry = Retry(total=0)
        assert longest_send(Client()) == pytest.approx(2.0)
        Client.read_timeout = float("inf")
        assert longest_send(Client()) is None
        assert longest_send(object()) is None
