"""What a sender holds, and its bookkeeping: events queued, in hand, parked (stored and owed:
the courier loop, :func:`atlan_ext.courier.drain`, sends them), unstored (the outbox failed:
in memory and the journal), unsaved (delivered, not stored yet) and unrecorded (delivered,
their store failed: tried again later, and at exit); the runs that wait behind
an undelivered event; how all of it is written to the outbox (:func:`atlan_ext._store.store`),
settled before a read and spilled at exit. The thread that sends is
:class:`atlan_ext._sender.Sender`, built on :class:`Held`."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from atlan_ext._breaker import FIRST_PAUSE, RETRY, STOP, Breaker
from atlan_ext._inbox import Empty, Inbox
from atlan_ext._state import SHIELD, STATE, say_once
from atlan_ext._store import (
    Item,
    ids_of,
    journaled,
    outbox_failed,
    outbox_troubled,
    store,
    stored_item,
)
from atlan_ext._tenant import Tenant, label, tenant_of
from atlan_ext.exceptions import LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox, OutboxEvent

__all__ = ["Held", "again_note", "take_earlier", "target_key", "undelivered_note"]

_AFTER_ALL = 2**62  # an outbox id above any real one


class Held:
    """The events one sender holds for one tenant and outbox, and the runs they order; each
    list changes under :attr:`lock`, the outbox is written under :attr:`store_lock`."""

    def __init__(self, target: Any, connector: str, outbox: Outbox) -> None:
        self.target = target
        self.label = label(target)
        self.connector = connector
        self.outbox = outbox
        self.queue: Inbox[Optional[Item]] = Inbox()  # None: only a wake-up
        self.lock = threading.RLock()  # RLock: SIGTERM may end a run while a submit holds it
        self.blocked: Set[str] = set()  # runs with an undelivered event: later ones wait
        self.refused: Set[str] = set()  # runs with an event Atlan refused: left for a replay
        self.slow: Set[str] = set()  # runs the job no longer waits for
        self.busy = 0
        self.store_lock = threading.RLock()  # one writer of handed-off events: sender or exit
        self.in_hand: List[Item] = []  # the batch being sent (the thread's, or a job's here)
        self.taken: List[Item] = []  # taken from the queue, waiting for a job's send here
        self.mine: List[Item] = []  # to be sent on the job's thread (see keep_mine)
        self.moving: List[Item] = []  # unstored items on their way into the outbox or hand
        self.started: Set[str] = set()  # runs whose START this sender delivered
        self.breaker = Breaker()  # down (no job waits), when to try again, or stopped
        self.parked: List[int] = []  # stored events owed, sent by the courier loop
        self.unstored: List[Item] = []  # events neither stored nor delivered (in memory)
        self.unsaved: List[Item] = []  # events delivered, not stored yet (in the journal)
        # ... and those whose store failed: stored with the next ones, or at exit (a sender
        # is idle without them: they wait for the outbox, not for Atlan)
        self.unrecorded: List[Item] = []
        self.closed = threading.Event()  # shut down: no more tries, the thread leaves
        self.wake = threading.Event()  # set by a hand-off (or close): a drain returns to it

    def close(self) -> None:
        """Shut down: nothing more is sent (a drain under way returns after its batch)."""
        self.closed.set()
        self.wake.set()

    def keep_mine(self, item: Item) -> None:
        """``item`` is to be sent on the job's thread: until it is in hand (or queued), a
        SIGTERM's spill must see it, or only the ABORT after it would be stored."""
        with self.lock:
            self.mine.append(item)

    def drop_mine(self, item: Item) -> None:
        """``item`` is in hand, answered or queued: no longer only the job's."""
        with self.lock, contextlib.suppress(ValueError):
            self.mine.remove(item)

    def idle(self) -> bool:
        """True while nothing is queued, in hand or delivered but unsaved."""
        with self.lock:
            return self.busy == 0 and not self.unsaved

    def owed(self) -> bool:
        """True while it holds events it will try again."""
        with self.lock:
            return (
                bool(self.parked or self.unstored)
                and not self.breaker.final
                and not self.closed.is_set()
            )

    def take(self, limit: Optional[int] = None) -> List[Item]:
        """Up to ``limit`` (default: all) queued items, without waiting (wake-ups left out)."""
        taken: List[Item] = []
        while limit is None or len(taken) < limit:
            try:
                item = self.queue.get_nowait()
            except Empty:
                break
            if item is not None:
                taken.append(item)
        return taken

    def store_items(self, items: Sequence[Item], claim: bool, delivered: bool = False) -> bool:
        """Write items not yet in the outbox (see :func:`~atlan_ext._store.store`); if the
        outbox fails they stay in memory (and in the journal), tried again after a pause:
        False then."""
        with self.store_lock:
            if not store(self.outbox, self.connector, items, claim=claim, delivered=delivered):
                with self.lock:  # tried again after a pause, not in a loop
                    self.breaker.hold_off(FIRST_PAUSE)
                return False
        return True

    def park(self, items: Sequence[Item]) -> None:
        """Keep items to send again: by outbox id, or in memory when the outbox failed (and
        in the journal, where there is one): never dropped."""
        with self.lock:
            for item in items:
                if item.event_id is not None:
                    self.parked.append(item.event_id)
                else:
                    self.unstored.append(item)

    def settle_parked(self) -> None:
        """After a drain that found nothing more to send: what of :attr:`parked` is still
        pending (held behind another sender's lease) stays owed, its runs waiting, and is
        tried again after a pause; the rest was delivered, and its runs go on."""
        with self.lock:
            ids, blocked = list(self.parked), set(self.blocked)
        try:  # not under the lock: the outbox may wait for another process's write
            left = self.still_pending(ids)
        except OutboxError as error:
            outbox_failed(self.outbox, error)
            self.breaker.hold_off(FIRST_PAUSE)
            return
        with self.lock:  # what was parked or blocked meanwhile stays so
            self.parked = [event.id for event in left] + self.parked[len(ids) :]
            self.blocked.difference_update(blocked)
            self.blocked.update(event.run_id for event in left)
            self.blocked.update(item.run_id for item in self.unstored)
        if left:
            self.breaker.hold_off(FIRST_PAUSE)

    def still_pending(self, ids: Sequence[int]) -> List[OutboxEvent]:
        """Of ``ids``, the events still pending that no other sender holds, outside runs an
        event of which Atlan refused (those are left for a replay)."""
        left = self.outbox.claim_ids(ids) if ids else []
        self.outbox.release([event.id for event in left])
        return [event for event in left if event.run_id not in self.refused]

    def courier(self) -> bool:
        """Hand what this sender leaves in the outbox to a courier process (see
        :func:`atlan_ext._spawn.spawn`); True if one works on it now."""
        tenant = tenant_of(self.target)
        if tenant is None or self.breaker.final:
            return False
        from atlan_ext._spawn import spawn  # here: the process module only when needed

        with contextlib.suppress(Exception):
            return spawn(tenant, self.outbox.path)
        return False

    def say_undelivered(self, error: str, verdict: str) -> None:
        """Say once that events did not reach this tenant, where they are and who sends
        them (``verdict``: the breaker's)."""
        say_once(
            f"undelivered:{self.label}",
            "atlan_ext: lineage not delivered to %s: %s. It is kept in %s%s",
            self.label,
            error,
            self.outbox.path,
            undelivered_note(verdict),
        )

    def finished(self, item: Item) -> None:
        """``item`` was answered (or given up on for now): its run may go on."""
        if item.terminal:
            self.slow.discard(item.run_id)
            if item.error is None:
                self.blocked.discard(item.run_id)
        with self.lock:
            self.busy -= 1
        item.answer()

    def hold(self, items: Sequence[Item]) -> None:
        """While the tenant is down (or the sender shut down): keep items for the next try,
        in the outbox where it takes them, without trying now."""
        self.store_items(items, claim=False)
        error = LineageDeliveryError(self.breaker.down or "Atlan is not answering", retryable=True)
        for item in items:
            if item.error is None:
                item.error = error
            self.blocked.add(item.run_id)
        with contextlib.suppress(OutboxError):
            self.outbox.release(ids_of(items))
        self.park(items)

    def spill(self) -> int:
        """At exit: every event still only in memory goes to the outbox, for a replay.
        Returns how many events this sender leaves undelivered."""
        with self.lock:  # one view: an event is either still waiting or sent (see Sender.deliver)
            in_hand = [*self.in_hand, *self.taken]
            seen = {id(item) for item in in_hand}
            in_hand.extend(item for item in self.mine if id(item) not in seen)
            waiting = [item for item in in_hand if not item.sent]
            waiting.extend(self.take())
            waiting.extend([*self.unstored, *self.moving])
            waiting = list({id(item): item for item in waiting}.values())  # queued and mine
            parked = list(self.parked)
            once = {id(item): item for item in in_hand if item.sent}  # in hand, and unsaved
            once.update((id(item), item) for item in [*self.unrecorded, *self.unsaved])
            sent = list(once.values())
            self.unsaved, self.unrecorded = [], []
        # Each undelivered event once, wherever it is now (parked, in hand).
        with contextlib.suppress(OutboxError):  # a drain may have sent some already
            parked = [event.id for event in self.still_pending(parked)]
        left = {("id", i) for i in parked}
        self.store_items(waiting, claim=False)
        self.store_delivered(sent)
        journaled(self.outbox, in_hand + waiting)
        reason = "not sent before the process exited"
        if self.target is None:  # nothing was to send it: what the other kept events show
            reason = "kept locally: no Atlan tenant was configured"
        elif self.breaker.last_error or self.breaker.down:
            reason += f"; before that: {self.breaker.last_error or self.breaker.down}"
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(ids_of(waiting), reason, attempted=False)
        for item in waiting:
            left.discard(("item", id(item)))
            left.add(("id", item.event_id) if item.event_id is not None else ("item", id(item)))
        # What a process gone since the outbox was opened left in its journal (a forked child
        # that ended with os._exit) goes with this process's courier too.
        return len(left) + self.outbox.recover()

    def save(self) -> None:
        """Store the events sent before they were stored, as delivered (one transaction)."""
        troubled = outbox_troubled(self.outbox)  # then only a later try records the refused
        with self.store_lock:
            with self.lock:
                items, self.unsaved = self.unsaved, []
                if not troubled:
                    items, self.unrecorded = [*self.unrecorded, *items], []
            self.store_delivered(items)

    def store_delivered(self, items: Sequence[Item]) -> None:
        """Record ``items`` as delivered: new ones stored so, and those a read stored as
        pending while they were being sent (see :meth:`settle`) marked so."""
        with self.store_lock:
            stored = ids_of(items)
            if stored:
                with contextlib.suppress(OutboxError):  # at worst, sent again
                    self.outbox.mark_delivered(stored)
            if not self.store_items(items, claim=False, delivered=True):
                with self.lock:  # Atlan has them: only the outbox's record of them waits
                    self.unrecorded.extend(item for item in items if item.event_id is None)

    def settle(self) -> None:
        """Write now what this sender holds only in memory: events delivered but not stored
        (as delivered), and events still waiting (as pending, leased to it). Called before
        a read of its outbox, from the reader's thread."""
        with SHIELD, self.store_lock:
            with self.lock:  # in order: in hand, taken, queued (the sender takes under it)
                queued = [item for item in self.queue.queued() if item is not None]
                held = [*self.in_hand, *self.taken, *queued]
                waiting = [i for i in held if not i.sent and i.event_id is None]
            self.save()
            self.store_items(
                list({id(i): i for i in waiting}.values()), claim=self.target is not None
            )

    def forget(self) -> None:
        """An idle sender leaves the registry (and lets go of its client)."""
        with STATE.lock:
            key = (target_key(self.target), self.connector, self.outbox.path)
            if STATE.senders.get(key) is self:
                del STATE.senders[key]

    def in_order(self, batch: List[Item]) -> List[Item]:
        """What of ``batch`` may go now, in order: a run's earlier pending events (stored by
        another process, or an earlier failure) first; a run with an undelivered event kept
        waits in the outbox behind it."""
        try:
            earlier, held = take_earlier(
                self.outbox,
                [i for i in batch if i.run_id not in self.blocked and i.run_id not in self.refused],
                self.started,
            )
        except OutboxError as error:
            outbox_failed(self.outbox, error)
            earlier, held = [], set()
        self.blocked.update(held)
        sendable = []
        for item in batch:
            if item.run_id in self.refused:  # not tried again here: sending cannot change it
                if item.error is None:
                    item.error = LineageDeliveryError(
                        "kept in the outbox behind an event of the same run that Atlan "
                        "refused (atlan-lineage status shows why)",
                        retryable=False,
                    )
                self.store_items([item], claim=False)
            elif item.run_id in self.blocked:
                item.error = LineageDeliveryError(
                    "kept in the outbox behind an earlier undelivered event of the same run",
                    retryable=True,
                )
                self.store_items([item], claim=False)
                self.park([item])
            else:
                sendable.append(item)
        if not sendable:
            return []
        return [stored_item(stored) for stored in earlier] + sendable


def take_earlier(
    outbox: Outbox, batch: Sequence[Item], started: Set[str]
) -> Tuple[List[OutboxEvent], Set[str]]:
    """The pending events stored before the batch's events of the same run (another process,
    an earlier failure): to be sent first, or, while another sender holds them, waited for.
    Runs whose START this sender itself delivered need no look."""
    firsts: Dict[str, Item] = {}
    for item in batch:
        if item.run_id not in firsts:
            firsts[item.run_id] = item
    asked = {  # an event not stored yet comes after every stored one
        run_id: _AFTER_ALL if item.event_id is None else item.event_id
        for run_id, item in firsts.items()
        if item.lifecycle != "START" and run_id not in started
    }
    if not asked:
        return [], set()
    earlier, held = outbox.take_earlier(asked)
    return earlier, set(held)


def target_key(target: Any) -> object:
    """A sender's registry key for its target (a client by identity, a tenant by value)."""
    return target if isinstance(target, Tenant) or target is None else id(target)


def undelivered_note(verdict: str) -> str:
    """The end of the message for an event Atlan did not take (see the breaker's verdicts)."""
    if verdict == RETRY:
        return again_note()
    if verdict == STOP:
        return (
            "; nothing more is sent to it until that is fixed: then send it with: "
            "atlan-lineage replay"
        )
    # This event was refused; its run's later events wait behind it.
    return "; the run's later events wait behind it (atlan-lineage status shows why)"


def again_note() -> str:
    """Who sends an event again that Atlan did not take, for messages."""
    from atlan_ext._spawn import allowed

    if allowed():
        return (
            " and sent again when Atlan answers (by this process, or after it exits by a "
            "courier process)"
        )
    return (
        " and sent again when Atlan answers while this process runs; after that, send it "
        "with: atlan-lineage replay"
    )
