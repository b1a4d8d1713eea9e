"""A sender's queue of handed-over events (:class:`Inbox`)."""

from __future__ import annotations

import collections
import queue
from typing import Deque, Generic, List, TypeVar

__all__ = ["Empty", "Inbox"]

T = TypeVar("T")

#: Raised by :meth:`Inbox.get` and :meth:`Inbox.get_nowait` when nothing is queued.
Empty = queue.Empty


class Inbox(Generic[T]):
    """First in, first out, for any number of threads. A put is two C calls (a deque's
    append, then a token in a C queue that wakes a waiting taker): a job's hand-off runs no
    Python-level locking. What is queued can be read whole (a settle before a read, the
    spill at exit) and counted without taking anything out.

    Each token is put after its item, and each taker takes a token before an item: no taker
    finds the deque empty, whichever item it then takes (the oldest)."""

    def __init__(self) -> None:
        self._items: Deque[T] = collections.deque()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._tokens.put(None)

    def get(self, timeout: float) -> T:
        """The oldest item, waiting up to ``timeout`` seconds for one; else :data:`Empty`."""
        self._tokens.get(timeout=max(0.0, timeout))
        return self._items.popleft()

    def get_nowait(self) -> T:
        """The oldest item, else :data:`Empty`."""
        self._tokens.get_nowait()
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)

    def queued(self) -> List[T]:
        """What is queued, oldest first (a copy: one C call, so no put lands halfway)."""
        return list(self._items)
