"""What a process leaves at exit (or SIGTERM): every sender shut down, what it holds stored
in the outbox with this process's claims released, a courier process started to deliver it,
and one line on the job's stderr saying how many events that is and who delivers them. The
bounded wait before it is :func:`atlan_ext.delivery.shutdown`'s."""

from __future__ import annotations

import contextlib
from typing import Dict

from atlan_ext._breaker import REFUSED, RETRY, STOP
from atlan_ext._sender import Sender, senders
from atlan_ext._state import STATE, say_once

__all__ = ["holding", "leave_to_courier", "stop_sending", "verdict_on"]


def holding() -> bool:
    """True while a sender of this process holds events not yet delivered (queued, in hand,
    kept to send again, or delivered but not yet recorded)."""
    for sender in senders():  # a loop, not any(...): no generator to close per run
        if not sender.idle() or sender.parked or sender.unstored or sender.unrecorded:
            return True
    return False


def stop_sending() -> None:
    """From now on, nothing more goes out from this process: what is handed over is stored for
    the courier that takes over at exit. A SIGTERM handler calls it before it ends the open
    runs, so that their ABORTs are stored after every event already made, and sent after them
    (in the order they were made) by that courier, never by a sender racing the send that
    the signal interrupted."""
    for sender in senders():
        sender.close()


def leave_to_courier() -> None:
    """Shut every sender down and leave what it holds in the outbox (see :func:`shutdown`)."""
    held = senders()
    with STATE.lock:
        claiming = set(STATE.claiming)
    # At exit, a closed or vanished database is no reason to fail.
    left: Dict[int, int] = {}
    for sender in held:
        sender.close()  # a drain under way claims nothing more
    for sender in held:
        sender.quiet(_QUIET_SECONDS)
        with contextlib.suppress(Exception):
            left[id(sender)] = sender.spill()
    for outbox in {*claiming, *(sender.outbox for sender in held)}:
        with contextlib.suppress(Exception):
            outbox.release_mine()
    with STATE.lock:
        journals = list(STATE.journals.values())
    for journal in journals:
        journal.close()  # its file goes, unless a record could not be stored
    for sender in held:
        if left.get(id(sender)) and sender.target is not None:
            _announce(sender, left[id(sender)])


def _announce(sender: Sender, count: int) -> None:
    """Say once, on the job's stderr, what it leaves undelivered and who delivers it."""
    reason = sender.breaker.last_error or sender.breaker.down or "no answer yet"
    where = sender.outbox.path
    if where == ":memory:":
        say_once(
            f"left:{sender.label}",
            "atlan_ext: %d lineage event(s) were not delivered to %s (%s), and no outbox could "
            "keep them (see the warning above): they are lost with this process",
            count,
            sender.label,
            reason,
        )
        return
    if sender.courier():
        say_once(
            f"left:{sender.label}",
            "atlan_ext: %d lineage event(s) were not delivered to %s yet (%s). They are kept "
            "in %s, and a courier process delivers them once Atlan answers "
            "(atlan-lineage status shows them)",
            count,
            sender.label,
            reason,
            where,
        )
    else:
        say_once(
            f"left:{sender.label}",
            "atlan_ext: %d lineage event(s) were not delivered to %s (%s). They are kept in "
            "%s; send them with: atlan-lineage replay",
            count,
            sender.label,
            reason,
            where,
        )


#: How long exit waits for a drain's batches in flight (to a tenant that answers) to end.
_QUIET_SECONDS = 5.0


def verdict_on(run_id: str) -> str:
    """What this process's senders make of ``run_id``'s undelivered events, as the breaker
    says it: :data:`REFUSED` (Atlan refused one: left for a replay), :data:`STOP` (its
    tenant gave an answer only a fixed setting changes: nothing more is tried), else
    :data:`RETRY` (sent again when Atlan answers)."""
    for sender in senders():
        with sender.lock:
            if run_id in sender.refused:
                return REFUSED
            if sender.breaker.final and run_id in sender.blocked:
                return STOP
    return RETRY
