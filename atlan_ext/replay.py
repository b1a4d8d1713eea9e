"""Replay: send what the outbox holds, oldest first, in batches, never overtaking a START."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from atlan_ext.exceptions import LineageDeliveryError
from atlan_ext.outbox import Outbox, OutboxEvent
from atlan_ext.send import BATCH_LIMIT, send_checked, tenant_wide

__all__ = ["ReplayReport", "replay"]


@dataclass
class ReplayReport:
    """What one replay did."""

    delivered: int = 0
    failed: int = 0
    left: int = 0
    errors: List[str] = field(default_factory=list)
    #: Why nothing more can go to this tenant until a setting is fixed (a refused key, no
    #: OpenLineage connection, a wrong URL), when that was the answer; see ``tenant_wide``.
    fatal: Optional[str] = None
    #: True when it stopped early because Atlan did not answer (a failure that can pass).
    down: bool = False
    #: The last failure, as raised (its status and ``retry_after``), if there was one.
    last: Optional[LineageDeliveryError] = None


def replay(
    client: Any,
    outbox: Outbox,
    *,
    batch_size: int = BATCH_LIMIT,
    time_limit: float = 300.0,
    limit: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    skip_runs: Optional[Set[str]] = None,
    stop: Optional[threading.Event] = None,
) -> ReplayReport:
    """Send the outbox's pending events to Atlan with a sync client, oldest first.

    Events go in batches (one POST each, falling back to one by one if the endpoint refuses
    an array); a run's later events never overtake an undelivered earlier one. While Atlan
    answers, the next batch is claimed and sent while one is in flight (at most
    two at once): a claim leaves out every run with an event leased already, so
    the batches in flight hold disjoint runs, and a terminal event waits for its START's
    answer. After a failure, one batch at a time again. Work is bounded by ``time_limit``
    seconds and ``limit`` events; it stops early when Atlan is unreachable. ``progress``, if
    given, is called with (done, total) after each batch. ``skip_runs``: runs left alone (an
    event of theirs was refused); the runs refused here are added to it. ``stop``: once set,
    nothing more is claimed; it returns when the batches in flight have their answers.

    One pass: it makes one attempt per event; :func:`atlan_ext.courier.drain` calls it until
    everything is delivered or a deadline passes.
    """
    report = ReplayReport()
    deadline = time.monotonic() + time_limit
    total = outbox.counts()[0]
    blocked: Set[str] = set() if skip_runs is None else skip_runs
    flights: Deque[_Flight] = deque()
    window = 1  # batches in flight at once: more only while Atlan answers
    halted = False  # a failure: no more claims
    with ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="atlan-ext-replay") as senders:
        while True:
            while not halted and len(flights) < window:
                room = _room(report, flights, batch_size, limit)
                if room <= 0 or time.monotonic() >= deadline or (stop and stop.is_set()):
                    break
                # Nothing claimable may only mean runs wait for a batch in flight: after its
                # answer, this claims again; replay ends when nothing is in flight either.
                claimed = outbox.claim_pending(room, exclude_runs=blocked)
                if not claimed:
                    break
                flights.append(_Flight(claimed, senders, client))
            if not flights:
                break
            flight = flights.popleft()
            failed = report.failed
            halted = _settle(client, outbox, flight, blocked, report, halted)
            calm = report.failed == failed and not any(flight.tries.result())
            window = _IN_FLIGHT if calm else 1
            if progress is not None:
                progress(report.delivered + report.failed, total)
    report.left = outbox.counts()[0]
    return report


#: Batches in flight at once, at most (each a POST of disjoint runs).
_IN_FLIGHT = 2


def _room(
    report: ReplayReport, flights: Deque[_Flight], batch_size: int, limit: Optional[int]
) -> int:
    """How many events the next claim may take: a batch, within ``limit`` (counting the
    events in flight)."""
    if limit is None:
        return batch_size
    flying = sum(len(flight.claimed) for flight in flights)
    return min(batch_size, limit - report.delivered - report.failed - flying)


class _Flight:
    """One claim in flight: its connectors' groups, sent in order by a worker thread until
    one fails (the first try of each; what follows is decided by :func:`_settle`)."""

    def __init__(self, claimed: List[OutboxEvent], senders: ThreadPoolExecutor, client: Any):
        self.claimed = claimed
        groups: Dict[str, List[OutboxEvent]] = {}
        for stored in claimed:
            groups.setdefault(stored.connector, []).append(stored)
        self.groups = list(groups.items())
        self.tries: Future[List[Optional[LineageDeliveryError]]]
        try:
            self.tries = senders.submit(_first_tries, client, self.groups)
        except RuntimeError:  # the interpreter is shutting down (atexit): no new threads
            self.tries = Future()
            self.tries.set_result(_first_tries(client, self.groups))


def _first_tries(
    client: Any, groups: List[Tuple[str, List[OutboxEvent]]]
) -> List[Optional[LineageDeliveryError]]:
    """Send each group as one POST, in order, until one fails; what each tried one got."""
    outcomes: List[Optional[LineageDeliveryError]] = []
    for connector, group in groups:
        try:
            send_checked(client, [stored.text for stored in group], connector)
        except LineageDeliveryError as error:
            outcomes.append(error)
            break
        outcomes.append(None)
    return outcomes


def _settle(
    client: Any,
    outbox: Outbox,
    flight: _Flight,
    blocked: Set[str],
    report: ReplayReport,
    stop: bool,
) -> bool:
    """Record what a claim in flight got, group by group: a 202 is delivered whatever
    happened meanwhile; otherwise, once replay stops, the rest is released (no attempt
    counted); else a failure is handled as in :func:`_answered` and the groups not tried yet
    are sent now. True when replay should stop (Atlan down, or a setting)."""
    outcomes = flight.tries.result()
    for index, (connector, group) in enumerate(flight.groups):
        tried = index < len(outcomes)
        error = outcomes[index] if tried else None
        if tried and error is None:
            _delivered(outbox, group, report)
        elif stop:
            outbox.release([stored.id for stored in group])
        elif error is not None:
            stop = _answered(client, outbox, connector, group, error, blocked, report)
        else:
            stop = _replay_group(client, outbox, connector, group, blocked, report)
    return stop


def _replay_group(
    client: Any,
    outbox: Outbox,
    connector: str,
    group: List[OutboxEvent],
    blocked: Set[str],
    report: ReplayReport,
) -> bool:
    """Send one connector's share of a batch; True when replay should stop (Atlan down)."""
    try:
        send_checked(client, [stored.text for stored in group], connector)
    except LineageDeliveryError as error:
        return _answered(client, outbox, connector, group, error, blocked, report)
    _delivered(outbox, group, report)
    return False


def _delivered(outbox: Outbox, group: List[OutboxEvent], report: ReplayReport) -> None:
    outbox.mark_delivered([stored.id for stored in group])
    report.delivered += len(group)


def _answered(
    client: Any,
    outbox: Outbox,
    connector: str,
    group: List[OutboxEvent],
    error: LineageDeliveryError,
    blocked: Set[str],
    report: ReplayReport,
) -> bool:
    """Handle a group's failed POST; True when replay should stop."""
    if len(group) > 1 and not error.retryable and not tenant_wide(error):
        stop = False  # the endpoint may refuse an array: one request per event
        for stored in group:
            if stop or stored.run_id in blocked:
                outbox.release([stored.id])
                continue
            stop = _replay_group(client, outbox, connector, [stored], blocked, report)
        return stop
    outbox.mark_failed([stored.id for stored in group], str(error))
    report.failed += len(group)
    report.errors.append(str(error))
    report.last = error
    if tenant_wide(error):
        report.fatal = str(error)
        return True
    if error.retryable:  # Atlan is down: this pass ends; the runs are tried again later
        report.down = True
        return True
    blocked.update(stored.run_id for stored in group)  # this event was refused: its run waits
    return False
