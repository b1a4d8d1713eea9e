"""The one writer of handed-over events: what a run hands over becomes an :class:`Item`, and
:func:`store` is the only way an item gets into the outbox, whoever calls it (the job's thread,
the sender, the exit's spill); it closes the item's journal record, sets its outbox id and
notes once when the outbox fails. (The outbox's own recovery of a dead process's journal is
the outbox's.)"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from atlan_ext._journal import Journal
from atlan_ext._state import STATE, say_once
from atlan_ext.exceptions import LineageDeliveryError, OutboxError
from atlan_ext.outbox import Outbox, OutboxEvent

__all__ = [
    "TERMINAL",
    "Event",
    "Item",
    "ids_of",
    "item_of",
    "journal_for",
    "journaled",
    "outbox_failed",
    "outbox_troubled",
    "store",
    "stored_item",
]

Event = Dict[str, Any]

TERMINAL = ("COMPLETE", "ABORT", "FAIL")

_TROUBLE_SECONDS = 30.0  # after the outbox failed the job's thread, it is left alone this long


@dataclass
class Item:
    """One handed-over event on its way to Atlan, and what became of it."""

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
        """Atlan answered (or the sender gave up on it for now): a job waiting may go on."""
        self.answered = True
        if self.done is not None:
            self.done.set()


def item_of(event: Event, lifecycle: Optional[str], event_id: Optional[int] = None) -> Item:
    """A new item for ``event`` (its run and kind read from it)."""
    terminal = event["eventType"] in TERMINAL
    return Item(event, event_id, event["run"]["runId"], terminal, lifecycle)


def stored_item(stored: OutboxEvent) -> Item:
    """An item for an event read back from the outbox."""
    kind = stored.event_type
    lifecycle = None if kind == "OTHER" else kind
    return Item(stored.event, stored.id, stored.run_id, kind in TERMINAL, lifecycle)


def ids_of(items: Sequence[Item]) -> List[int]:
    """The outbox ids of the items that are stored."""
    return [item.event_id for item in items if item.event_id is not None]


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
    """True for a while after the outbox failed to store (the job's thread leaves it alone)."""
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


def store(
    outbox: Outbox,
    connector: str,
    items: Sequence[Item],
    *,
    claim: bool,
    delivered: bool = False,
    check: Optional[Callable[[Optional[str]], None]] = None,
    wait: Optional[float] = None,
) -> bool:
    """Write the items not yet in the outbox, in order, in one transaction, once: each gets
    its outbox id and its journal record is closed. ``claim``: leased to this process (it
    sends them); ``delivered``: Atlan took them already. ``check`` (one item only) is given
    the run's stored state in that transaction and may refuse it; ``wait`` bounds the wait
    for another writer. False when the outbox failed (said once): the items stay in memory,
    and in the journal. A refusal by ``check`` is raised."""
    new = [item for item in items if item.event_id is None]
    if not new:
        return True
    try:
        if check is not None or wait is not None:  # a job's event, stored on its own thread
            (item,) = new
            found = [
                outbox.add(
                    item.event,
                    connector,
                    lifecycle_state=item.lifecycle,
                    claim=claim,
                    check=check,
                    wait=wait,
                )
            ]
        else:
            found = outbox.add_many(
                [(item.event, connector, item.lifecycle) for item in new],
                claim=claim,
                delivered=delivered,
                texts=[item.text for item in new],
            )
    except OutboxError as error:
        outbox_failed(outbox, error)
        return False
    with STATE.lock:
        STATE.outbox_trouble.pop(outbox.path, None)  # it works again
        if claim:
            STATE.claiming.add(outbox)  # released at exit, for a courier
    for item, event_id in zip(new, found):
        item.event_id = event_id
    journaled(outbox, new)
    return True
