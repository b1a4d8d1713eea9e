"""A sender's queue of handed-over events (:class:`Inbox`)."""

from __future__ import annotations

import collections
import contextlib
import queue
import time
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

    The deque is what is queued; a token is only a wake-up. A taker takes from the deque and
    waits for a token only when it is empty, so an item whose token never came (an
    exception, Ctrl-C say, landing between the two calls of a put) is still taken, by the
    next take; a spare token only wakes a taker that finds nothing and waits again."""

    def __init__(self) -> None:
        self._items: Deque[T] = collections.deque()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._tokens.put(None)

    def add(self, item: T) -> None:
        """Queue ``item`` without waking a taker: for a taker that looks on its own (its
        :meth:`wait` has a short timeout), one C call and no system call."""
        self._items.append(item)

    def wait(self, timeout: float) -> None:
        """Return once something is queued (at once if it is; an item queued by :meth:`add`
        meanwhile, by the end of ``timeout`` at the latest); :data:`Empty` after ``timeout``
        seconds with nothing queued. It takes nothing: the taker takes, under its own lock if
        what it holds must be seen whole (see :meth:`queued`)."""
        deadline = time.monotonic() + timeout
        while not self._items:
            try:
                self._tokens.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                if self._items:  # added without a token
                    return
                raise

    def get_nowait(self) -> T:
        """The oldest item, else :data:`Empty`."""
        try:
            item = self._items.popleft()
        except IndexError:
            raise Empty from None
        # A token, unless a taker used it to wake up or none came (added): which item's it
        # was does not matter, only that no more are left than items.
        with contextlib.suppress(Empty):
            self._tokens.get_nowait()
        return item

    def empty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)

    def queued(self) -> List[T]:
        """What is queued, oldest first (a copy: one C call, so no put lands halfway)."""
        return list(self._items)
