"""What a sender owes, and how it is sent again: the events it holds after a failure (parked
in the outbox, or in memory while the outbox fails) go through the one courier loop,
:func:`atlan_ext.courier.drain`, over the sender's outbox with its breaker; what the outbox
does not take yet gets one attempt from memory. The thread that calls it, and the first try
of each event, are :class:`atlan_ext._sender.Sender`'s, built on :class:`Owed`."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Optional, cast

from atlan_ext._breaker import FIRST_PAUSE, STOP
from atlan_ext._held import Held
from atlan_ext._store import Item, ids_of, outbox_failed
from atlan_ext._tenant import Tenant
from atlan_ext.exceptions import LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox
from atlan_ext.send import BATCH_LIMIT

__all__ = ["Owed"]

log = logging.getLogger("atlan_ext")


class Owed(Held):
    """A sender's events to send again, and its client (built on its thread, once)."""

    def __init__(self, target: Any, connector: str, outbox: Outbox) -> None:
        super().__init__(target, connector, outbox)
        self.client: Any = None if isinstance(target, Tenant) else target
        self.handling = threading.Lock()  # one batch at a time: the thread's, or a job's here
        self.here: Optional[int] = None  # the job's thread that is sending on it now
        self.loading_since: Optional[float] = None  # while pyatlan's client is being built
        self.cold = False  # a job's wait ended while it was: jobs do not wait until it is
        self.draining = False  # the courier loop runs on its thread now (see quiet)

    def deliver(self, batch: List[Item]) -> None:
        """One attempt at ``batch``, in order (the sender's)."""
        raise NotImplementedError

    def client_now(self) -> Any:
        """The client, built here the first time: pyatlan's import (seconds; up to 30 on a
        busy machine). A job whose wait ends meanwhile is told so, and the tenant is not
        blamed for it."""
        if self.client is None:
            self.loading_since = time.monotonic()
            try:
                self.client = cast(Tenant, self.target).client()
            finally:
                self.loading_since = None
                self.cold = False
        return self.client

    def quiet(self, seconds: float) -> None:
        """After :meth:`close`, at exit: wait at most ``seconds`` for a drain's batches in
        flight to get their answers, so that their leases are not freed (and the courier that
        takes over does not send them again) while Atlan may still take them. Not for a
        tenant known to be down, nor in a signal handler that interrupted this thread's send."""
        if not self.draining or self.breaker.down is not None or self.interrupted_here():
            return
        if self.handling.acquire(timeout=seconds):
            self.handling.release()

    def interrupted_here(self) -> bool:
        """True in a signal handler that interrupted this thread's own send on this sender:
        what it sends cannot wait for that send (it waits for the handler)."""
        return self.here == threading.get_ident()

    def recover(self) -> None:
        """What it owes is sent by the one courier loop (:func:`atlan_ext.courier.drain`) over
        its outbox, with this sender's breaker, until nothing sendable is left; what the
        outbox does not take yet gets one attempt from memory. Then back to the queue."""
        with self.lock:
            self.busy += 1  # not idle while it drains
            memory, self.unstored = self.unstored, []
            self.moving = list(memory)  # seen by spill until it is parked or in hand
        try:
            self.store_items(memory, claim=False)
            with self.lock:
                self.moving = []
                if self.target is not None:  # store only: stored is done
                    self.parked.extend(ids_of(memory))
                memory = [item for item in memory if item.event_id is None]
                if self.target is None or self.breaker.final:
                    self.unstored[:0] = memory
                    return
                self.in_hand = memory  # the outbox fails: from memory, in order
            self.blocked.difference_update(item.run_id for item in memory)
            for start in range(0, len(memory), BATCH_LIMIT):
                chunk = memory[start : start + BATCH_LIMIT]
                if self.breaker.down is not None and start > 0:
                    self.hold(chunk)
                else:
                    self.deliver(chunk)
            self.in_hand = []
            if self.parked:
                self.drain_owed()
        finally:
            with self.lock:
                self.busy -= 1

    def drain_owed(self) -> None:
        """The courier loop over this sender's outbox, until nothing sendable is left, a
        hand-off wakes it (the queue comes first) or the breaker says to wait."""
        # Here: the courier module (the outbox stores, the spawner) only once something is owed.
        from atlan_ext.courier import LIFE_SECONDS, drain

        self.wake.clear()
        if not self.queue.empty():  # handed over before the clear: the queue comes first
            return
        try:
            client = self.client_now()
        except LineageDeliveryError as error:  # no client here (e.g. forked mid-import)
            self.say_undelivered(str(error), self.breaker.failed(error))
            return
        self.draining = True
        try:
            self.outbox.release(list(self.parked))  # a read may have leased them to us
            done = drain(
                client,
                self.outbox,
                seconds=LIFE_SECONDS,
                say=lambda line: log.info("atlan_ext: to %s: %s", self.label, line),
                stop=self.wake,  # a hand-off (or shutdown) comes first: it drains again after
                breaker=self.breaker,
                skip_runs=self.refused,
            )
        except OutboxError as error:
            outbox_failed(self.outbox, error)
            self.breaker.hold_off(FIRST_PAUSE)
            return
        finally:
            self.draining = False
        if done.fatal is not None:
            self.say_undelivered(done.fatal, STOP)
        elif not self.wake.is_set() and self.breaker.down is None:
            self.settle_parked()
