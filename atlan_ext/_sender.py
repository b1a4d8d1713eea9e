"""The sender: one thread per tenant, outbox and connector that stores handed-over events in
the outbox and sends them to Atlan, in order, in batches where it can.

A circuit breaker lives here too: after a failure that can pass (refused, timed out, 429/5xx)
the tenant is *down*, no job waits for it, and the sender keeps what it could not send and
tries again after a pause that grows (1 s, doubling up to 30 s); once Atlan answers, it sends
what it kept, oldest first. An answer that only a fixed setting changes (see
:func:`atlan_ext.send.tenant_wide`) stops it from trying again at all. The job's side (what
waits, for how long, what is said) is :mod:`atlan_ext.delivery`'s.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, cast

from atlan_ext._journal import Journal
from atlan_ext._state import SHIELD, STATE, say_once
from atlan_ext.exceptions import LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox, OutboxEvent
from atlan_ext.send import (
    BATCH_LIMIT,
    Tenant,
    longest_send,
    send_checked,
    shown_url,
    tenant_wide,
)

__all__ = [
    "TERMINAL",
    "Event",
    "Item",
    "Sender",
    "journal_for",
    "label",
    "outbox_failed",
    "outbox_troubled",
    "sender_for",
    "senders",
]

log = logging.getLogger("atlan_ext")

Event = Dict[str, Any]

_IDLE_SECONDS = 10.0  # a sender thread with nothing to do for this long exits
_QUEUE_LIMIT = 10_000  # events waiting in memory per sender; more stay in the outbox

_TROUBLE_SECONDS = 30.0  # after the outbox failed the job's thread, it is left alone this long


def journal_for(outbox: Outbox) -> Optional[Journal]:
    """This process's hand-off journal for ``outbox`` (none for an outbox in memory)."""
    if outbox.path == ":memory:":
        return None
    with STATE.lock:
        journal: Optional[Journal] = STATE.journals.get(outbox.path)
        if journal is None:
            journal = STATE.journals[outbox.path] = Journal(outbox.journal_folder)
        return journal


def journaled(outbox: Outbox, items: Sequence[Item]) -> None:
    """The items are in the outbox (or delivered): their journal records are done."""
    journal = journal_for(outbox)
    if journal is None:
        return
    for item in items:
        if item.journal >= 0:
            journal.done(item.journal)
            item.journal = -1


def outbox_troubled(outbox: Outbox) -> bool:
    with STATE.lock:
        return STATE.outbox_trouble.get(outbox.path, 0.0) > time.monotonic()


def outbox_failed(outbox: Outbox, error: OutboxError) -> None:
    """The outbox could not store: the job's thread leaves it alone for a while (the sender
    stores in its stead), and the user hears it once."""
    with STATE.lock:
        STATE.outbox_trouble[outbox.path] = time.monotonic() + _TROUBLE_SECONDS
    say_once(
        f"outbox-failed:{outbox.path}",
        "atlan_ext: %s; until it works, lineage is kept in memory and still sent",
        error,
    )


def _outbox_works(outbox: Outbox) -> None:
    with STATE.lock:
        STATE.outbox_trouble.pop(outbox.path, None)


def label(target: Any) -> str:
    """The tenant, for messages: its URL (never its key, nor a password in the URL)."""
    url = getattr(target, "base_url", None)
    return shown_url(str(url)) if url else type(target).__name__


# -- the sender thread of a sync client ------------------------------------------------------


@dataclass
class Item:
    event: Event
    event_id: Optional[int]  # None while it is not in the outbox (the outbox failed)
    run_id: str
    terminal: bool
    lifecycle: Optional[str] = None
    journal: int = -1  # its record in this process's journal, until it is stored
    text: Optional[str] = None  # the event as JSON, when the journal made it
    sent: bool = False  # Atlan accepted it (it may not be stored as delivered yet)
    done: Optional[threading.Event] = None  # set when answered, for a job that waits
    answered: bool = False
    error: Optional[LineageDeliveryError] = None

    def answer(self) -> None:
        self.answered = True
        if self.done is not None:
            self.done.set()


def _item(stored: OutboxEvent) -> Item:
    kind = stored.event_type
    return Item(stored.event, stored.id, stored.run_id, kind in TERMINAL, _lifecycle(kind))


class Sender:
    """One thread that stores and sends the events of one tenant (a sync pyatlan client, a
    :class:`~atlan_ext.send.Tenant` whose client it builds, or ``None``: store only), in
    order, in batches where it can.

    A circuit breaker: after a failure that can pass (refused, timed out, 429/5xx), the
    tenant is *down* and no job waits for it; the sender keeps what it could not send
    (``parked``) and tries again with a growing pause, and once Atlan answers it sends what
    was parked, oldest first, before it goes idle.
    """

    def __init__(self, target: Any, connector: str, outbox: Outbox) -> None:
        self.target = target
        self.connector = connector
        self.outbox = outbox
        self.label = label(target)
        self.queue: queue.Queue[Optional[Item]] = queue.Queue()  # None: only a wake-up
        self.lock = threading.RLock()  # RLock: SIGTERM may end a run while a submit holds it
        self.thread: Optional[threading.Thread] = None
        self.blocked: Set[str] = set()  # runs with an undelivered event: later ones wait
        self.slow: Set[str] = set()  # runs the job no longer waits for
        self.busy = 0
        self.store_lock = threading.RLock()  # one writer of handed-off events: sender or exit
        self.in_hand: List[Item] = []  # the batch being sent (the thread's, or a job's here)
        self.taken: List[Item] = []  # taken from the queue, waiting for a job's send here
        self.mine: List[Item] = []  # to be sent on the job's thread (see keep_mine)
        self.moving: List[Any] = []  # parked ids and kept items on their way into hand
        self.started: Set[str] = set()  # runs whose START this sender delivered
        self.down: Optional[str] = None  # why the tenant does not answer (no job waits)
        self.parked: List[int] = []  # stored events not delivered yet, to send again
        self.unstored: List[Item] = []  # events neither stored nor delivered (in memory)
        self.unsaved: List[Item] = []  # events delivered, not stored yet (in the journal)
        self.last_error: Optional[str] = None
        self.retryable = True
        self.pause = _FIRST_PAUSE
        self.retry_at = 0.0
        self.closed = threading.Event()  # shut down: no more tries, the thread leaves
        self._client: Any = None if isinstance(target, Tenant) else target
        self._longest: Optional[float] = None  # the longest one send through the client can take
        self.handling = threading.Lock()  # one batch at a time: the thread's, or a job's here
        self.here: Optional[int] = None  # the job's thread that is sending on it now
        self.answered_at = -math.inf  # when Atlan last accepted a send (monotonic)
        self.active_at = 0.0  # when a job last sent on its own thread
        self.save_due = False  # the thread was asked to store what jobs delivered
        self.loading_since: Optional[float] = None  # while pyatlan's client is being built
        self.cold = False  # a job's wait ended while it was: jobs do not wait until it is

    # -- the job's side ------------------------------------------------------------------------

    def submit(self, item: Item) -> None:
        """Queue ``item`` for this sender's thread."""
        with self.lock:
            self.busy += 1
            self.queue.put(item)
            if self.thread is None:
                self._start()

    def crowded(self) -> bool:
        """True while more events wait in memory than it should hold (see :meth:`keep`)."""
        return self.queue.qsize() >= _QUEUE_LIMIT

    def keep(self, item: Item) -> None:
        """An event the job stored in the outbox itself while this sender was crowded: sent
        from there once there is room, its run's later events behind it. Nothing is dropped."""
        with self.lock:
            self.blocked.add(item.run_id)
            if self.thread is None:
                self._start()
        self._park([item])

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._work, name="atlan-ext-sender", daemon=True)
        self.thread.start()

    def trip(self, reason: str) -> None:
        """The tenant did not answer in time: no job waits for it until it does."""
        with self.lock:
            if self.down is None:
                self.down = reason
                self.retry_at = time.monotonic() + self.pause

    def keep_mine(self, item: Item) -> None:
        """``item`` is to be sent on the job's thread: until it is in hand (or queued), a
        SIGTERM's spill must see it, or only the ABORT after it would be stored."""
        with self.lock:
            self.mine.append(item)

    def drop_mine(self, item: Item) -> None:
        """``item`` is in hand, answered or queued: no longer only the job's."""
        with self.lock, contextlib.suppress(ValueError):
            self.mine.remove(item)

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
            self._longest = longest_send(self._client) or math.inf
        if self._longest > timeout or not self.handling.acquire(blocking=False):
            return False
        try:
            with self.lock:
                if (
                    self.busy
                    or self.thread is None  # it may have left the registry: hand it over
                    or self.down is not None
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
                self._guarded(functools.partial(self._deliver, [item]))
            finally:
                self.in_hand = []
                self.here = None
                self.active_at = time.monotonic()
                self._finished(item)
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

    def interrupted_here(self) -> bool:
        """True in a signal handler that interrupted this thread's own send on this sender:
        what it sends cannot wait for that send (it waits for the handler)."""
        return self.here == threading.get_ident()

    def idle(self) -> bool:
        with self.lock:
            return self.busy == 0 and not self.unsaved

    def owed(self) -> bool:
        """True while it holds events it will try again."""
        with self.lock:
            return (
                bool(self.parked or self.unstored) and self.retryable and not self.closed.is_set()
            )

    # -- the sender's thread -------------------------------------------------------------------

    def _work(self) -> None:
        while not self.closed.is_set():
            wait = _IDLE_SECONDS
            with self.lock:
                owed = self.owed()
                if not owed and not self.unsaved:
                    self.save_due = False  # nothing to look at: a job's send must wake it
            if owed:
                wait = max(0.0, self.retry_at - time.monotonic())
            if self.unsaved:
                # Stored once the sender has a moment; while jobs send on their own threads
                # it would always have one, and waking often costs the jobs more than a
                # larger store later does.
                jobs_send = time.monotonic() - self.active_at < _SAVE_LATER
                wait = min(wait, _SAVE_LATER if jobs_send else _SAVE_AFTER)
            try:
                first = self.queue.get(timeout=wait)
            except queue.Empty:
                if self.unsaved:
                    self._guarded(self._save)
                    continue
                if self.closed.is_set():
                    break
                if self.owed():
                    with self.handling:
                        self._guarded(self._again)
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
                        ):
                            _forget_sender(self)
                        return
                continue
            batch = [] if first is None else [first]
            batch.extend(self._take(BATCH_LIMIT - len(batch)))
            if not batch:  # a wake-up: a job sent on its own thread and left work
                continue
            with self.lock:  # seen by settle and spill while a job's send here goes on
                self.taken = batch
            with self.handling:
                with self.lock:
                    self.taken, self.in_hand = [], batch
                try:
                    self._guarded(functools.partial(self._handle, batch))
                finally:
                    self.in_hand = []
                    for item in batch:
                        self._finished(item)

    def _take(self, limit: Optional[int] = None) -> List[Item]:
        """Up to ``limit`` (default: all) queued items, without waiting (wake-ups left out)."""
        taken: List[Item] = []
        while limit is None or len(taken) < limit:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                taken.append(item)
        return taken

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # never let the sender die with items unanswered
            log.exception("atlan_ext: unexpected error while sending lineage")
            for item in self.in_hand:
                if item.error is None and not item.answered:
                    item.error = LineageDeliveryError(
                        "unexpected error in the sender", retryable=True
                    )

    def _handle(self, batch: List[Item]) -> None:
        if self.target is None:  # store only: nothing to send; what the outbox refused waits
            self._store(batch, claim=False)
            self._park([item for item in batch if item.event_id is None])
            return
        if self.down is not None and time.monotonic() < self.retry_at:
            self._hold(batch)
        else:
            self._deliver(batch)
        if (
            self.down is None
            and self.owed()
            and self.queue.empty()
            and time.monotonic() >= self.retry_at
        ):
            self._again()

    def _store(self, items: Sequence[Item], claim: bool, delivered: bool = False) -> None:
        """Write items not yet in the outbox (one transaction), once; if the outbox fails
        they stay in memory (and in the journal)."""
        with self.store_lock:
            new = [item for item in items if item.event_id is None]
            if not new:
                return
            try:
                ids = self.outbox.add_many(
                    [(item.event, self.connector, item.lifecycle) for item in new],
                    claim=claim,
                    delivered=delivered,
                    texts=[item.text for item in new],
                )
            except OutboxError as error:
                outbox_failed(self.outbox, error)
                with self.lock:  # tried again after a pause, not in a loop
                    self.retry_at = max(self.retry_at, time.monotonic() + _FIRST_PAUSE)
                return
            _outbox_works(self.outbox)
            for item, event_id in zip(new, ids):
                item.event_id = event_id
            journaled(self.outbox, new)

    def _park(self, items: Sequence[Item]) -> None:
        """Keep items to send again: by outbox id, or in memory when the outbox failed (and
        in the journal, where there is one): never dropped."""
        with self.lock:
            for item in items:
                if item.event_id is not None:
                    self.parked.append(item.event_id)
                else:
                    self.unstored.append(item)

    def _again(self) -> None:
        """Send what was parked, oldest first (store what is still only in memory first)."""
        with self.lock:
            self.busy += 1  # not idle while these are in hand
        try:
            self._send_again()
        finally:
            with self.lock:
                self.busy -= 1

    def _send_again(self) -> None:
        with self.lock:
            ids, self.parked = self.parked, []
            memory, self.unstored = self.unstored, []
            self.moving = [*ids, *memory]  # seen by spill until they are in hand
        self._store(memory, claim=self.target is not None)
        try:
            items = [_item(stored) for stored in self.outbox.claim_ids(ids)] if ids else []
        except OutboxError as error:
            outbox_failed(self.outbox, error)
            with self.lock:
                self.parked[:0] = ids
                self.moving = list(memory)
            items = []
        items.extend(memory)  # after the parked ones, as they came; stored or not
        if self.target is None:
            self._park([item for item in items if item.event_id is None])
            with self.lock:
                self.moving = []
            return
        for item in items:
            self.blocked.discard(item.run_id)
        with self.lock:
            self.in_hand, self.moving = items, []
        for start in range(0, len(items), BATCH_LIMIT):
            chunk = items[start : start + BATCH_LIMIT]
            if self.down is not None and start > 0:
                self._hold(chunk)
            else:
                self._deliver(chunk)
        self.in_hand = []

    def spill(self) -> int:
        """At exit: every event still only in memory goes to the outbox, for a replay.
        Returns how many events this sender leaves undelivered."""
        with self.lock:  # one view: an event is either still waiting or sent (see _deliver)
            in_hand = [*self.in_hand, *self.taken]
            seen = {id(item) for item in in_hand}
            in_hand.extend(item for item in self.mine if id(item) not in seen)
            waiting = [item for item in in_hand if not item.sent]
            waiting.extend(self._take())
            waiting.extend(self.unstored)
            waiting = list({id(item): item for item in waiting}.values())  # queued and mine
            # Each undelivered event once, wherever it is now (parked, moving, in hand).
            left = {("id", i) for i in self.parked}
            for thing in self.moving:
                left.add(("id", thing) if isinstance(thing, int) else ("item", id(thing)))
            once = {id(item): item for item in in_hand if item.sent}  # in hand, and unsaved
            once.update((id(item), item) for item in self.unsaved)
            sent = list(once.values())
            self.unsaved = []
        self._store(waiting, claim=False)
        self._store_delivered(sent)
        journaled(self.outbox, in_hand + waiting)
        reason = "not sent before the process exited"
        if self.last_error or self.down:
            reason += f" (last error: {self.last_error or self.down})"
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(_ids(waiting), reason, attempted=False)
        for item in waiting:
            left.discard(("item", id(item)))
            left.add(("id", item.event_id) if item.event_id is not None else ("item", id(item)))
        return len(left)

    def _finished(self, item: Item) -> None:
        if item.terminal:
            self.slow.discard(item.run_id)
            if item.error is None:
                self.blocked.discard(item.run_id)
        with self.lock:
            self.busy -= 1
        item.answer()

    def _client_now(self) -> Any:
        if self._client is None:
            # pyatlan's import, here, once (seconds; up to 30 on a busy machine): a job whose
            # wait ends meanwhile is told so, and the tenant is not blamed for it.
            self.loading_since = time.monotonic()
            try:
                self._client = cast(Tenant, self.target).client()
            finally:
                self.loading_since = None
                self.cold = False
        return self._client

    def _deliver(self, batch: List[Item]) -> None:
        if self.closed.is_set():  # shut down: nothing more goes out (the outbox keeps it)
            self._hold(batch)
            return
        try:
            earlier, held = _take_earlier(
                self.outbox,
                [item for item in batch if item.run_id not in self.blocked],
                self.started,
            )
        except OutboxError as error:
            outbox_failed(self.outbox, error)
            earlier, held = [], set()
        self.blocked.update(held)
        sendable = []
        for item in batch:
            if item.run_id in self.blocked:
                item.error = LineageDeliveryError(
                    "kept in the outbox behind an earlier undelivered event of the same run",
                    retryable=True,
                )
                self._store([item], claim=False)
                self._park([item])
            else:
                sendable.append(item)
        if not sendable:
            return
        sendable = [_item(stored) for stored in earlier] + sendable
        try:
            send_checked(self._client_now(), [item.event for item in sendable], self.connector)
        except LineageDeliveryError as error:
            if len(sendable) > 1 and not error.retryable and not tenant_wide(error):
                # The endpoint may refuse an array: fall back to one request per event.
                for item in sendable:
                    self._deliver([item])
                return
            self._failed(sendable, error)
            return
        with self.lock:
            self.down = None
            self.pause = _FIRST_PAUSE
            self.retryable = True
            self.answered_at = time.monotonic()
        # Before the job goes on, nothing may be left that a later replay would send again
        # (a process may leave with os._exit right after, as Airflow's task runner does):
        # stored events are marked delivered, and journal records of the others are closed.
        # Those others are stored as delivered when the sender has a moment
        # (:data:`_SAVE_AFTER` without work, or a read of the outbox): no next event waits,
        # not even for a store under way (only the stored ones need the store lock).
        stored = _ids(sendable)
        if stored:
            with self.store_lock, contextlib.suppress(OutboxError):  # at worst, sent again
                self.outbox.mark_delivered(stored)
        with self.lock:  # sent and waiting to be stored at once, as settle and spill see it
            for item in sendable:
                item.sent = True
            self.unsaved.extend(item for item in sendable if item.event_id is None)
            full = len(self.unsaved) >= _SAVE_BATCH
        journaled(self.outbox, sendable)
        for item in sendable:  # the job goes on now
            item.answer()
        if full and self.here is None:  # a job sending on its own thread does not store
            self._save()
        for item in sendable:
            if item.lifecycle == "START":
                self.started.add(item.run_id)
            elif item.terminal:
                self.started.discard(item.run_id)

    def _save(self) -> None:
        """Store the events sent before they were stored, as delivered (one transaction)."""
        with self.store_lock:
            with self.lock:
                items, self.unsaved = self.unsaved, []
            self._store_delivered(items)

    def _store_delivered(self, items: Sequence[Item]) -> None:
        """Record ``items`` as delivered: new ones stored so, and those a read stored as
        pending while they were being sent (see :meth:`settle`) marked so."""
        with self.store_lock:
            stored = _ids(items)
            if stored:
                with contextlib.suppress(OutboxError):  # at worst, sent again
                    self.outbox.mark_delivered(stored)
            self._store(items, claim=False, delivered=True)

    def settle(self) -> None:
        """Write now what this sender holds only in memory: events delivered but not stored
        (as delivered), and events still waiting (as pending, leased to it). Called before
        a read of its outbox, from the reader's thread."""
        with SHIELD, self.store_lock:
            with self.queue.mutex:
                queued = [item for item in self.queue.queue if item is not None]
            with self.lock:  # in order: in hand, taken, queued (an item may have moved on)
                held = [*self.in_hand, *self.taken, *queued]
                waiting = [i for i in held if not i.sent and i.event_id is None]
            self._save()
            self._store(list({id(i): i for i in waiting}.values()), claim=self.target is not None)

    def _hold(self, items: Sequence[Item]) -> None:
        """While the tenant is down (or the sender shut down): keep items for the next try,
        in the outbox where it takes them, without trying now."""
        self._store(items, claim=False)
        error = LineageDeliveryError(self.down or "Atlan is not answering", retryable=True)
        for item in items:
            if item.error is None:
                item.error = error
            self.blocked.add(item.run_id)
        with contextlib.suppress(OutboxError):
            self.outbox.release(_ids(items))
        self._park(items)

    def _failed(self, items: Sequence[Item], error: LineageDeliveryError) -> None:
        self._store(items, claim=False)
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(_ids(items), str(error))
        for item in items:
            if item.error is None:
                item.error = error
            self.blocked.add(item.run_id)
        self._park(items)
        final = tenant_wide(error)
        with self.lock:
            self.last_error = str(error)
            if error.retryable:
                if self.down is not None:
                    self.pause = min(self.pause * 2, _LAST_PAUSE)
                self.down = str(error)
                self.retry_at = time.monotonic() + self.pause
            elif final:  # no event of this tenant goes until a setting is fixed: none is sent
                self.retryable = False
                self.down = str(error)
                self.retry_at = math.inf
        if error.retryable:
            note = _again_note()
        elif final:
            note = "; nothing more is sent to it until that is fixed: then send it with: "
            note += "atlan-lineage replay"
        else:  # this event was refused; its run's later events wait behind it
            note = "; the run's later events wait behind it (atlan-lineage status shows why)"
        say_once(
            f"undelivered:{self.label}",
            "atlan_ext: lineage not delivered to %s: %s. It is kept in %s%s",
            self.label,
            error,
            self.outbox.path,
            note,
        )


TERMINAL = ("COMPLETE", "ABORT", "FAIL")
_AFTER_ALL = 2**62  # an outbox id above any real one
_SAVE_AFTER = 0.0005  # seconds without work before delivered events are stored
_SAVE_BATCH = 10  # or once this many wait: small writes, so no send waits long behind one
_SAVE_LATER = 0.05  # seconds between stores while jobs send on their own threads
_HERE_SIZE = 64 * 1024  # bytes: an event a job may send on its own thread (a socket takes it)
_WARM_SECONDS = 2.0  # ... if Atlan answered this sender so recently (its connection is open)
_FIRST_PAUSE = 1.0  # seconds before a down tenant is tried again; doubles up to:
_LAST_PAUSE = 30.0


def _lifecycle(event_type: str) -> Optional[str]:
    return None if event_type == "OTHER" else event_type


def _ids(items: Sequence[Item]) -> List[int]:
    return [item.event_id for item in items if item.event_id is not None]


def _take_earlier(
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


def sender_for(target: Any, connector: str, outbox: Outbox) -> Sender:
    key = (_target_key(target), connector, outbox.path)
    with STATE.lock:
        sender: Optional[Sender] = STATE.senders.get(key)
        if sender is None or (sender.target is not target and not isinstance(target, Tenant)):
            sender = STATE.senders[key] = Sender(target, connector, outbox)
        return sender


def _target_key(target: Any) -> object:
    return target if isinstance(target, Tenant) or target is None else id(target)


def _forget_sender(sender: Sender) -> None:
    """An idle sender leaves the registry (and lets go of its client)."""
    with STATE.lock:
        key = (_target_key(sender.target), sender.connector, sender.outbox.path)
        if STATE.senders.get(key) is sender:
            del STATE.senders[key]


def senders() -> List[Sender]:
    with STATE.lock:
        return list(STATE.senders.values())


def _again_note() -> str:
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
