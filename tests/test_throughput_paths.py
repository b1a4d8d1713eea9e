"""The faster delivery paths change nothing a tenant sees: the same bytes in each POST as
pyatlan's own ``open_lineage.send`` of the same events, and the same per-run order, through
pyatlan's real client with the tenant mocked at the httpx layer (respx)."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import httpx
import pytest
import respx

from atlan_ext.send import send_checked

BASE_URL = "https://tenant.example.test"
API_KEY = "throughput-test-key-0123456789"


def event(run: int, state: str, minute: int) -> Dict[str, Any]:
    """One OpenLineage event of run ``run``, with values JSON may write in more than one way."""
    return {
        "eventType": state,
        "eventTime": f"2026-12-03T10:{minute:02d}:00.000Z",
        "run": {
            "runId": f"0190c5d2-4b7a-7c3e-8a1b-{run:012d}",
            "facets": {"custom": {"ratio": 1.5, "big": 10**20, "none": None, "text": 'é ✓ "q"'}},
        },
        "job": {"namespace": "ol-spark", "name": "nightly_orders_load", "facets": {}},
        "inputs": [{"namespace": "snowflake://acct", "name": "RAW.PUBLIC.ORDERS", "facets": {}}],
        "outputs": [],
        "producer": "https://example.test/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


@pytest.fixture
def bodies() -> Iterator[List[bytes]]:
    """The bodies of the lineage POSTs made meanwhile, each answered 202."""
    seen: List[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(202)

    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        mock.post(url__regex=r"/events/openlineage/.*").mock(side_effect=answer)
        yield seen


def client() -> Any:
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(base_url=BASE_URL, api_key=API_KEY)  # type: ignore[no-untyped-call]


def raw_send(target: Any, payload: Any) -> None:
    from pyatlan.model.enums import AtlanConnectorType

    target.open_lineage.send(payload, connector_type=AtlanConnectorType.SPARK)


class TestSameBytesAsPyatlan:
    """A checked send puts on the wire exactly what pyatlan's own send of the events does."""

    def test_a_batch(self, bodies: List[bytes]) -> None:
        """Several events: one POST whose body is byte for byte pyatlan's for the list."""
        events = [event(run, state, run) for run in range(3) for state in ("START", "COMPLETE")]
        target = client()
        raw_send(target, events)
        send_checked(target, events, "spark")
        assert len(bodies) == 2
        assert bodies[1] == bodies[0]
        assert json.loads(bodies[1]) == events

    def test_one_event(self, bodies: List[bytes]) -> None:
        """One event alone goes as an object, not an array of one, as pyatlan sends a dict."""
        target = client()
        raw_send(target, event(1, "START", 0))
        send_checked(target, [event(1, "START", 0)], "spark")
        assert bodies[1] == bodies[0]
        assert json.loads(bodies[1]) == event(1, "START", 0)

    def test_the_events_are_left_as_they_were(self, bodies: List[bytes]) -> None:
        """The caller's events are not changed by the send."""
        events = [event(1, "START", 0), event(1, "COMPLETE", 1)]
        before = json.dumps(events)
        send_checked(client(), events, "spark")
        assert json.dumps(events) == before
