"""Checked submission through pyatlan's real clients, against a tenant mocked at the httpx
layer (respx): a send counts only when Atlan answered 202, and nothing undelivered is lost."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, List

import httpx
import pytest

from atlan_ext import (
    Job,
    LineageAuthenticationError,
    LineageDeliveryError,
    LineageNotConfiguredError,
    lineage_run,
)
from atlan_ext.delivery import flush
from atlan_ext.outbox import Outbox
from atlan_ext.testing import MockAtlan, assert_paired, isolated_outbox

JOB = Job("ol-spark", "nightly_orders_load")
SECRET = "sk-test-0123456789-secret"


@pytest.fixture
def tenant() -> Any:
    with MockAtlan(api_key=SECRET) as mock:
        yield mock


def outbox() -> Outbox:
    from atlan_ext.delivery import default_outbox

    return default_outbox()


def pending_states() -> List[str]:
    return [e.event_type for e in outbox().events(pending_only=True)]


class TestCheckedSubmission:
    def test_accepted(self, tenant: MockAtlan) -> None:
        """202 for START and COMPLETE: both delivered, nothing pending."""
        with lineage_run(JOB, client=tenant.client(), inputs=["s3://b/in"]):
            pass
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert {r.connector for r in tenant.received} == {"spark"}
        assert pending_states() == []
        assert outbox().counts() == (0, 2)

    def test_503_forever_is_not_lost(
        self, tenant: MockAtlan, caplog: pytest.LogCaptureFixture
    ) -> None:
        """pyatlan returns None after its retries end on 503; we count that as undelivered,
        warn, and keep both events in the outbox (COMPLETE queued behind START)."""
        tenant.script(*[503] * 12)
        with caplog.at_level(logging.WARNING, logger="atlan_ext"):
            with lineage_run(JOB, client=tenant.client()):
                pass
        assert tenant.accepted == []
        # COMPLETE, which the job no longer waits for, is stored by the sender a moment later.
        deadline = time.monotonic() + 5
        while len(pending_states()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pending_states() == ["START", "COMPLETE"]
        assert len(tenant.received) == 6  # pyatlan's 6 attempts for START; COMPLETE waits
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one warning per run, not per event
        assert "HTTP 503" in warnings[0].getMessage()
        assert "atlan-lineage replay" in warnings[0].getMessage()

    def test_503_then_202_delivered_once(self, tenant: MockAtlan) -> None:
        """503, 503, 202: pyatlan's retries deliver START once; COMPLETE follows."""
        tenant.script(503, 503, 202)
        with lineage_run(JOB, client=tenant.client()):
            pass
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert [r.status for r in tenant.received] == [503, 503, 202, 202]
        assert pending_states() == []

    def test_429_with_retry_after(self, tenant: MockAtlan) -> None:
        """429 with Retry-After is retried by pyatlan and then delivered."""
        tenant.script((429, {"Retry-After": "0"}), 202)
        with lineage_run(JOB, client=tenant.client()):
            pass
        assert [r.status for r in tenant.received] == [429, 202, 202]
        assert pending_states() == []

    def test_connect_error(self, tenant: MockAtlan) -> None:
        """A tenant that refuses connections: nothing delivered, all kept, no exception."""
        tenant.down()
        with lineage_run(JOB, client=tenant.client()) as run:
            pass
        assert run.state is not None
        assert pending_states() == ["START", "COMPLETE"]
        error = outbox().events()[0].last_error or ""
        assert "ConnectError" in error

    def test_not_configured(self, tenant: MockAtlan) -> None:
        """Atlan's plain-text 401 "url path not configured" becomes LineageNotConfiguredError,
        naming the connector and how to create the connection."""
        tenant.not_configured()
        with pytest.raises(LineageNotConfiguredError) as caught:
            with lineage_run(JOB, client=tenant.client(), connector_type="airflow", strict=True):
                pass
        message = str(caught.value)
        assert "'airflow'" in message
        assert "create_connection" in message
        assert caught.value.status == 401
        assert tenant.received[0].connector == "airflow"

    def test_plain_401_is_authentication(self, tenant: MockAtlan) -> None:
        """A 401 that is not about the url path is an authentication error, never showing the
        token."""
        tenant.script(
            (
                401,
                {"content-type": "application/json"},
                '{"errorCode": 401, "errorMessage": "bad token ' + SECRET + '"}',
            )
        )
        with pytest.raises(LineageAuthenticationError) as caught:
            with lineage_run(JOB, client=tenant.client(), strict=True):
                pass
        assert caught.value.retryable is False
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)

    def test_400_is_not_retryable(self, tenant: MockAtlan) -> None:
        """A 400 is a LineageDeliveryError with its status, not retryable."""
        tenant.script((400, {}, "bad event"))
        with pytest.raises(LineageDeliveryError) as caught:
            with lineage_run(JOB, client=tenant.client(), strict=True):
                pass
        assert caught.value.status == 400
        assert caught.value.retryable is False

    def test_a_refused_run_is_not_waited_for(self, tenant: MockAtlan) -> None:
        """A strict run whose START Atlan refused (400): its ABORT waits in the outbox behind
        it for a replay, and nothing else is owed: flush says at once that not everything
        was delivered (it used to wait 10 s for the sender to look, then answer True)."""
        from atlan_ext.delivery import flush

        tenant.script((400, {}, "bad event"))
        with pytest.raises(LineageDeliveryError):
            with lineage_run(JOB, client=tenant.client(), strict=True):
                pass
        assert flush(timeout=60) is False
        assert [e["eventType"] for e in tenant.events] == ["START"]
        assert pending_states() == ["START", "ABORT"]

    def test_strict_start_failure_skips_the_body(self, tenant: MockAtlan) -> None:
        """In strict mode a START that is not delivered raises before the body runs."""
        tenant.script(*[503] * 6)
        ran = []
        with pytest.raises(LineageDeliveryError) as caught:
            with lineage_run(JOB, client=tenant.client(), strict=True):
                ran.append(True)
        assert ran == []
        assert caught.value.status == 503
        assert caught.value.retryable is True

    def test_strict_never_hides_the_users_exception(self, tenant: MockAtlan) -> None:
        """Even in strict mode, the user's own exception wins over a lineage failure."""
        with pytest.raises(KeyError), lineage_run(JOB, client=tenant.client(), strict=True):
            tenant.down()
            raise KeyError("users own")

    def test_lineage_failure_never_changes_the_return_value(self, tenant: MockAtlan) -> None:
        """Non-strict: a tenant that is down changes neither result nor exceptions."""
        tenant.down()

        @lineage_run(JOB, client=tenant.client())
        def compute() -> int:
            return 42

        assert compute() == 42

    def test_secret_never_in_logs_or_outbox(
        self, tenant: MockAtlan, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The API token reaches neither the log, nor the outbox, nor a stored error."""
        tenant.script((500, {}, "echo: Bearer " + SECRET), *[500] * 5)
        with caplog.at_level(logging.DEBUG), lineage_run(JOB, client=tenant.client()):
            pass
        assert SECRET not in caplog.text
        with open(outbox().path, "rb") as handle:
            assert SECRET.encode() not in handle.read()
        assert all(SECRET not in (e.last_error or "") for e in outbox().events())


class TestBoundedWait:
    def test_slow_tenant_holds_the_job_at_most_the_timeout(self, tenant: MockAtlan) -> None:
        """With Atlan slower than delivery_timeout, the job waits once at most the timeout;
        the run's later events queue behind without waiting, and delivery finishes in the
        background, in order."""
        import threading
        import time

        release = threading.Event()

        def slow(request: httpx.Request) -> httpx.Response:
            release.wait(5)
            return httpx.Response(202)

        tenant.script()  # default answers
        started = time.monotonic()
        route_calls: List[str] = []
        original = tenant._answer

        def answer(request: httpx.Request) -> httpx.Response:
            route_calls.append(request.method)
            if len(route_calls) == 1:
                slow(request)
            result: httpx.Response = original(request)
            return result

        tenant._answer = answer  # type: ignore[method-assign]
        try:
            with lineage_run(JOB, client=tenant.client(), delivery_timeout=0.2):
                pass
            elapsed = time.monotonic() - started
        finally:
            release.set()
        from atlan_ext.delivery import flush

        assert flush(5)
        assert elapsed < 2.0
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert pending_states() == []


class TestAsyncClient:
    def test_async_with_async_client(self, tenant: MockAtlan) -> None:
        """async with + AsyncAtlanClient sends on the caller's loop; methods are awaitable."""

        async def main() -> None:
            client = tenant.async_client()
            async with lineage_run(JOB, client=client) as run:
                await run.running()
            async with lineage_run(JOB, client=client):
                raise_later = False
                assert not raise_later

        asyncio.run(main())
        assert [e["eventType"] for e in tenant.accepted] == [
            "START",
            "RUNNING",
            "COMPLETE",
            "START",
            "COMPLETE",
        ]
        assert_paired(tenant.accepted)
        assert pending_states() == []

    def test_async_503_kept(self, tenant: MockAtlan) -> None:
        """The async path catches pyatlan's silent 503 too."""
        tenant.script(*[503] * 6)

        async def main() -> None:
            async with lineage_run(JOB, client=tenant.async_client()):
                pass

        asyncio.run(main())
        assert pending_states() == ["START", "COMPLETE"]

    def test_plain_with_refuses_async_client(self, tenant: MockAtlan) -> None:
        """A plain with and an AsyncAtlanClient: a clear error before anything is sent."""
        with pytest.raises(TypeError, match="async with"):
            with lineage_run(JOB, client=tenant.async_client()):
                pass
        assert tenant.received == []


class TestEnvironment:
    def test_client_from_environment(
        self, tenant: MockAtlan, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With no client and ATLAN_BASE_URL/ATLAN_API_KEY set, those are used."""
        monkeypatch.setenv("ATLAN_BASE_URL", tenant.base_url)
        monkeypatch.setenv("ATLAN_API_KEY", SECRET)
        with lineage_run(JOB):
            pass
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert tenant.received[0].headers["authorization"] == f"Bearer {SECRET}"

    def test_no_tenant_keeps_everything_locally(
        self, caplog: pytest.LogCaptureFixture, tmp_path: Any
    ) -> None:
        """With nothing configured, every event is kept in the outbox; one warning says so."""
        with isolated_outbox(tmp_path / "fresh") as box, caplog.at_level(logging.WARNING):
            for _ in range(3):
                with lineage_run(JOB):
                    pass
            assert [e.event_type for e in box.events()] == ["START", "COMPLETE"] * 3
        notes = [r.getMessage() for r in caplog.records if "no Atlan tenant" in r.getMessage()]
        assert len(notes) == 1
        assert "atlan-lineage replay" in notes[0]


class TestReplay:
    def test_array_refused_falls_back_to_one_by_one(self, tenant: MockAtlan) -> None:
        """If the endpoint refuses a batch (a non-retryable 400), replay sends the same events
        one by one: all delivered, START first."""
        from atlan_ext.replay import replay

        for _ in range(5):
            with lineage_run(JOB, client="local"):
                pass
        tenant.script((400, {}, "arrays not accepted"))
        report = replay(tenant.client(), outbox(), batch_size=10)
        assert report.delivered == 10
        assert report.failed == 0
        assert isinstance(tenant.received[0].events, list)
        assert len(tenant.received[0].events) == 10
        assert all(len(r.events) == 1 for r in tenant.received[1:])
        assert_paired(tenant.accepted)
        assert pending_states() == []

    def test_stops_when_atlan_is_down(self, tenant: MockAtlan) -> None:
        """A retryable failure stops replay at once: nothing lost, the error kept."""
        from atlan_ext.replay import replay

        for _ in range(3):
            with lineage_run(JOB, client="local"):
                pass
        tenant.down()
        report = replay(tenant.client(), outbox(), batch_size=2)
        assert report.delivered == 0
        assert report.left == 6
        assert len(tenant.received) == 6  # one batch, pyatlan's 6 attempts
        assert "ConnectError" in report.errors[-1]


class TestPlugin:
    def test_loading_the_plugin_imports_neither_pyatlan_client_nor_respx(self) -> None:
        """pytest starts fast: the plugin does not import pyatlan's client or respx."""
        import subprocess
        import sys

        code = (
            "import sys, atlan_ext.pytest_plugin\n"
            "print(sorted(m for m in ('pyatlan.client', 'respx') if m in sys.modules))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.stdout.strip() == "[]", done.stderr


class TestAsyncBackground:
    def test_async_with_does_not_wait_and_keeps_order(self, tenant: MockAtlan) -> None:
        """async with + AsyncAtlanClient + background: the block does not wait for Atlan, and
        the run's events still arrive in order."""
        import time

        tenant.latency = 0.2

        async def main() -> float:
            client = tenant.async_client()
            started = time.monotonic()
            async with lineage_run(JOB, client=client, background=True) as run:
                await run.running()
            elapsed = time.monotonic() - started
            while len(tenant.accepted) < 3:
                await asyncio.sleep(0.01)
            return elapsed

        elapsed = asyncio.run(main())
        assert elapsed < 0.2
        assert [e["eventType"] for e in tenant.accepted] == ["START", "RUNNING", "COMPLETE"]
        # The stand-in counts an event before its answer reaches the sender, which then
        # records it delivered: wait for that, not for the count.
        assert flush(60)
        assert pending_states() == []
