"""Getting events to Atlan without ever holding or breaking the job.

Every event is written to the outbox before it is sent (with ``background=True``, by the
sender, just before sending) and marked delivered only when Atlan answered 202. A sync
``AtlanClient`` is driven by one sender thread per client: the job's thread hands an event
over and waits at most ``timeout`` seconds for the answer (or not at all with
``background=True``). The sender is single-threaded and first-in first-out, so the events of
a run reach Atlan in the order they were made; once an event of a run is not delivered, the
run's later events stay in the outbox behind it instead of overtaking it, and the job stops
waiting for that run. An ``AsyncAtlanClient`` is driven on the caller's own event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, cast

from atlan_ext._state import STATE, say_once
from atlan_ext.exceptions import InvalidOptionError, LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox, OutboxEvent, default_path
from atlan_ext.send import connector_value, is_async_client, send_checked, send_checked_async

__all__ = [
    "BATCH_LIMIT",
    "Delivery",
    "default_outbox",
    "flush",
    "pop_capture",
    "push_capture",
    "shutdown",
]

log = logging.getLogger("atlan_ext")

BATCH_LIMIT = 100  # events in one POST
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


def _warn_undelivered(event: Event, error: LineageDeliveryError, outbox: Outbox) -> None:
    """One warning per run whose event Atlan did not accept."""
    run_id = event["run"]["runId"]
    say_once(
        f"undelivered:{run_id}",
        "atlan_ext: %s event of run %s (job %s) not delivered: %s. It is kept in %s; "
        "send it later with: atlan-lineage replay",
        event["eventType"],
        run_id,
        event["job"]["name"],
        error,
        outbox.path,
    )


def default_outbox() -> Outbox:
    """The outbox at :func:`default_path` (``$ATLAN_EXT_HOME/outbox.db``), opened once.

    If it cannot be opened, events are kept in memory for this process, with one warning.
    """
    path = str(default_path())
    with STATE.lock:
        outbox: Optional[Outbox] = STATE.outboxes.get(path)
        if outbox is None:
            try:
                outbox = Outbox(path)
            except OutboxError as error:
                say_once(f"outbox:{path}", "%s; lineage is kept in memory only", error)
                outbox = Outbox(":memory:")
            STATE.outboxes[path] = outbox
        return outbox


# -- the sender thread of a sync client ------------------------------------------------------


@dataclass
class _Item:
    event: Event
    event_id: Optional[int]  # None until it is in the outbox (background hand-off)
    run_id: str
    terminal: bool
    lifecycle: Optional[str] = None
    unattended: bool = False  # nobody waits for it: the sender reports its failure
    done: threading.Event = field(default_factory=threading.Event)
    error: Optional[LineageDeliveryError] = None


class _Sender:
    """One thread that sends a sync client's events in order, in batches where it can."""

    def __init__(self, client: Any, connector: str, outbox: Outbox) -> None:
        self.client = client
        self.connector = connector
        self.outbox = outbox
        self.queue: queue.Queue[_Item] = queue.Queue()
        self.lock = threading.RLock()  # RLock: SIGTERM may end a run while a submit holds it
        self.thread: Optional[threading.Thread] = None
        self.blocked: Set[str] = set()  # runs with an undelivered event: later ones wait
        self.slow: Set[str] = set()  # runs the job no longer waits for
        self.busy = 0
        self.store_lock = threading.RLock()  # one writer of handed-off events: sender or exit
        self.in_hand: List[_Item] = []
        self.started: Set[str] = set()  # runs whose START this sender delivered

    def submit(self, item: _Item) -> bool:
        """Queue ``item``; False (and the run blocked) when the queue is full."""
        with self.lock:
            if self.queue.qsize() >= _QUEUE_LIMIT:
                self.blocked.add(item.run_id)
                return False
            self.busy += 1
            self.queue.put(item)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._work, name="atlan-ext-sender", daemon=True
                )
                self.thread.start()
        return True

    def idle(self) -> bool:
        with self.lock:
            return self.busy == 0

    def _work(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                # STATE.lock first, as in Delivery.send: no submit can reach a sender between
                # the moment it finds nothing to do and the moment it leaves the registry.
                with STATE.lock, self.lock:
                    if self.queue.empty():
                        self.thread = None
                        if not self.blocked and not self.slow:
                            _forget_sender(self)
                        return
                continue
            batch = [first]
            while len(batch) < BATCH_LIMIT:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.in_hand = batch
                self._store(batch, claim=True)
                self._deliver(batch)
            except Exception:  # never let the sender die with items unanswered
                log.exception("atlan_ext: unexpected error while sending lineage")
                for item in batch:
                    if item.error is None and not item.done.is_set():
                        item.error = LineageDeliveryError(
                            "unexpected error in the sender", retryable=True
                        )
            finally:
                self.in_hand = []
                for item in batch:
                    self._finished(item)

    def _store(self, items: Sequence[_Item], claim: bool) -> None:
        """Write handed-off items to the outbox (one transaction), once."""
        with self.store_lock:
            new = [item for item in items if item.event_id is None]
            ids = self.outbox.add_many(
                [(item.event, self.connector, item.lifecycle) for item in new], claim=claim
            )
            for item, event_id in zip(new, ids):
                item.event_id = event_id

    def spill(self) -> None:
        """At exit: every event still only in memory goes to the outbox, for a replay."""
        waiting = list(self.in_hand)
        while True:
            try:
                waiting.append(self.queue.get_nowait())
            except queue.Empty:
                break
        self._store(waiting, claim=False)

    def _finished(self, item: _Item) -> None:
        if item.terminal:
            self.blocked.discard(item.run_id)
            self.slow.discard(item.run_id)
        with self.lock:
            self.busy -= 1
        item.done.set()

    def _deliver(self, batch: List[_Item]) -> None:
        earlier, held = _take_earlier(
            self.outbox, [item for item in batch if item.run_id not in self.blocked], self.started
        )
        self.blocked.update(held)
        sendable = []
        for item in batch:
            if item.run_id in self.blocked:
                item.error = LineageDeliveryError(
                    "kept in the outbox behind an earlier undelivered event of the same run",
                    retryable=True,
                )
                self.outbox.release(_ids([item]))
            else:
                sendable.append(item)
        if not sendable:
            return
        ahead = [
            _Item(
                e.event, e.id, e.run_id, e.event_type in _TERMINAL, _lifecycle(e.event_type), True
            )
            for e in earlier
        ]
        sendable = ahead + sendable
        try:
            send_checked(self.client, [item.event for item in sendable], self.connector)
        except LineageDeliveryError as error:
            if len(sendable) > 1 and not error.retryable:
                # The endpoint may refuse an array: fall back to one request per event.
                for item in sendable:
                    self._deliver([item])
                return
            self._failed(sendable, error)
            return
        self.outbox.mark_delivered(_ids(sendable))
        for item in sendable:
            if item.lifecycle == "START":
                self.started.add(item.run_id)
            elif item.terminal:
                self.started.discard(item.run_id)

    def _failed(self, items: Sequence[_Item], error: LineageDeliveryError) -> None:
        self.outbox.mark_failed(_ids(items), str(error))
        for item in items:
            item.error = error
            self.blocked.add(item.run_id)
            if item.unattended:
                _warn_undelivered(item.event, error, self.outbox)


_TERMINAL = ("COMPLETE", "ABORT", "FAIL")


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
        if item.event_id is not None and item.run_id not in firsts:
            firsts[item.run_id] = item
    asked = {
        run_id: cast(int, item.event_id)
        for run_id, item in firsts.items()
        if item.lifecycle != "START" and run_id not in started
    }
    if not asked:
        return [], set()
    earlier, held = outbox.take_earlier(asked)
    return earlier, set(held)


def _sender_for(client: Any, connector: str, outbox: Outbox) -> _Sender:
    key = (id(client), connector, outbox.path)
    with STATE.lock:
        sender: Optional[_Sender] = STATE.senders.get(key)
        if sender is None or sender.client is not client:
            sender = STATE.senders[key] = _Sender(client, connector, outbox)
        return sender


def _forget_sender(sender: _Sender) -> None:
    """An idle sender leaves the registry (and lets go of its client)."""
    with STATE.lock:
        key = (id(sender.client), sender.connector, sender.outbox.path)
        if STATE.senders.get(key) is sender:
            del STATE.senders[key]


def _senders() -> List[_Sender]:
    with STATE.lock:
        return list(STATE.senders.values())


def flush(timeout: Optional[float] = None) -> bool:
    """Wait up to ``timeout`` seconds for every sender to finish; True if all did.

    Whatever is still unsent stays in the outbox. Runs at interpreter exit.
    """
    deadline = time.monotonic() + (exit_flush_seconds if timeout is None else timeout)
    for sender in _senders():
        while not sender.idle():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
    return True


def shutdown() -> None:
    """Give unsent events a bounded moment (:data:`exit_flush_seconds`), then leave them to a
    replay: in the outbox, with this process's claims released. Runs at interpreter exit,
    and before a process dies of SIGTERM."""
    flush()
    senders = _senders()
    with STATE.lock:
        claiming = set(STATE.claiming)
    # At exit, a closed or vanished database is no reason to fail.
    for sender in senders:
        with contextlib.suppress(Exception):
            sender.spill()
    for outbox in {*claiming, *(sender.outbox for sender in senders)}:
        with contextlib.suppress(Exception):
            outbox.release_mine()


atexit.register(shutdown)


# -- the per-run delivery policy -------------------------------------------------------------


class Delivery:
    """Where a run's events go and how long the job may wait for them.

    ``client``: pyatlan ``AtlanClient``, ``AsyncAtlanClient`` or ``None`` (kept locally).
    ``timeout``: the longest one send may hold the job (seconds). ``background``: do not
    wait at all. ``strict``: raise :class:`LineageDeliveryError` instead of logging it.
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
        self.is_async = client is not None and is_async_client(client)
        self._async_slow: Set[str] = set()
        self._async_started: Set[str] = set()
        self._async_tail: Optional[asyncio.Future[None]] = None

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = default_outbox()
        return self._outbox

    def _store(
        self, event: Event, lifecycle: Optional[str], check: Optional[StateCheck] = None
    ) -> Optional[int]:
        if _captured(event):
            return None
        claim = self.client is not None
        if claim:
            with STATE.lock:
                STATE.claiming.add(self.outbox)
        event_id = self.outbox.add(
            event, self.connector, lifecycle_state=lifecycle, claim=claim, check=check
        )
        if self.client is None:
            say_once(
                "no-tenant",
                "atlan_ext: no Atlan tenant configured (ATLAN_BASE_URL, ATLAN_API_KEY); lineage "
                "is kept locally in %s. Send it later with: atlan-lineage replay",
                self.outbox.path,
            )
        return event_id

    def _report(self, event: Event, error: LineageDeliveryError) -> None:
        _warn_undelivered(event, error, self.outbox)
        if self.strict:
            raise error

    def send(
        self, event: Event, lifecycle: Optional[str] = None, check: Optional[StateCheck] = None
    ) -> None:
        """Deliver ``event`` from a sync context, per the policy above. ``check`` is called
        with the run's stored state before the event is stored, and may refuse it."""
        if self.is_async:
            raise TypeError(
                "a plain `with` (or a sync function) needs pyatlan's sync AtlanClient; "
                "use `async with` (or an async function) for an AsyncAtlanClient"
            )
        if self.background and self.client is not None and check is None:
            if _captured(event):
                return
            # Only the hand-off happens on the job's thread; the sender stores and sends.
            event_id: Optional[int] = None
        else:
            event_id = self._store(event, lifecycle, check)
            if event_id is None or self.client is None:
                return
        run_id = event["run"]["runId"]
        terminal = event["eventType"] in _TERMINAL
        with STATE.lock:  # the sender stays registered until it has this item
            sender = _sender_for(self.client, self.connector, self.outbox)
            waiting = not self.background and run_id not in sender.slow
            item = _Item(event, event_id, run_id, terminal, lifecycle, unattended=not waiting)
            accepted = sender.submit(item)
        if not accepted:
            # Never dropped: into the outbox (if not there yet), for the next replay.
            if event_id is None:
                self.outbox.add(event, self.connector, lifecycle_state=lifecycle)
            else:
                self.outbox.release([event_id])
            say_once(
                "queue-full",
                "atlan_ext: more than %d events wait for Atlan; the rest stay in %s for "
                "atlan-lineage replay",
                _QUEUE_LIMIT,
                self.outbox.path,
            )
            return
        if not waiting:
            return
        if not item.done.wait(self.timeout):
            sender.slow.add(run_id)
            self._report(
                event,
                LineageDeliveryError(
                    f"no answer from Atlan within {self.timeout:g} s; delivery goes on in "
                    "the background",
                    retryable=True,
                ),
            )
            return
        if item.error is not None:
            self._report(event, item.error)

    async def send_async(
        self, event: Event, lifecycle: Optional[str] = None, check: Optional[StateCheck] = None
    ) -> None:
        """Deliver ``event`` from a coroutine, on the caller's event loop."""
        if not self.is_async:
            # A sync client (or none): the same path as `send`, off the event loop.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.send, event, lifecycle, check)
            return
        event_id = self._store(event, lifecycle, check)
        if event_id is None:
            return
        if not self.background:
            await self._send_one_async(event, event_id)
            return
        # In the background: a task per event, each after the run's previous one, so the
        # run's order holds while the caller goes on.
        previous = self._async_tail
        task = asyncio.ensure_future(self._after(previous, event, event_id))
        self._async_tail = task
        STATE.async_tasks.add(task)
        task.add_done_callback(STATE.async_tasks.discard)

    async def _after(
        self, previous: Optional[asyncio.Future[None]], event: Event, event_id: int
    ) -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await previous
        await self._send_one_async(event, event_id)

    async def _send_one_async(self, event: Event, event_id: int) -> None:
        run_id = event["run"]["runId"]
        if run_id in self._async_slow:
            self.outbox.release([event_id])
            return
        lifecycle = _lifecycle(event["eventType"])
        item = _Item(event, event_id, run_id, False, lifecycle)
        earlier, held = _take_earlier(self.outbox, [item], self._async_started)
        if held:
            self._async_slow.add(run_id)
            self.outbox.release([event_id])
            return
        events = [stored.event for stored in earlier] + [event]
        event_ids = [stored.id for stored in earlier] + [event_id]
        try:
            await asyncio.wait_for(
                send_checked_async(self.client, events, self.connector), self.timeout
            )
        except asyncio.TimeoutError:
            self._async_slow.add(run_id)
            self.outbox.mark_failed(event_ids, "timed out")
            self._report(
                event,
                LineageDeliveryError(
                    f"no answer from Atlan within {self.timeout:g} s", retryable=True
                ),
            )
        except LineageDeliveryError as error:
            self._async_slow.add(run_id)
            self.outbox.mark_failed(event_ids, str(error))
            self._report(event, error)
        else:
            self.outbox.mark_delivered(event_ids)
            if lifecycle == "START":
                self._async_started.add(run_id)
