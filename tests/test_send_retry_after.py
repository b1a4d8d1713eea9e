"""Atlan's ``Retry-After`` (seconds or an HTTP date, on 429 and 503) reaches the error a send
raises and decides when the next try comes, for the courier loop and the delivery thread
alike (pyatlan's real client, the tenant mocked at the httpx layer with respx)."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any, Iterator, List

import pytest

from atlan_ext import Job, LineageDeliveryError, lineage_run
from atlan_ext.courier import drain
from atlan_ext.delivery import flush
from atlan_ext.outbox import Outbox
from atlan_ext.send import Tenant
from atlan_ext.testing import MockAtlan

JOB = Job("ol-spark", "nightly_orders_load")


@pytest.fixture
def tenant() -> Iterator[MockAtlan]:
    with MockAtlan() as mock:
        yield mock


def client(tenant: MockAtlan) -> Any:
    """The library's own client for the tenant: one quick retry inside pyatlan (at most 1 s)."""
    return Tenant(tenant.base_url, tenant.api_key, 10.0).client()


def stored_run(tenant: MockAtlan) -> Outbox:
    """The tenant's outbox, holding one run's START (not sent yet)."""
    outbox = tenant.outbox
    assert outbox is not None
    run_id = "0190c5d2-4b7a-7c3e-8a1b-2c3d4e5f6a7b"
    event = {
        "eventType": "START",
        "eventTime": "2026-12-03T10:00:00.000Z",
        "run": {"runId": run_id},
        "job": {"namespace": "ol-spark", "name": "nightly_orders_load"},
        "producer": "https://example.test/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    outbox.add(event, "spark", lifecycle_state="START")
    return outbox


def statuses(tenant: MockAtlan) -> List[Any]:
    return [received.status for received in tenant.received]


class TestRetryAfterOnTheError:
    """A send that ends on 429/503 says how long Atlan asked to wait."""

    def test_503_seconds(self, tenant: MockAtlan) -> None:
        """503 with ``Retry-After: 1`` until pyatlan gives up: the error carries 1 s."""
        tenant.script(*[(503, {"Retry-After": "1"})] * 2)
        with pytest.raises(LineageDeliveryError) as caught:
            with lineage_run(JOB, client=client(tenant), strict=True, delivery_timeout=60):
                pass
        assert caught.value.status == 503
        assert caught.value.retry_after == 1.0

    def test_429_http_date(self, tenant: MockAtlan) -> None:
        """A ``Retry-After`` given as an HTTP date is turned into seconds from now."""
        when = formatdate(time.time() + 300, usegmt=True)
        tenant.script(*[(429, {"Retry-After": when})] * 2)
        with pytest.raises(LineageDeliveryError) as caught:
            with lineage_run(JOB, client=client(tenant), strict=True, delivery_timeout=60):
                pass
        assert caught.value.status == 429
        assert caught.value.retry_after is not None
        assert 120 < caught.value.retry_after <= 301

    def test_no_header_no_wait(self, tenant: MockAtlan) -> None:
        """Without the header (or on another status) nothing is made up."""
        tenant.script(*[500] * 12)
        with pytest.raises(LineageDeliveryError) as caught:
            with lineage_run(JOB, client=tenant.client(), strict=True, delivery_timeout=60):
                pass
        assert caught.value.status == 500
        assert caught.value.retry_after is None


class TestCourierHonoursRetryAfter:
    """drain (the courier, replay, flush) waits what Atlan asked, not its own pause."""

    def test_429_pauses_shared_couriers_for_its_retry_after(self, tenant: MockAtlan) -> None:
        """429 with ``Retry-After: 2`` on a shared outbox: every courier waits 2 s, not the
        default minute, and the event goes on the next try."""
        outbox = stored_run(tenant)
        tenant.script((429, {"Retry-After": "2"}), (429, {"Retry-After": "2"}))
        lines: List[str] = []
        done = drain(client(tenant), outbox, seconds=50, rate_limit=6000, say=lines.append)
        assert done.delivered == 1
        assert statuses(tenant) == [429, 429, 202]
        assert any("paused for 2 s" in line for line in lines)
        assert outbox.counts() == (0, 1)

    def test_429_without_retry_after_keeps_the_minute(self, tenant: MockAtlan) -> None:
        """No header: the shared pause stays a minute, and nothing more is tried meanwhile."""
        outbox = stored_run(tenant)
        tenant.script(429, 429)
        done = drain(client(tenant), outbox, seconds=3, rate_limit=6000)
        assert done.delivered == 0
        assert statuses(tenant) == [429, 429]
        assert outbox.paused_until() - time.time() > 40

    def test_a_long_retry_after_is_waited_out(self, tenant: MockAtlan) -> None:
        """A lone courier told to wait 10 minutes does not try again a second later (its own
        pause would): within its deadline Atlan hears from it once."""
        outbox = stored_run(tenant)
        tenant.script((503, {"Retry-After": "600"}), (503, {"Retry-After": "600"}))
        done = drain(client(tenant), outbox, seconds=4)
        assert done.delivered == 0
        assert done.last_error is not None
        assert "503" in done.last_error
        assert statuses(tenant) == [503, 503]  # one send: pyatlan's two attempts

    def test_503_retry_after_then_delivered(self, tenant: MockAtlan) -> None:
        """503 with ``Retry-After: 1``, then Atlan answers: delivered on the next try."""
        outbox = stored_run(tenant)
        tenant.script((503, {"Retry-After": "1"}), (503, {"Retry-After": "1"}))
        done = drain(client(tenant), outbox, seconds=50)
        assert done.delivered == 1
        assert statuses(tenant) == [503, 503, 202]

    def test_a_shorter_retry_after_does_not_end_the_backoff(self, tenant: MockAtlan) -> None:
        """``Retry-After: 0`` on every 503: the courier still pauses 1 s, then 2 s (a floor,
        not a replacement: it sent a request every few milliseconds before)."""
        outbox = stored_run(tenant)
        tenant.script(*[(503, {"Retry-After": "0"})] * 1000)
        done = drain(client(tenant), outbox, seconds=2.5)
        assert done.delivered == 0
        assert len(statuses(tenant)) <= 6  # tries at 0, 1 s and 3 s: pyatlan's two attempts


class TestSenderHonoursRetryAfter:
    """The delivery thread of a process uses the same policy."""

    def test_a_long_retry_after_holds_the_sender(self, tenant: MockAtlan) -> None:
        """Told to wait 10 minutes, the delivery thread does not try again after its own
        1 s pause: a flush of 4 s sees no further request."""
        tenant.script(*[(429, {"Retry-After": "600"})] * 2)
        with lineage_run(JOB, client=client(tenant), background=True):
            pass
        assert not flush(4)
        assert statuses(tenant) == [429, 429]  # START's one send; COMPLETE waits behind it

    def test_503_retry_after_then_delivered(self, tenant: MockAtlan) -> None:
        """503 with ``Retry-After: 1``, then 202: the thread delivers both events in order."""
        tenant.script(*[(503, {"Retry-After": "1"})] * 2)
        with lineage_run(JOB, client=client(tenant), background=True):
            pass
        assert flush(60)
        assert [event["eventType"] for event in tenant.accepted] == ["START", "COMPLETE"]

    def test_a_strict_run_during_the_loops_pause_is_answered_at_once(
        self, tenant: MockAtlan
    ) -> None:
        """While the delivery thread's courier loop waits out a 10-minute Retry-After, a
        strict run is told at once that its START is not delivered (the tenant is down); it
        does not wait its whole delivery_timeout for the loop to look up."""
        tenant.script(*[(503, {"Retry-After": "1"})] * 2, *[(429, {"Retry-After": "600"})] * 2)
        atlan = client(tenant)
        with lineage_run(JOB, client=atlan, background=True):
            pass
        deadline = time.monotonic() + 120
        while len(tenant.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)  # the loop's second try (START again) met the 429
        assert statuses(tenant) == [503, 503, 429, 429]
        started = time.monotonic()
        with (
            pytest.raises(LineageDeliveryError),
            lineage_run(JOB, client=atlan, strict=True, delivery_timeout=300),
        ):
            pass  # pragma: no cover - START raises
        assert time.monotonic() - started < 150  # not the 300 s timeout
        assert statuses(tenant) == [503, 503, 429, 429]  # nothing sent during the pause
