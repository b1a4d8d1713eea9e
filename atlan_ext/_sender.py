"""The sender: one thread per tenant, outbox and connector that stores handed-over events in
the outbox and sends them to Atlan, in order, in batches where it can: one attempt each.

What is not delivered that way (a failure that can pass, events kept while it was crowded, a
strict run's ABORT) is in the outbox, with its run's later events behind it, and the thread
runs the one courier loop, :func:`atlan_ext.courier.drain`, over that outbox
(:class:`atlan_ext._owed.Owed`: what it owes and how it is sent again) with its own
breaker (:mod:`atlan_ext._breaker`: ``Retry-After``, a pause that grows, a stop on an answer
only a fixed setting changes) until nothing sendable is left; then back to its queue. The
job's side (what waits, for how long, what is said) is :mod:`atlan_ext.delivery`'s.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import time
from typing import Any, Callable, List, Optional, Sequence

from atlan_ext._breaker import REFUSED
from atlan_ext._held import target_key
from atlan_ext._inbox import Empty
from atlan_ext._owed import Owed
from atlan_ext._state import SHIELD, STATE, say_once, start_thread
from atlan_ext._store import Item, ids_of, journaled, outbox_troubled
from atlan_ext.exceptions import LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox
from atlan_ext.send import (
    BATCH_LIMIT,
    Tenant,
    longest_send,
    send_checked,
    tenant_wide,
)

__all__ = ["Sender", "sender_for", "senders"]

log = logging.getLogger("atlan_ext")

_IDLE_SECONDS = 10.0  # a sender thread with nothing to do for this long exits
_LOOK_EVERY = 0.02  # seconds: how often the thread looks at its queue on its own ...
_LOOK_FOR = 1.0  # ... for this long after it last took work
_RECORD_AGAIN = 5.0  # seconds between tries to record delivered events the outbox refused
_QUEUE_LIMIT = 10_000  # events waiting in memory per sender; more stay in the outbox


class Sender(Owed):
    """One thread that stores and sends the events of one tenant (a sync pyatlan client, a
    :class:`~atlan_ext.send.Tenant` whose client it builds, or ``None``: store only), in
    order, in batches where it can.

    After a failure that can pass the tenant is *down* (its breaker) and no job waits for
    it; what it owes (``parked``, see :class:`~atlan_ext._held.Held`) is sent by
    :func:`~atlan_ext.courier.drain` when the breaker says, before it goes idle.
    """

    def __init__(self, target: Any, connector: str, outbox: Outbox) -> None:
        super().__init__(target, connector, outbox)
        self.thread: Optional[threading.Thread] = None
        self._longest: Optional[float] = None  # the longest one send through the client can take
        self.answered_at = -math.inf  # when Atlan last accepted a send (monotonic)
        self.active_at = 0.0  # when a job last sent on its own thread
        self.save_due = False  # the thread was asked to store what jobs delivered
        # For a moment after it took work, the thread looks at its queue on its own, every
        # _LOOK_EVERY: an event nobody waits for is queued without waking it (see submit).
        self.looking = False
        self.took_at = 0.0

    # -- the job's side ------------------------------------------------------------------------

    def submit(self, item: Item, wake: bool = True) -> None:
        """Queue ``item`` for this sender's thread. ``wake=False`` (nobody waits for its
        answer): a thread that looks at its queue on its own finds it within
        :data:`_LOOK_EVERY`, without being woken (a system call, and on a virtual machine a
        signal between processors: a background run's largest cost)."""
        with self.lock:
            self.busy += 1
            if wake or not self.looking:
                self.queue.put(item)
            else:
                self.queue.add(item)
            if not self.wake.is_set():
                self.wake.set()  # a drain under way returns to the queue
            if self.thread is None:
                self._start()

    def crowded(self) -> bool:
        """True while more events wait in memory than it should hold (see :meth:`keep`)."""
        return len(self.queue) >= _QUEUE_LIMIT

    def keep(self, item: Item) -> None:
        """An event the job kept itself (stored while this sender was crowded, or the ABORT
        of a strict run that did not begin): sent on the next try, after what is parked
        already, its run's later events behind it. Nothing is dropped."""
        with self.lock:
            self.blocked.add(item.run_id)
            if item.run_id in self.refused and item.event_id is not None:
                return  # stored behind a refused event: a replay's, not owed
        self.park([item])
        with self.lock:  # parked first: the thread, started or woken, sees it owed
            if self.thread is None:
                self._start()
            else:
                self.queue.put(None)

    def _start(self) -> None:
        self.thread = start_thread(self._work, "atlan-ext-sender")

    def trip(self, reason: str) -> None:
        """The tenant did not answer in time: no job waits for it until it does."""
        with self.lock:
            self.breaker.trip(reason)

    def not_answered(self, item: Item, timeout: float, asked: float) -> str:
        """A job waited ``timeout`` s (from ``asked``) for ``item`` in vain: why, said once;
        the tenant is down (no job waits for it) only if Atlan itself did not answer."""
        self.slow.add(item.run_id)
        loading = self.loading_since
        if self.answered_at > asked:
            # Atlan answered meanwhile, other events first: this one waits its turn.
            reason = (
                f"not sent within {timeout:g} s: events handed over earlier were sent first "
                f"({self.label} answers); it is sent in the background"
            )
            say_once(f"queued:{self.label}", "atlan_ext: lineage %s", reason)
        elif loading is not None:
            # The time went on pyatlan's import, not on Atlan: no breaker is tripped.
            self.cold = True
            reason = (
                f"not sent within {timeout:g} s: pyatlan was still being imported "
                f"({time.monotonic() - loading:.0f} s so far), so Atlan was not asked yet; "
                "it is sent as soon as pyatlan is loaded"
            )
            say_once(f"loading:{self.label}", "atlan_ext: lineage %s", reason)
        else:
            reason = (
                f"timed out: no answer from {self.label} within {timeout:g} s; delivery goes "
                "on in the background"
            )
            self.trip(reason)
            say_once(
                f"undelivered:{self.label}",
                "atlan_ext: lineage not delivered to %s: %s. It is kept in %s; jobs in this "
                "process no longer wait for Atlan until it answers",
                self.label,
                reason,
                self.outbox.path,
            )
        return reason

    def send_here(self, item: Item, size: int, timeout: float) -> bool:
        """Send ``item`` on the calling job's thread, which then waits for Atlan as it would
        for the sender, without two thread hand-offs (about 0.2 ms a run at loopback speed).
        Only where that cannot hold the job longer than ``timeout``: the client's own
        timeouts bound a send within it, Atlan answered moments ago (a connection in use: no
        name lookup), the event is small (its write cannot stall) and nothing of this sender
        is queued, in hand or kept (no overtaking). False: nothing done, hand it over."""
        if size > _HERE_SIZE or time.monotonic() - self.answered_at > _WARM_SECONDS:
            return False
        if self._longest is None:
            self._longest = longest_send(self.client) or math.inf
        if self._longest > timeout or not self.handling.acquire(blocking=False):
            return False
        try:
            with self.lock:
                if (
                    self.busy
                    or self.thread is None  # it may have left the registry: hand it over
                    or self.breaker.down is not None
                    or self.parked
                    or self.unstored
                    or self.closed.is_set()
                    or item.run_id in self.blocked
                    or item.run_id in self.slow
                ):
                    return False
                self.busy += 1
                self.here = threading.get_ident()
            self.in_hand = [item]
            try:
                self._guarded(functools.partial(self.deliver, [item]))
            finally:
                self.in_hand = []
                self.here = None
                self.active_at = time.monotonic()
                self.finished(item)
        finally:
            self.handling.release()
        self._left_work()
        return True

    def _left_work(self) -> None:
        """A job sent on its own thread: what it leaves (delivered events to store, or events
        kept) is the thread's work; wake it (once, until it has looked)."""
        with SHIELD, self.lock:
            if (self.unsaved or self.owed()) and not self.save_due:
                self.save_due = True
                if self.thread is None:
                    self._start()
                else:
                    self.queue.put(None)  # a wake-up: it stores when the job pauses

    # -- the sender's thread -------------------------------------------------------------------

    def _work(self) -> None:
        while not self.closed.is_set():
            wait = _IDLE_SECONDS
            with self.lock:
                owed = self.owed()
                if not owed and not self.unsaved:
                    self.save_due = False  # nothing to look at: a job's send must wake it
                if self.looking and time.monotonic() - self.took_at > _LOOK_FOR:
                    # Under the lock: a submit from now on wakes it; what was queued before
                    # without waking is in the queue, and its wait returns at once for it.
                    self.looking = False
            if owed:
                wait = self.breaker.wait_left()
            if self.unsaved:
                # Stored once the sender has a moment; while jobs send on their own threads
                # it would always have one, and waking often costs the jobs more than a
                # larger store later does.
                jobs_send = time.monotonic() - self.active_at < _SAVE_LATER
                wait = min(wait, _SAVE_LATER if jobs_send else _SAVE_AFTER)
            if self.unrecorded:  # delivered, their store failed: tried again after a while
                wait = min(wait, _RECORD_AGAIN)
            due = wait
            if self.looking:
                wait = min(wait, _LOOK_EVERY)
            try:
                self.queue.wait(wait)
            except Empty:
                if wait < due:  # only a look at the queue: what the wait was for is not due
                    continue
                if self.unsaved or (self.unrecorded and not outbox_troubled(self.outbox)):
                    self._guarded(self.save)
                    continue
                if self.closed.is_set():
                    break
                if self.owed():
                    with self.handling:
                        self._guarded(self.recover)
                    continue
                if wait < _IDLE_SECONDS:  # a short wait that ended: not idle for long yet
                    continue
                # STATE.lock first, as in Delivery.send: no submit can reach a sender between
                # the moment it finds nothing to do and the moment it leaves the registry.
                with STATE.lock, self.lock:
                    if self.queue.empty():
                        self.thread = None
                        if (
                            not self.blocked
                            and not self.slow
                            and not self.owed()
                            and not self.busy
                            and not self.unsaved
                            and not self.unrecorded
                        ):
                            self.forget()
                        return
                continue
            # Taken and shown in one hold of the lock: a settle or spill finds each item
            # queued or taken, never between the two.
            with self.lock:
                batch = self.taken = self.take(BATCH_LIMIT)
                if batch:
                    self.looking, self.took_at = True, time.monotonic()
            if not batch:  # a wake-up: a job sent on its own thread and left work
                continue
            with self.handling:
                with self.lock:
                    self.taken, self.in_hand = [], batch
                try:
                    self._guarded(functools.partial(self._handle, batch))
                finally:
                    self.in_hand = []
                    for item in batch:
                        self.finished(item)

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as error:  # never let the sender die with items unanswered
            if isinstance(error, RuntimeError) and "shutdown" in str(error):
                # The interpreter is exiting: no new thread, executor or atexit-registering
                # import. The exit hook leaves what is held to a courier.
                log.debug("atlan_ext: sending stopped at exit: %s", error)
            else:
                log.exception("atlan_ext: unexpected error while sending lineage")
            for item in self.in_hand:
                if item.error is None and not item.answered:
                    item.error = LineageDeliveryError(
                        "unexpected error in the sender", retryable=True
                    )

    def _handle(self, batch: List[Item]) -> None:
        if self.target is None:  # store only: nothing to send; what the outbox refused waits
            self.store_items(batch, claim=False)
            self.park([item for item in batch if item.event_id is None])
            return
        if self.breaker.due():
            self.deliver(batch)
        else:
            self.hold(batch)
        breaker = self.breaker
        if breaker.down is None and not breaker.wait_left() and self.owed() and self.queue.empty():
            self.recover()

    def deliver(self, batch: List[Item]) -> None:
        if self.closed.is_set():  # shut down: nothing more goes out (the outbox keeps it)
            self.hold(batch)
            return
        sendable = self.in_order(batch)
        if not sendable:
            return
        try:
            events = [item.event if item.text is None else item.text for item in sendable]
            send_checked(self.client_now(), events, self.connector)
        except LineageDeliveryError as error:
            if len(sendable) > 1 and not error.retryable and not tenant_wide(error):
                # The endpoint may refuse an array: fall back to one request per event.
                for item in sendable:
                    self.deliver([item])
                return
            self._failed(sendable, error)
            return
        with self.lock:
            self.breaker.answered()
            self.answered_at = time.monotonic()
        # Before the job goes on, nothing may be left that a later replay would send again
        # (a process may leave with os._exit right after, as Airflow's task runner does):
        # stored events are marked delivered, and journal records of the others are closed.
        # Those others are stored as delivered when the sender has a moment
        # (:data:`_SAVE_AFTER` without work, or a read of the outbox): no next event waits,
        # not even for a store under way (only the stored ones need the store lock).
        with self.lock:  # sent and waiting to be stored at once, as settle and spill see it
            for item in sendable:
                item.sent = True
            # Each one stored (marked here) or not (stored by save, which marks one a settle
            # stores meanwhile): a settle may store an event until it is marked sent.
            stored = ids_of(sendable)
            self.unsaved.extend(item for item in sendable if item.event_id is None)
            full = len(self.unsaved) >= _SAVE_BATCH
        if stored:
            with self.store_lock, contextlib.suppress(OutboxError):  # at worst, sent again
                self.outbox.mark_delivered(stored)
        journaled(self.outbox, sendable)
        for item in sendable:  # the job goes on now
            item.answer()
        if full and self.here is None:  # a job sending on its own thread does not store
            self.save()
        for item in sendable:
            if item.lifecycle == "START":
                self.started.add(item.run_id)
            elif item.terminal:
                self.started.discard(item.run_id)

    def _failed(self, items: Sequence[Item], error: LineageDeliveryError) -> None:
        self.store_items(items, claim=False)
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(ids_of(items), str(error))
        for item in items:
            if item.error is None:
                item.error = error
            self.blocked.add(item.run_id)
        with self.lock:  # STOP: no event of this tenant goes until a setting is fixed
            verdict = self.breaker.failed(error)
            if verdict == REFUSED:  # the same event would be refused again: a replay's
                self.refused.update(item.run_id for item in items)
        if verdict != REFUSED:
            self.park(items)
        if STATE.unimportable is not None:
            # This process can never send (forked while pyatlan was imported) and may end
            # with os._exit, as task runners do: a courier takes its events now, not at exit.
            self.courier()
        self.say_undelivered(str(error), verdict)


_SAVE_AFTER = 0.0005  # seconds without work before delivered events are stored
_SAVE_BATCH = 10  # or once this many wait: small writes, so no send waits long behind one
_SAVE_LATER = 0.05  # seconds between stores while jobs send on their own threads
_HERE_SIZE = 64 * 1024  # bytes: an event a job may send on its own thread (a socket takes it)
_WARM_SECONDS = 2.0  # ... if Atlan answered this sender so recently (its connection is open)


def sender_for(target: Any, connector: str, outbox: Outbox) -> Sender:
    key = (target_key(target), connector, outbox.path)
    with STATE.lock:
        sender: Optional[Sender] = STATE.senders.get(key)
        if sender is None or (sender.target is not target and not isinstance(target, Tenant)):
            sender = STATE.senders[key] = Sender(target, connector, outbox)
        return sender


def senders() -> List[Sender]:
    with STATE.lock:
        return list(STATE.senders.values())
