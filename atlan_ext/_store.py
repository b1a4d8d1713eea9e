"""The one writer of handed-over events: what a run hands over becomes an :class:`Item`, and
:func:`store` is the only way an item gets into the outbox, whoever calls it (the job's thread,
the sender, the exit's spill); it closes the item's journal record, sets its outbox id and
notes once when the outbox fails. (The outbox's own recovery of a dead process's journal is
the outbox's.)"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, cast

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

# Compact and ASCII, as the journal and the outbox store events.
_ENCODER = json.JSONEncoder(separators=(",", ":"))

_TROUBLE_SECONDS = 30.0  # after the outbox failed the job's thread, it is left alone this long


class Item:
    """One handed-over event on its way to Atlan, and what became of it. A run hands over
    its event as JSON text only (:meth:`of_text`): the dict is read from the text when
    something needs it (a store in the outbox, a capture): on the sender's thread, unless
    the job's thread stores the event itself (a checked or durable store, a crowded
    sender, a failing journal)."""

    __slots__ = (
        "_event",
        "answered",
        "done",
        "error",
        "event_id",
        "journal",
        "lifecycle",
        "run_id",
        "sent",
        "terminal",
        "text",
    )

    def __init__(
        self,
        event: Optional[Event],
        event_id: Optional[int],
        run_id: str,
        terminal: bool,
        lifecycle: Optional[str] = None,
        text: Optional[str] = None,
    ) -> None:
        self._event = event
        self.event_id = event_id  # None while it is not in the outbox (the outbox failed)
        self.run_id = run_id
        self.terminal = terminal
        self.lifecycle = lifecycle
        self.text = text  # the event as compact ASCII JSON, once made
        self.journal = -1  # its record in this process's journal, until it is stored
        self.sent = False  # Atlan accepted it (it may not be stored as delivered yet)
        self.done: Optional[threading.Event] = None  # set when answered, for a job waiting
        self.answered = False
        self.error: Optional[LineageDeliveryError] = None

    @classmethod
    def of_text(cls, text: str, run_id: str, kind: str, lifecycle: Optional[str]) -> Item:
        """A run's new event, as the compact JSON it made (``kind``: its eventType)."""
        return cls(None, None, run_id, kind in TERMINAL, lifecycle, text)

    @property
    def event(self) -> Event:
        """The event as a dict (read from its text once, when it was handed over as text)."""
        event = self._event
        if event is None:
            event = self._event = json.loads(cast(str, self.text))
        return event

    def json(self) -> str:
        """The event as compact ASCII JSON (encoded once, when it was handed over as a dict)."""
        text = self.text
        if text is None:
            text = self.text = _ENCODER.encode(self._event)
        return text

    def __repr__(self) -> str:
        return f"<Item {self.run_id} {self.lifecycle or 'OTHER'} id={self.event_id}>"

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
    """An item for an event read back from the outbox: its stored JSON, read into a dict
    only if something asks for it."""
    kind = stored.event_type
    lifecycle = None if kind == "OTHER" else kind
    return Item(None, stored.id, stored.run_id, kind in TERMINAL, lifecycle, stored.text)


def ids_of(items: Sequence[Item]) -> List[int]:
    """The outbox ids of the items that are stored."""
    return [item.event_id for item in items if item.event_id is not None]


def journal_for(outbox: Outbox) -> Optional[Journal]:
    """This process's hand-off journal for ``outbox`` (none for an outbox in memory)."""
    if outbox.path == ":memory:":
        return None
    journal: Optional[Journal] = STATE.journals.get(outbox.path)  # made once: no lock to find
    if journal is not None:
        return journal
    with STATE.lock:
        journal = STATE.journals.get(outbox.path)
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
    until = STATE.outbox_trouble.get(outbox.path)  # one read of a dict: no lock needed
    return until is not None and until > time.monotonic()


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
