"""The faster delivery paths change nothing a tenant sees: the same bytes in each POST as
pyatlan's own ``open_lineage.send`` of the same events, and the same per-run order, through
pyatlan's real client with the tenant mocked at the httpx layer (respx)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import httpx
import pytest
import respx

from atlan_ext import Job, RunId
from atlan_ext.events import build_event
from atlan_ext.outbox import Outbox
from atlan_ext.replay import replay
from atlan_ext.send import send_checked
from atlan_ext.testing import assert_paired

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

    def test_replay_sends_what_the_outbox_keeps(self, bodies: List[bytes], tmp_path: Path) -> None:
        """Replay sends the events the outbox keeps, byte for byte as pyatlan's own send of
        them, in the order they were made: a START stored after its COMPLETE goes first."""
        made = [event(1, "START", 0), event(1, "COMPLETE", 1)]
        box = Outbox(tmp_path / "outbox.db")
        for stored in reversed(made):
            box.add(stored, "spark")
        target = client()
        raw_send(target, made)
        report = replay(target, box)
        box.close()
        assert report.delivered == 2
        assert bodies[1] == bodies[0]
        assert json.loads(bodies[1]) == made

    def test_the_events_are_left_as_they_were(self, bodies: List[bytes]) -> None:
        """The caller's events are not changed by the send."""
        events = [event(1, "START", 0), event(1, "COMPLETE", 1)]
        before = json.dumps(events)
        send_checked(client(), events, "spark")
        assert json.dumps(events) == before


class Tenant:
    """A respx stand-in that checks, as requests arrive, that no run is in two requests in
    flight and no event comes before its run's START was accepted; it refuses (HTTP 400)
    every request holding an event of ``refused`` runs."""

    def __init__(self, refused: Optional[Set[str]] = None) -> None:
        self.refused = set() if refused is None else refused
        self.lock = threading.Lock()
        self.flying: List[Set[str]] = []
        self.started: Set[str] = set()  # runs whose START Atlan accepted
        self.accepted: List[Dict[str, Any]] = []
        self.problems: List[str] = []
        self.requests = 0
        self.most_in_flight = 0
        self.overlapped = threading.Event()

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        events = body if isinstance(body, list) else [body]
        runs = {item["run"]["runId"] for item in events}
        with self.lock:
            self.requests += 1
            later = self.requests > 1
            for other in self.flying:
                if runs & other:
                    self.problems.append(f"runs {sorted(runs & other)} in two requests at once")
            seen = set(self.started)
            for item in events:
                if item["eventType"] == "START":
                    seen.add(item["run"]["runId"])
                elif item["run"]["runId"] not in seen:
                    self.problems.append(f"{item['eventType']} before START was accepted")
            self.flying.append(runs)
            self.most_in_flight = max(self.most_in_flight, len(self.flying))
            if len(self.flying) > 1:
                self.overlapped.set()
        if later and not runs & self.refused:
            # Hold the answer until another request is in flight too (one arrives within
            # milliseconds while Atlan answers): the next one is sent meanwhile, or never.
            self.overlapped.wait(timeout=20)
        with self.lock:
            self.flying.remove(runs)
            if runs & self.refused:
                return httpx.Response(400, text="refused")
            self.accepted.extend(events)
            self.started.update(i["run"]["runId"] for i in events if i["eventType"] == "START")
        return httpx.Response(202)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


def fill(outbox: Outbox, runs: int) -> List[str]:
    """``runs`` runs pending, each COMPLETE stored seven events after its START (a batch
    boundary often falls between them); their run ids."""
    job = Job("ol-spark", "nightly_orders_load")
    first = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
    ids = [str(RunId.new()) for _ in range(runs)]
    order = sorted(
        [(index, "START", run_id) for index, run_id in enumerate(ids)]
        + [(index + 3.5, "COMPLETE", run_id) for index, run_id in enumerate(ids)]
    )
    for at, state, run_id in order:
        stamp = first + timedelta(seconds=at)
        made = build_event(state, job, run_id, event_time=stamp, inputs=["snowflake://a/DB.S.T"])
        outbox.add(made, "spark", lifecycle_state=state)
    return ids


@contextlib.contextmanager
def served(tenant: Tenant) -> Iterator[Any]:
    """pyatlan's client, its requests answered by ``tenant``."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        mock.post(url__regex=r"/events/openlineage/.*").mock(side_effect=tenant.answer)
        yield client()


class TestReplayInFlight:
    """Replay sends a batch while another is in flight, yet keeps every run's order."""

    def test_every_run_in_order_with_two_batches_in_flight(self, outbox: Outbox) -> None:
        """40 runs in batches of 8: two requests in flight at once, never a run in both,
        never an event before its START was accepted; all delivered."""
        tenant = Tenant()
        fill(outbox, 40)
        with served(tenant) as target:
            report = replay(target, outbox, batch_size=8)
        assert tenant.problems == []
        assert tenant.most_in_flight == 2
        assert report.delivered == 80
        assert report.left == 0
        assert_paired(tenant.accepted)
        assert outbox.counts() == (0, 80)

    def test_a_refused_run_waits_and_the_others_go(self, outbox: Outbox) -> None:
        """A run Atlan refuses (HTTP 400) while other batches are in flight: its batch falls
        back to one request per event, the run waits in the outbox, every other arrives."""
        refused: Set[str] = set()
        tenant = Tenant(refused)
        ids = fill(outbox, 30)
        refused.add(ids[12])
        with served(tenant) as target:
            report = replay(target, outbox, batch_size=6)
        assert tenant.problems == []
        assert report.delivered == 58
        assert report.left == 2
        assert [e.run_id for e in outbox.events(pending_only=True)] == [ids[12], ids[12]]
        assert_paired(tenant.accepted)

    def test_limit_counts_the_events_in_flight(self, outbox: Outbox) -> None:
        """``limit`` bounds the events sent, those in flight included."""
        tenant = Tenant()
        fill(outbox, 20)
        with served(tenant) as target:
            report = replay(target, outbox, batch_size=6, limit=15)
        assert report.delivered == 15
        assert len(tenant.accepted) == 15
        assert tenant.problems == []


AT_EXIT = """
import atexit, json, sys
from atlan_ext import Job, RunId
from atlan_ext.events import build_event
from atlan_ext.outbox import Outbox
from atlan_ext.replay import replay
from atlan_ext.testing import MockAtlan

outbox = Outbox(sys.argv[1])
for _ in range(30):
    run_id = RunId.new()
    for state in ("START", "COMPLETE"):
        made = build_event(state, Job("ol-spark", "at_exit"), run_id)
        outbox.add(made, "spark", lifecycle_state=state)


def at_exit():
    with MockAtlan() as tenant:
        report = replay(tenant.client(), outbox, batch_size=6)
        print(json.dumps([report.delivered, report.left, len(tenant.accepted)]))


atexit.register(at_exit)
"""


class TestReplayAtExit:
    """Replay works where no thread can be started any more: in an atexit handler."""

    def test_replay_from_an_atexit_handler(self, tmp_path: Path) -> None:
        """Every event is delivered from the handler (one batch at a time there)."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(AT_EXIT), str(tmp_path / "outbox.db")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [60, 0, 60]
