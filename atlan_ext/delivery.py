"""Getting events to Atlan without ever holding or breaking the job.

Every event is written to the outbox before it is sent (with ``background=True``, by the
sender, just before sending) and marked delivered only when Atlan answered 202. A sync
``AtlanClient`` is driven by one sender thread per client: the job's thread hands an event
over and waits at most ``timeout`` seconds for the answer (or not at all with
``background=True``). A sync send whose client's own timeouts bound it within ``timeout``
goes out from the job's thread itself while that sender is idle and Atlan answered moments
ago, through the same code, in turn with the sender. Sends are first-in first-out, so the
events of a run reach Atlan in the order they were made; once an event of a run is not
delivered, the run's later events stay in the outbox behind it instead of overtaking it, and
the job stops waiting for that run. An ``AsyncAtlanClient`` is driven on the caller's own
event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, cast

from atlan_ext._journal import Journal
from atlan_ext._state import SHIELD, STATE, say_once
from atlan_ext.exceptions import (
    InvalidOptionError,
    LineageDeliveryError,
    OutboxError,
)
from atlan_ext.outbox import Outbox, OutboxEvent, default_path, on_read
from atlan_ext.send import (
    BATCH_LIMIT,
    Tenant,
    connector_value,
    is_async_client,
    longest_send,
    secrets_of,
    send_checked,
    send_checked_async,
    tenant_wide,
)

__all__ = [
    "Delivery",
    "Handed",
    "default_outbox",
    "flush",
    "pop_capture",
    "push_capture",
    "shutdown",
    "stop_sending",
]

log = logging.getLogger("atlan_ext")

_IDLE_SECONDS = 10.0  # a sender thread with nothing to do for this long exits
_QUEUE_LIMIT = 10_000  # events waiting in memory per sender; more stay in the outbox
#: How long interpreter exit waits for unsent events (the command line sets 0: its waits are
#: already bounded, and whatever is unsent is in the outbox).
exit_flush_seconds = 5.0

Event = Dict[str, Any]
StateCheck = Callable[[Optional[str]], None]

# -- capture (the testing kit swaps a list in here) ----------------------------------------------


def push_capture(events: List[Event]) -> None:
    """Capture every event made from now on into ``events`` instead of storing or sending it."""
    with STATE.lock:
        STATE.captures.append(events)


def pop_capture(events: List[Event]) -> None:
    """Stop capturing into ``events``."""
    with STATE.lock:
        STATE.captures.remove(events)


def _captured(event: Event) -> bool:
    with STATE.lock:
        if not STATE.captures:
            return False
        STATE.captures[-1].append(event)
        return True


# -- the default outbox ----------------------------------------------------------------------

_TROUBLE_SECONDS = 30.0  # after the outbox failed the job's thread, it is left alone this long
_PATH_SETTINGS = ("XDG_DATA_HOME", "HOME", "LOCALAPPDATA")  # after ATLAN_EXT_HOME


def default_outbox() -> Outbox:
    """The outbox at :func:`default_path` (``$ATLAN_EXT_HOME/outbox.db``), opened once.

    If it cannot be opened, events are kept in memory for this process (and still sent),
    with one warning naming the fix.
    """
    # Keyed by the settings that decide the path: building the path costs more than a run's
    # hand-off, and the settings rarely change within a process.
    home = os.environ.get("ATLAN_EXT_HOME")
    settings: Tuple[Optional[str], ...] = (home,)
    if not home:  # the platform's data folder decides
        settings = (home, *(os.environ.get(name) for name in _PATH_SETTINGS))
    with STATE.lock:
        known: Optional[Outbox] = STATE.outboxes.get(settings)
    if known is not None:
        return known
    path = str(default_path())
    with STATE.lock:
        outbox: Optional[Outbox] = STATE.outboxes.get(path)
        if outbox is None:
            try:
                outbox = Outbox(path)
            except OutboxError as error:
                say_once(f"outbox:{path}", "atlan_ext: %s; lineage is kept in memory only", error)
                outbox = Outbox(":memory:")
            STATE.outboxes[path] = outbox
        STATE.outboxes[settings] = outbox
        return outbox


def _journal(outbox: Outbox) -> Optional[Journal]:
    """This process's hand-off journal for ``outbox`` (none for an outbox in memory)."""
    if outbox.path == ":memory:":
        return None
    with STATE.lock:
        journal: Optional[Journal] = STATE.journals.get(outbox.path)
        if journal is None:
            journal = STATE.journals[outbox.path] = Journal(outbox.journal_folder)
        return journal


def _journaled(outbox: Outbox, items: Sequence[_Item]) -> None:
    """The items are in the outbox (or delivered): their journal records are done."""
    journal = _journal(outbox)
    if journal is None:
        return
    for item in items:
        if item.journal >= 0:
            journal.done(item.journal)
            item.journal = -1


def _outbox_troubled(outbox: Outbox) -> bool:
    with STATE.lock:
        return STATE.outbox_trouble.get(outbox.path, 0.0) > time.monotonic()


def _outbox_failed(outbox: Outbox, error: OutboxError) -> None:
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


def _label(target: Any) -> str:
    """The tenant, for messages: its URL (never its key)."""
    url = getattr(target, "base_url", None)
    return str(url) if url else type(target).__name__


# -- the sender thread of a sync client ------------------------------------------------------


@dataclass
class _Item:
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


def _item(stored: OutboxEvent) -> _Item:
    kind = stored.event_type
    return _Item(stored.event, stored.id, stored.run_id, kind in _TERMINAL, _lifecycle(kind))


class _Sender:
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
        self.label = _label(target)
        self.queue: queue.Queue[Optional[_Item]] = queue.Queue()  # None: only a wake-up
        self.lock = threading.RLock()  # RLock: SIGTERM may end a run while a submit holds it
        self.thread: Optional[threading.Thread] = None
        self.blocked: Set[str] = set()  # runs with an undelivered event: later ones wait
        self.slow: Set[str] = set()  # runs the job no longer waits for
        self.busy = 0
        self.store_lock = threading.RLock()  # one writer of handed-off events: sender or exit
        self.in_hand: List[_Item] = []  # the batch being sent (the thread's, or a job's here)
        self.taken: List[_Item] = []  # taken from the queue, waiting for a job's send here
        self.started: Set[str] = set()  # runs whose START this sender delivered
        self.down: Optional[str] = None  # why the tenant does not answer (no job waits)
        self.parked: List[int] = []  # stored events not delivered yet, to send again
        self.unstored: List[_Item] = []  # events neither stored nor delivered (in memory)
        self.unsaved: List[_Item] = []  # events delivered, not stored yet (in the journal)
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

    def submit(self, item: _Item) -> None:
        """Queue ``item`` for this sender's thread."""
        with self.lock:
            self.busy += 1
            self.queue.put(item)
            if self.thread is None:
                self._start()

    def crowded(self) -> bool:
        """True while more events wait in memory than it should hold (see :meth:`keep`)."""
        return self.queue.qsize() >= _QUEUE_LIMIT

    def keep(self, item: _Item) -> None:
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

    def send_here(self, item: _Item, size: int, timeout: float) -> bool:
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

    def _take(self, limit: Optional[int] = None) -> List[_Item]:
        """Up to ``limit`` (default: all) queued items, without waiting (wake-ups left out)."""
        taken: List[_Item] = []
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

    def _handle(self, batch: List[_Item]) -> None:
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

    def _store(self, items: Sequence[_Item], claim: bool, delivered: bool = False) -> None:
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
                _outbox_failed(self.outbox, error)
                with self.lock:  # tried again after a pause, not in a loop
                    self.retry_at = max(self.retry_at, time.monotonic() + _FIRST_PAUSE)
                return
            _outbox_works(self.outbox)
            for item, event_id in zip(new, ids):
                item.event_id = event_id
            _journaled(self.outbox, new)

    def _park(self, items: Sequence[_Item]) -> None:
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
        self._store(memory, claim=self.target is not None)
        try:
            items = [_item(stored) for stored in self.outbox.claim_ids(ids)] if ids else []
        except OutboxError as error:
            _outbox_failed(self.outbox, error)
            with self.lock:
                self.parked[:0] = ids
            items = []
        items.extend(memory)  # after the parked ones, as they came; stored or not
        if self.target is None:
            self._park([item for item in items if item.event_id is None])
            return
        for item in items:
            self.blocked.discard(item.run_id)
        self.in_hand = items
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
            waiting = [item for item in in_hand if not item.sent]
            waiting.extend(self._take())
            waiting.extend(self.unstored)
            parked = len(self.parked)
            once = {id(item): item for item in in_hand if item.sent}  # in hand, and unsaved
            once.update((id(item), item) for item in self.unsaved)
            sent = list(once.values())
            self.unsaved = []
        self._store(waiting, claim=False)
        self._store_delivered(sent)
        _journaled(self.outbox, in_hand + waiting)
        reason = "not sent before the process exited"
        if self.last_error or self.down:
            reason += f" (last error: {self.last_error or self.down})"
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(_ids(waiting), reason, attempted=False)
        return parked + len(waiting)

    def _finished(self, item: _Item) -> None:
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

    def _deliver(self, batch: List[_Item]) -> None:
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
            _outbox_failed(self.outbox, error)
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
        _journaled(self.outbox, sendable)
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

    def _store_delivered(self, items: Sequence[_Item]) -> None:
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

    def _hold(self, items: Sequence[_Item]) -> None:
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

    def _failed(self, items: Sequence[_Item], error: LineageDeliveryError) -> None:
        self._store(items, claim=False)
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(_ids(items), str(error))
        for item in items:
            if item.error is None:
                item.error = error
            self.blocked.add(item.run_id)
        self._park(items)
        with self.lock:
            self.last_error = str(error)
            self.retryable = error.retryable
            if error.retryable:
                if self.down is not None:
                    self.pause = min(self.pause * 2, _LAST_PAUSE)
                self.down = str(error)
                self.retry_at = time.monotonic() + self.pause
        say_once(
            f"undelivered:{self.label}",
            "atlan_ext: lineage not delivered to %s: %s. It is kept in %s%s",
            self.label,
            error,
            self.outbox.path,
            _again_note()
            if error.retryable
            else "; nothing more is sent to it until that is fixed: then send it with: "
            "atlan-lineage replay",
        )


_TERMINAL = ("COMPLETE", "ABORT", "FAIL")
#: A handed-over event: its sender, the item, whether the job sends it on its own thread,
#: and whether it waits for the answer.
Handed = Tuple[_Sender, _Item, bool, bool]
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


def _ids(items: Sequence[_Item]) -> List[int]:
    return [item.event_id for item in items if item.event_id is not None]


def _take_earlier(
    outbox: Outbox, batch: Sequence[_Item], started: Set[str]
) -> Tuple[List[OutboxEvent], Set[str]]:
    """The pending events stored before the batch's events of the same run (another process,
    an earlier failure): to be sent first, or, while another sender holds them, waited for.
    Runs whose START this sender itself delivered need no look."""
    firsts: Dict[str, _Item] = {}
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


def _sender_for(target: Any, connector: str, outbox: Outbox) -> _Sender:
    key = (_target_key(target), connector, outbox.path)
    with STATE.lock:
        sender: Optional[_Sender] = STATE.senders.get(key)
        if sender is None or (sender.target is not target and not isinstance(target, Tenant)):
            _registered()
            sender = STATE.senders[key] = _Sender(target, connector, outbox)
        return sender


def _target_key(target: Any) -> object:
    return target if isinstance(target, Tenant) or target is None else id(target)


def _forget_sender(sender: _Sender) -> None:
    """An idle sender leaves the registry (and lets go of its client)."""
    with STATE.lock:
        key = (_target_key(sender.target), sender.connector, sender.outbox.path)
        if STATE.senders.get(key) is sender:
            del STATE.senders[key]


def _senders() -> List[_Sender]:
    with STATE.lock:
        return list(STATE.senders.values())


def flush(timeout: Optional[float] = None, *, retries: bool = True) -> bool:
    """Wait up to ``timeout`` seconds (default :data:`exit_flush_seconds`) until every event
    handed over so far is delivered; True if all were. Whatever is still unsent stays in the
    outbox. ``retries=False``: do not wait for a tenant that is down to come back.

    Call it where a script must know its lineage arrived, e.g. before a container exits.
    """
    timeout = exit_flush_seconds if timeout is None else timeout
    return _wait(timeout, give_up_when_down=not retries)


def _wait(timeout: float, give_up_when_down: bool) -> bool:
    deadline = time.monotonic() + timeout
    for sender in _senders():
        while not sender.idle() or sender.owed():
            if give_up_when_down and (sender.down is not None or sender.cold):
                break  # no job waits for it now (and a courier takes what is left)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
    return all(sender.idle() and not sender.parked for sender in _senders())


def stop_sending() -> None:
    """From now on, nothing more goes out from this process: what is handed over is stored for
    the courier that takes over at exit. A SIGTERM handler calls it before it ends the open
    runs, so that their ABORTs are stored after every event already made, and sent after them
    (in the order they were made) by that courier, never by a sender racing the send that
    the signal interrupted."""
    for sender in _senders():
        sender.closed.set()


def shutdown(wait: bool = True) -> None:
    """Give unsent events a bounded moment (:data:`exit_flush_seconds`, none for a tenant
    that is down; none at all with ``wait=False``), then leave them in the outbox, with this
    process's claims released, to a courier process that delivers them once Atlan answers
    (where couriers may start: see :mod:`atlan_ext._spawn`), and say once how many that is.
    Runs at interpreter exit, and before a process dies of SIGTERM."""
    if wait:
        _wait(exit_flush_seconds, give_up_when_down=True)
    with SHIELD:  # a SIGTERM now comes after this, not into it
        _leave_to_courier()


def _leave_to_courier() -> None:
    """Shut every sender down and leave what it holds in the outbox (see :func:`shutdown`)."""
    senders = _senders()
    with STATE.lock:
        claiming = set(STATE.claiming)
    # At exit, a closed or vanished database is no reason to fail.
    left: Dict[int, int] = {}
    for sender in senders:
        sender.closed.set()
        with contextlib.suppress(Exception):
            left[id(sender)] = sender.spill()
    for outbox in {*claiming, *(sender.outbox for sender in senders)}:
        with contextlib.suppress(Exception):
            outbox.release_mine()
    with STATE.lock:
        journals = list(STATE.journals.values())
    for journal in journals:
        journal.close()  # its file goes, unless a record could not be stored
    for sender in senders:
        if left.get(id(sender)) and sender.target is not None:
            _announce(sender, left[id(sender)])


def _announce(sender: _Sender, count: int) -> None:
    """Say once, on the job's stderr, what it leaves undelivered and who delivers it."""
    reason = sender.last_error or sender.down or "no answer yet"
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
    tenant = _tenant_of(sender.target)
    courier = False
    if tenant is not None and sender.retryable:
        from atlan_ext._spawn import spawn  # here: the process module only when needed

        with contextlib.suppress(Exception):
            courier = spawn(tenant, where)
    if courier:
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


def _tenant_of(target: Any) -> Optional[Tenant]:
    """The tenant a courier process can reach for ``target``: a :class:`Tenant`, or the URL
    and key of a pyatlan client (handed to the courier in its environment, never shown)."""
    if isinstance(target, Tenant):
        return target
    url, key = getattr(target, "base_url", None), getattr(target, "api_key", None)
    if isinstance(url, str) and url and isinstance(key, str) and key:
        return Tenant(url, key)
    return None


def _registered() -> None:
    """Once a sender exists: interrupted exit hands what is left to a courier, and reads of
    the outbox see what senders hold (not at import: ``import atlan_ext`` stays light)."""
    if not STATE.exit_hooked:
        STATE.exit_hooked = True
        atexit.register(shutdown)
        on_read(_settle)


def _settle(outbox: Outbox) -> None:
    for sender in _senders():
        if sender.outbox.path == outbox.path:
            with contextlib.suppress(Exception):
                sender.settle()


# -- the per-run delivery policy -------------------------------------------------------------


class Delivery:
    """Where a run's events go and how long the job may wait for them.

    ``client``: pyatlan ``AtlanClient`` or ``AsyncAtlanClient``, a
    :class:`~atlan_ext.send.Tenant` (its client is built by the sender, off the job's thread)
    or ``None`` (kept locally; ``unconfigured`` says why, when a setting is wrong).
    ``timeout``: the longest one send may hold the job (seconds); once a tenant has not
    answered, no job waits for it again until it does. ``background``: do not wait at all.
    ``strict``: raise :class:`LineageDeliveryError` instead of logging it. ``durable``: store
    each event in the outbox on the caller's thread (for a process that may leave with
    ``os._exit``), not in the hand-off journal.
    """

    def __init__(
        self,
        client: Any,
        connector: object = "spark",
        *,
        outbox: Optional[Outbox] = None,
        timeout: float = 10.0,
        background: bool = False,
        strict: bool = False,
        unconfigured: Optional[str] = None,
        durable: bool = False,
    ) -> None:
        if timeout is None or not timeout > 0:
            raise InvalidOptionError(
                f"delivery_timeout must be a positive number of seconds, got {timeout!r}"
            )
        self.client = client
        self.connector = connector_value(connector)
        self._outbox = outbox
        self.timeout = float(timeout)
        self.background = background
        self.strict = strict
        self.unconfigured = unconfigured
        self.durable = durable  # in the outbox itself before send() returns (not the journal)
        self.is_async = client is not None and is_async_client(client)
        self._async_slow: Set[str] = set()
        self._async_started: Set[str] = set()
        self._async_tail: Optional[asyncio.Future[None]] = None

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = default_outbox()
        return self._outbox

    def secrets(self) -> List[str]:
        """The API keys that must not appear in what the run sends or stores."""
        return secrets_of(self.client)

    def _store(
        self, event: Event, lifecycle: Optional[str], check: Optional[StateCheck] = None
    ) -> Optional[int]:
        """Store ``event`` (claimed when it is to be sent) and return its id; ``None`` when
        the outbox failed: the event then travels in memory."""
        outbox = self.outbox
        if self.client is None and self.unconfigured:
            say_once(
                f"no-tenant:{self.unconfigured}",
                "atlan_ext: %s; lineage is kept locally in %s. Send it later with: "
                "atlan-lineage replay",
                self.unconfigured,
                outbox.path,
            )
        if _outbox_troubled(outbox):
            return None
        claim = self.client is not None
        try:
            event_id = outbox.add(
                event,
                self.connector,
                lifecycle_state=lifecycle,
                claim=claim,
                check=check,
                wait=self.timeout,
            )
        except OutboxError as error:
            _outbox_failed(outbox, error)
            return None
        if claim:
            with STATE.lock:
                STATE.claiming.add(outbox)
        return event_id

    def keep(self, event: Event, lifecycle: Optional[str]) -> None:
        """Store ``event`` to be sent by a later replay (or the sender's next try), without
        sending it now."""
        if _captured(event):
            return
        with contextlib.suppress(OutboxError):
            self.outbox.add(event, self.connector, lifecycle_state=lifecycle, wait=self.timeout)

    def _report(self, error: LineageDeliveryError) -> None:
        if self.strict:
            raise error

    def send(
        self, event: Event, lifecycle: Optional[str] = None, check: Optional[StateCheck] = None
    ) -> None:
        """Deliver ``event`` from a sync context, per the policy above. ``check`` is called
        with the run's stored state before the event is stored, and may refuse it.

        The event is in the outbox before this returns (a ``kill -9`` loses nothing), unless
        the outbox failed; then the sender keeps it in memory and still sends it."""
        with SHIELD:  # a SIGTERM's ABORT comes after this event, not into its hand-off
            handed = self.hand_over(event, lifecycle, check)
        self.finish(handed)

    def hand_over(
        self, event: Event, lifecycle: Optional[str] = None, check: Optional[StateCheck] = None
    ) -> Optional[Handed]:
        """The first half of :meth:`send`, which never waits for Atlan: ``event`` left where
        a kill cannot lose it and handed to its sender. The caller holds ``SHIELD`` around it
        together with the making of the event (see ``Run``), so that a SIGTERM's ABORT never
        comes between the two. ``None``: nothing more to do."""
        if self.is_async:
            raise TypeError(
                "a plain `with` (or a sync function) needs pyatlan's sync AtlanClient; "
                "use `async with` (or an async function) for an AsyncAtlanClient"
            )
        if _captured(event):
            return None
        return self._hand_over(event, lifecycle, check)

    def finish(self, handed: Optional[Handed]) -> None:
        """The second half of :meth:`send`: send it here or wait for its answer, per the
        policy above (at most :attr:`timeout`)."""
        if handed is None:
            return
        sender, item, here, waiting = handed
        if here and not sender.send_here(item, len(item.text or ""), self.timeout):
            with SHIELD, STATE.lock:  # nothing was done with it: the usual way
                sender = _sender_for(self.client, self.connector, self.outbox)
                sender.submit(item)
        if not waiting:
            return
        if not cast(threading.Event, item.done).wait(self.timeout):
            sender.slow.add(item.run_id)
            loading = sender.loading_since
            if loading is not None:
                # The time went on pyatlan's import, not on Atlan: no breaker is tripped.
                sender.cold = True
                reason = (
                    f"not sent within {self.timeout:g} s: pyatlan was still being imported "
                    f"({time.monotonic() - loading:.0f} s so far), so Atlan was not asked yet; "
                    "it is sent as soon as pyatlan is loaded"
                )
                say_once(f"loading:{sender.label}", "atlan_ext: lineage %s", reason)
            else:
                reason = (
                    f"timed out: no answer from {sender.label} within {self.timeout:g} s; "
                    "delivery goes on in the background"
                )
                sender.trip(reason)
                say_once(
                    f"undelivered:{sender.label}",
                    "atlan_ext: lineage not delivered to %s: %s. It is kept in %s; jobs in "
                    "this process no longer wait for Atlan until it answers",
                    sender.label,
                    reason,
                    self.outbox.path,
                )
            self._report(LineageDeliveryError(reason, retryable=True))
            return
        if item.error is not None:
            self._report(item.error)

    def _hand_over(
        self, event: Event, lifecycle: Optional[str], check: Optional[StateCheck]
    ) -> Optional[Handed]:
        """Leave ``event`` where a kill cannot lose it (the journal, else the outbox) and give
        it to its sender, unless the job is to send it itself: the sender, the item, whether
        the job sends it here and whether it waits. ``None``: stored, nothing to send."""
        offset, text = -1, None
        event_id: Optional[int] = None
        crowded = False
        if self.client is not None:
            with STATE.lock:
                crowded = _sender_for(self.client, self.connector, self.outbox).crowded()
        if (
            self.client is not None
            and check is None
            and not self.durable
            and not crowded
            and not _outbox_troubled(self.outbox)
        ):
            # The journal keeps it through a kill; the sender stores it in the outbox.
            journal = _journal(self.outbox)
            if journal is not None:
                offset, text = journal.append(self.connector, lifecycle, event)
        if offset < 0:
            event_id = self._store(event, lifecycle, check)
            if self.client is None and event_id is not None:
                return None
        run_id = event["run"]["runId"]
        terminal = event["eventType"] in _TERMINAL
        with STATE.lock:  # the sender stays registered until it has this item
            sender = _sender_for(self.client, self.connector, self.outbox)
            item = _Item(event, event_id, run_id, terminal, lifecycle)
            item.journal, item.text = offset, text
            if crowded and event_id is not None:
                sender.keep(item)
                return sender, item, False, False
            waiting = (
                self.client is not None
                and not self.background
                and not sender.closed.is_set()
                # strict waits for the answer every time (a tenant that is down answers at
                # once); others do not wait for a tenant that is down, a run already late,
                # or a client whose pyatlan import outlasted a job's wait already.
                and (
                    self.strict
                    or (run_id not in sender.slow and sender.down is None and not sender.cold)
                )
            )
            if waiting and sender.interrupted_here():  # a signal handler: see interrupted_here
                waiting = False
            if waiting:
                item.done = threading.Event()
            here = waiting and offset >= 0
            if not here:
                sender.submit(item)
        return sender, item, here, waiting

    async def send_async(
        self, event: Event, lifecycle: Optional[str] = None, check: Optional[StateCheck] = None
    ) -> None:
        """Deliver ``event`` from a coroutine, on the caller's event loop."""
        if not self.is_async:
            # A sync client (or none): the same path as `send`, off the event loop.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.send, event, lifecycle, check)
            return
        if _captured(event):
            return
        event_id = self._store(event, lifecycle, check)
        if event_id is None:
            say_once(
                f"async-memory:{self.outbox.path}",
                "atlan_ext: with AsyncAtlanClient, events the outbox cannot store are sent "
                "once and not kept",
            )
        if not self.background and not _async_down(self.client):
            await self._send_one_async(event, event_id)
            return
        # In the background (asked for, or because the tenant is down): a task per event,
        # each after the run's previous one, so the run's order holds while the caller goes on.
        previous = self._async_tail
        task = asyncio.ensure_future(self._after(previous, event, event_id))
        self._async_tail = task
        STATE.async_tasks.add(task)
        task.add_done_callback(STATE.async_tasks.discard)

    async def _after(
        self, previous: Optional[asyncio.Future[None]], event: Event, event_id: Optional[int]
    ) -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await previous
        with contextlib.suppress(LineageDeliveryError):  # reported where it happened
            await self._send_one_async(event, event_id)

    async def _send_one_async(self, event: Event, event_id: Optional[int]) -> None:
        run_id = event["run"]["runId"]
        ids = [] if event_id is None else [event_id]
        if run_id in self._async_slow:
            with contextlib.suppress(OutboxError):
                self.outbox.release(ids)
            return
        lifecycle = _lifecycle(event["eventType"])
        item = _Item(event, event_id, run_id, False, lifecycle)
        try:
            earlier, held = _take_earlier(self.outbox, [item], self._async_started)
        except OutboxError:
            earlier, held = [], set()
        if held:
            self._async_slow.add(run_id)
            with contextlib.suppress(OutboxError):
                self.outbox.release(ids)
            return
        events = [stored.event for stored in earlier] + [event]
        event_ids = [stored.id for stored in earlier] + ids
        error: Optional[LineageDeliveryError] = None
        try:
            await asyncio.wait_for(
                send_checked_async(self.client, events, self.connector), self.timeout
            )
        except asyncio.TimeoutError:
            error = LineageDeliveryError(
                f"timed out: no answer from {_label(self.client)} within {self.timeout:g} s",
                retryable=True,
            )
        except LineageDeliveryError as failure:
            error = failure
        if error is None:
            _async_answered(self.client)
            with contextlib.suppress(OutboxError):
                self.outbox.mark_delivered(event_ids)
            if lifecycle == "START":
                self._async_started.add(run_id)
            return
        self._async_slow.add(run_id)
        if error.retryable:
            _async_trip(self.client)
        with contextlib.suppress(OutboxError):
            self.outbox.mark_failed(event_ids, str(error))
        say_once(
            f"undelivered:{_label(self.client)}",
            "atlan_ext: lineage not delivered to %s: %s. It is kept in %s%s",
            _label(self.client),
            error,
            self.outbox.path,
            _again_note()
            if error.retryable
            else "; once that is fixed, send it with: atlan-lineage replay",
        )
        self._report(error)


def _async_down(client: Any) -> bool:
    with STATE.lock:
        return STATE.async_down.get(id(client), 0.0) > time.monotonic()


def _async_trip(client: Any) -> None:
    with STATE.lock:
        STATE.async_down[id(client)] = time.monotonic() + _LAST_PAUSE


def _async_answered(client: Any) -> None:
    with STATE.lock:
        STATE.async_down.pop(id(client), None)
