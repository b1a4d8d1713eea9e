"""Replay: send what the outbox holds, oldest first, in batches, never overtaking a START."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set

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
) -> ReplayReport:
    """Send the outbox's pending events to Atlan with a sync client, oldest first.

    Events go in batches (one POST each, falling back to one by one if the endpoint refuses
    an array); a run's later events never overtake an undelivered earlier one. Work is bounded
    by ``time_limit`` seconds and ``limit`` events; it stops early when Atlan is unreachable.
    ``progress``, if given, is called with (done, total) after each batch. ``skip_runs``:
    runs left alone (an event of theirs was refused); the runs refused here are added to it.

    One pass: it makes one attempt per event; :func:`atlan_ext.courier.drain` calls it until
    everything is delivered or a deadline passes.
    """
    report = ReplayReport()
    deadline = time.monotonic() + time_limit
    total = outbox.counts()[0]
    blocked: Set[str] = set() if skip_runs is None else skip_runs
    while time.monotonic() < deadline and (
        limit is None or report.delivered + report.failed < limit
    ):
        size = (
            batch_size
            if limit is None
            else min(batch_size, limit - report.delivered - report.failed)
        )
        claimed = outbox.claim_pending(size, exclude_runs=blocked)
        if not claimed:
            break
        stop = False
        groups: Dict[str, List[OutboxEvent]] = {}
        for stored in claimed:
            groups.setdefault(stored.connector, []).append(stored)
        for connector, group in groups.items():
            if stop:
                outbox.release([stored.id for stored in group])
                continue
            stop = _replay_group(client, outbox, connector, group, blocked, report)
        if progress is not None:
            progress(report.delivered + report.failed, total)
        if stop:
            break
    report.left = outbox.counts()[0]
    return report


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
        send_checked(client, [stored.event for stored in group], connector)
    except LineageDeliveryError as error:
        if len(group) > 1 and not error.retryable and not tenant_wide(error):
            stop = False
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
    outbox.mark_delivered([stored.id for stored in group])
    report.delivered += len(group)
    return False
