"""The job's side of delivery: where a run's events go, how long the job waits, what it is told.

Every event is kept before any network call (the hand-off journal, or the outbox itself) and
marked delivered only when Atlan answered 202. The sender (:mod:`atlan_ext._sender`) of the
event's tenant stores and sends it; the job waits at most ``timeout`` seconds for the answer
(not at all with ``background=True``), or sends it on its own thread when its client's
timeouts bound that within ``timeout`` and the sender is idle. A run's events reach Atlan in
the order they were made. At exit (or SIGTERM) what is left is kept in the outbox and a
courier process takes it over (:mod:`atlan_ext._spawn`). An ``AsyncAtlanClient``'s events go
the same way, awaited off the event loop.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from typing import Any, Callable, List, Optional, Tuple, cast

from atlan_ext._exit import holding, leave_to_courier, stop_sending
from atlan_ext._sender import Sender, sender_for, senders
from atlan_ext._state import SHIELD, STATE, captured, pop_capture, push_capture, say_once
from atlan_ext._store import Event, Item, item_of, journal_for, outbox_troubled, store
from atlan_ext._tenant import tenant_of
from atlan_ext.exceptions import InvalidOptionError, LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox, on_read
from atlan_ext.send import connector_value, is_async_client, secrets_of

__all__ = [
    "Delivery",
    "Handed",
    "default_outbox",
    "flush",
    "holding",
    "pop_capture",
    "push_capture",
    "shutdown",
    "stop_sending",
]

#: How long interpreter exit waits for unsent events (the command line sets 0: its waits are
#: already bounded, and whatever is unsent is in the outbox).
exit_flush_seconds = 5.0

StateCheck = Callable[[Optional[str]], None]

# -- the default outbox ----------------------------------------------------------------------

_PATH_SETTINGS = ("XDG_DATA_HOME", "HOME", "LOCALAPPDATA")  # after ATLAN_EXT_HOME


def default_outbox() -> Outbox:
    """The outbox at :func:`default_path` (``$ATLAN_EXT_HOME/outbox.db``), opened once.

    If it cannot be opened, events are kept in memory for this process (and still sent),
    with one warning naming the fix.
    """
    # Keyed by the settings that decide the path: building the path costs more than a run's
    # hand-off, and the settings rarely change within a process.
    home = os.environ.get("ATLAN_EXT_HOME")
    settings: Tuple[Optional[str], ...] = (home, os.environ.get("ATLAN_EXT_OUTBOX"))
    if not home:  # the platform's data folder decides
        settings = (home, *(os.environ.get(name) for name in _PATH_SETTINGS))
    with STATE.lock:
        known: Optional[Outbox] = STATE.outboxes.get(settings)
    if known is not None:
        return known
    from atlan_ext.stores import open_outbox, outbox_setting, redacted

    path = outbox_setting()  # a PostgreSQL URL may hold a password: only the key of a dict
    with STATE.lock:
        outbox: Optional[Outbox] = STATE.outboxes.get(path)
        if outbox is None:
            try:
                outbox = open_outbox(path)
            except OutboxError as error:
                say_once(
                    f"outbox:{redacted(path)}",
                    "atlan_ext: %s; lineage is kept in memory only",
                    error,
                )
                outbox = Outbox(":memory:")
            STATE.outboxes[path] = outbox
        STATE.outboxes[settings] = outbox
        return outbox


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
    for sender in senders():
        while not sender.idle() or sender.owed():
            if give_up_when_down and sender.breaker.down is not None:
                break  # no job waits for it now (and a courier takes what is left)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
    return all(sender.idle() and not sender.parked and not sender.refused for sender in senders())


def shutdown(wait: bool = True, *, exiting: bool = True) -> None:
    """Give unsent events a bounded moment (:data:`exit_flush_seconds`, none for a tenant
    that is down; none at all with ``wait=False``), then leave them in the outbox, with this
    process's claims released, to a courier process that delivers them once Atlan answers
    (where couriers may start: see :mod:`atlan_ext._spawn`), and say once how many that is.
    Runs at interpreter exit, and before a process dies of SIGTERM. ``exiting=False``: the
    process goes on (the testing kit between tests): its PostgreSQL writer beats go on too."""
    if wait:
        _wait(exit_flush_seconds, give_up_when_down=True)
    with SHIELD:  # a SIGTERM now comes after this, not into it
        leave_to_courier()
    # A no-tenant sender may store a run's first event only now: its writer's beat ends after
    # it (as it would have at exit), so a step command's open run is judged by its age.
    beats = sys.modules.get("atlan_ext._pg_sql")  # not imported here: SQLite never needs it
    if exiting and beats is not None:
        beats.end_beats()


def _registered() -> None:
    """Once a run delivers: exit hands what is left to a courier, and reads of the outbox see
    what senders hold (not at import: ``import atlan_ext`` stays light)."""
    if not STATE.exit_hooked:
        STATE.exit_hooked = True
        atexit.register(shutdown)
        on_read(_settle)


def _settle(outbox: Outbox) -> None:
    for sender in senders():
        if sender.outbox.path == outbox.path:
            with contextlib.suppress(Exception):
                sender.settle()


# -- the per-run delivery policy -------------------------------------------------------------

#: A handed-over event the job waits for: its sender, the item, and whether the job sends it
#: on its own thread.
Handed = Tuple[Sender, Item, bool]


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
        if timeout is None or not 0 < timeout < float("inf"):
            raise InvalidOptionError(
                f"delivery_timeout must be a finite positive number of seconds, got {timeout!r}"
            )
        self.client = client
        self.connector = connector_value(connector)
        self._given = outbox
        self._outbox = outbox
        self.timeout = min(float(timeout), threading.TIMEOUT_MAX)  # what a wait can take
        self.background = background
        self.strict = strict
        self.unconfigured = unconfigured
        self.durable = durable  # in the outbox itself before send() returns (not the journal)
        if not STATE.exit_hooked:
            _registered()
        self.is_async = client is not None and is_async_client(client)
        if self.is_async:
            # One delivery path: an AsyncAtlanClient's events go through the same sender as
            # everything else, with a sync AtlanClient for the same tenant built on the
            # delivery thread; a coroutine awaits the answer without blocking its loop.
            self.client = tenant_of(client, self.timeout)

    def fresh(self) -> Delivery:
        """A copy for another run: the same settings, checked already, and the default
        outbox (when none was given) looked up when the copy first needs it, as a new
        Delivery would."""
        copy: Delivery = object.__new__(Delivery)
        copy.__dict__.update(self.__dict__)
        copy._outbox = self._given
        return copy

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = default_outbox()
        return self._outbox

    def secrets(self) -> List[str]:
        """The API keys that must not appear in what the run sends or stores."""
        return secrets_of(self.client)

    def _store(self, item: Item, check: Optional[StateCheck] = None) -> None:
        """Store ``item`` on the job's thread (claimed when it is to be sent); its id stays
        ``None`` when the outbox failed: the event then travels in memory."""
        outbox = self.outbox
        if not outbox_troubled(outbox):
            claim = self.client is not None
            store(outbox, self.connector, [item], claim=claim, check=check, wait=self.timeout)

    def keep(self, item: Item) -> None:
        """Keep ``item`` without sending it now: stored, and held by the sender behind the
        run's undelivered START (sent after it on the sender's next try; in memory when the
        outbox does not take it, spilled at exit)."""
        if STATE.captures and captured(item.event):
            return
        if self.client is not None:
            # The run's START, still in the sender's hands or queue, is stored first (leased
            # to it): no courier on this outbox, in any process, sends the ABORT before it.
            with STATE.lock:
                sender = sender_for(self.client, self.connector, self.outbox)
            with contextlib.suppress(Exception):  # as a read's settle: the ABORT is kept anyway
                sender.settle()
        store(self.outbox, self.connector, [item], claim=False, wait=self.timeout)
        if self.client is not None:
            with STATE.lock:
                sender_for(self.client, self.connector, self.outbox).keep(item)

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
        if self.is_async:
            raise TypeError(
                "a plain `with` (or a sync function) needs pyatlan's sync AtlanClient; "
                "use `async with` (or an async function) for an AsyncAtlanClient"
            )
        if STATE.captures and captured(event):  # as given, whatever its shape
            return
        with SHIELD:  # a SIGTERM's ABORT comes after this event, not into its hand-off
            handed = self.hand_over(item_of(event, lifecycle), check)
        self.finish(handed)

    def finish(self, handed: Optional[Handed]) -> None:
        """The second half of :meth:`send`: send it here or wait for its answer, per the
        policy above (at most :attr:`timeout`)."""
        if handed is None:
            return
        sender, item, here = handed
        asked = time.monotonic()
        if here:
            first = sender
            if not sender.send_here(item, len(item.text or ""), self.timeout):
                with SHIELD, STATE.lock:  # nothing was done with it: the usual way
                    sender = sender_for(self.client, self.connector, self.outbox)
                    sender.submit(item)
            first.drop_mine(item)
        if not cast(threading.Event, item.done).wait(self.timeout):
            if item.sent:  # Atlan took it; only its record waits (another outbox writer)
                return
            reason = sender.not_answered(item, self.timeout, asked)
            self._report(LineageDeliveryError(reason, retryable=True))
            return
        if item.error is not None:
            self._report(item.error)

    def hand_over(self, item: Item, check: Optional[StateCheck] = None) -> Optional[Handed]:
        """The first half of :meth:`send`, which never waits for Atlan: ``item`` left where
        a kill cannot lose it (the journal, else the outbox) and given to its sender, unless
        the job sends it itself (see :data:`Handed`). The caller holds ``SHIELD`` around it
        together with the making of the event (see ``Run``), so that a SIGTERM's ABORT never
        comes between the two. A run hands over its events as text (see
        :meth:`atlan_ext._store.Item.of_text`). ``None``: nothing more to do (stored, or
        handed over with nothing to wait for)."""
        if STATE.captures and captured(item.event):  # read without a lock: usually empty
            return None
        offset = -1
        outbox, client = self.outbox, self.client
        crowded = False
        if client is None and self.unconfigured:
            kept = (  # no outbox works (said already): nothing keeps it
                ", and no outbox works here: lineage is neither sent nor kept, and is lost "
                "when this process exits"
                if outbox.path == ":memory:"
                else f"; lineage is kept locally in {outbox.path}. Send it later with: "
                "atlan-lineage replay"
            )
            say_once(f"no-tenant:{self.unconfigured}", "atlan_ext: %s%s", self.unconfigured, kept)
        if client is not None or check is None:
            # One hold of the lock for the usual case: the event is journaled (kept through a
            # kill; its sender stores it in the outbox, one commit a batch) and given to its
            # sender, which stays registered until it has the item. With no tenant that sender
            # only stores: the job's thread pays one journal append, not an outbox commit.
            with STATE.lock:
                sender = sender_for(client, self.connector, outbox)
                crowded = sender.crowded()
                if (
                    check is None
                    and not self.durable
                    and not crowded
                    and not outbox_troubled(outbox)
                ):
                    journal = journal_for(outbox)
                    if journal is not None:
                        offset = journal.append(self.connector, item.lifecycle, item.json())
                if offset >= 0:
                    return self._give(sender, item, offset, crowded)
        self._store(item, check)
        if client is None and item.event_id is not None:
            return None
        with STATE.lock:  # the sender stays registered until it has this item
            sender = sender_for(client, self.connector, outbox)
            return self._give(sender, item, offset, crowded)

    def _give(self, sender: Sender, item: Item, offset: int, crowded: bool) -> Optional[Handed]:
        """Give ``item`` (journal ``offset``, or -1) to ``sender``; under ``STATE.lock``."""
        item.journal = offset
        if crowded and item.event_id is not None:
            sender.keep(item)
            return None
        # strict waits for the answer every time (a tenant that is down answers at once);
        # others do not wait for a tenant that is down, a run already late, or a client
        # whose pyatlan import outlasted a job's wait already.
        waiting = (
            self.client is not None
            and not self.background
            and not sender.closed.is_set()
            and (
                self.strict
                or not (
                    item.run_id in sender.slow or sender.breaker.down is not None or sender.cold
                )
            )
        )
        if waiting and sender.interrupted_here():  # a signal handler: see interrupted_here
            waiting = False
        if waiting:
            item.done = threading.Event()
        here = waiting and offset >= 0
        if here:
            sender.keep_mine(item)
        else:
            sender.submit(item, wake=waiting)
        return (sender, item, here) if waiting else None

    async def send_async(self, item: Item, check: Optional[StateCheck] = None) -> None:
        """Deliver ``item`` from a coroutine: handed over as :meth:`send` does, and the
        answer awaited (when the run waits for it) off the event loop."""
        with SHIELD:  # as in send: a SIGTERM's spill never finds the queue's lock held
            handed = self.hand_over(item, check)
        if handed is None:  # nothing to wait for: no thread hop
            return
        import asyncio  # here: only async code pays for it

        await asyncio.get_running_loop().run_in_executor(None, self.finish, handed)
