"""The one retry policy of delivery: when a tenant is tried again after it did not answer.

One loop applies it, :func:`atlan_ext.courier.drain`: in the detached courier, in
``replay``/``flush`` and in the delivery thread of a process (:mod:`atlan_ext._sender`), which
shares its breaker with that loop so its jobs see the tenant down:

- a failure that can pass (refused, timed out, 429/5xx) makes the tenant *down*; the next try
  comes after a pause of :data:`FIRST_PAUSE` that doubles with each failure in a row up to
  :data:`LAST_PAUSE`, or after the ``Retry-After`` Atlan sent when that is longer (at most
  :data:`RETRY_AFTER_CAP`: a wrong header must not stall delivery);
- an answer that only a fixed setting changes (:func:`atlan_ext.send.tenant_wide`) is final:
  nothing more is tried;
- any other refusal (HTTP 400 for one event) concerns that event only: the tenant stays up;
- a 429 on an outbox that couriers share pauses all of them, for ``Retry-After`` when Atlan
  sent one (at least :data:`FIRST_PAUSE`), else for :data:`TOO_MANY_PAUSE`.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Optional

from atlan_ext.exceptions import LineageDeliveryError
from atlan_ext.send import tenant_wide

__all__ = [
    "FIRST_PAUSE",
    "LAST_PAUSE",
    "REFUSED",
    "RETRY",
    "RETRY_AFTER_CAP",
    "STOP",
    "TOO_MANY_PAUSE",
    "Breaker",
]

FIRST_PAUSE = 1.0  # seconds before a tenant that did not answer is tried again; doubles up to:
# A minute: Atlan's own rate-limit window (a 429 blocks programmatic calls for a minute), so a
# longer pause would only delay delivery after an outage, and a shorter one gains nothing.
LAST_PAUSE = 60.0
RETRY_AFTER_CAP = 600.0  # the longest Retry-After honoured (a wrong header must not stall us)
TOO_MANY_PAUSE = 60.0  # all couriers of a shared outbox after a 429 without Retry-After

#: What :meth:`Breaker.failed` says to do.
RETRY = "retry"  # the tenant is down: try again after :meth:`Breaker.wait_left`
STOP = "stop"  # final: nothing more goes to this tenant until a setting is fixed
REFUSED = "refused"  # this event was refused; the tenant answers


class Breaker:
    """The state of one tenant as seen by one sender: up, down until a time, or stopped.

    Each call is atomic: the loop that sends (:func:`atlan_ext.courier.drain`) changes it
    while jobs of the same process read it and trip it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down: Optional[str] = None  # why the tenant does not answer (None: it does)
        self.last_error: Optional[str] = None  # the last failure, kept after a recovery
        self.final = False  # an answer only a fixed setting changes: nothing more is tried
        self.pause = FIRST_PAUSE  # the next pause without Retry-After
        self.retry_at = 0.0  # monotonic time of the next try while down

    def answered(self) -> None:
        """Atlan accepted a send: the tenant is up, the pause starts over."""
        with self._lock:
            self.down = None
            self.final = False
            self.pause = FIRST_PAUSE

    def failed(self, error: LineageDeliveryError) -> str:
        """Atlan did not take a send: :data:`RETRY`, :data:`STOP` or :data:`REFUSED`."""
        with self._lock:
            return self._failed(error)

    def _failed(self, error: LineageDeliveryError) -> str:
        self.last_error = str(error)
        if error.retryable:
            if self.down is not None:
                self.pause = min(self.pause * 2, LAST_PAUSE)
            self.down = str(error)
            # Retry-After is a floor: a shorter one (0, a date gone by) never ends the backoff.
            wait = max(self.pause, retry_after(error) or 0.0)
            self.retry_at = time.monotonic() + wait
            return RETRY
        if tenant_wide(error):
            self.final = True
            self.down = str(error)
            self.retry_at = math.inf
            return STOP
        return REFUSED

    def trip(self, reason: str) -> None:
        """The tenant did not answer in time (no error yet): down, tried after the pause."""
        with self._lock:
            if self.down is None:
                self.down = reason
                self.retry_at = time.monotonic() + self.pause

    def hold_off(self, seconds: float) -> None:
        """Try nothing for at least ``seconds`` (e.g. the outbox failed: no busy loop)."""
        with self._lock:
            self.retry_at = max(self.retry_at, time.monotonic() + seconds)

    def wait_left(self) -> float:
        """Seconds until the next try is due (0: now; infinite once stopped)."""
        return max(0.0, self.retry_at - time.monotonic())

    def due(self) -> bool:
        """True when the tenant is up, or down and its next try is due."""
        return self.down is None or time.monotonic() >= self.retry_at


def retry_after(error: LineageDeliveryError) -> Optional[float]:
    """The pause Atlan asked for with ``error`` (at most :data:`RETRY_AFTER_CAP`), if any."""
    if error.retry_after is None:
        return None
    return min(max(0.0, error.retry_after), RETRY_AFTER_CAP)


def shared_pause(error: LineageDeliveryError, default: float = TOO_MANY_PAUSE) -> Optional[float]:
    """After a 429: the seconds every courier of a shared outbox waits (``Retry-After``,
    else ``default``); ``None`` for any other answer."""
    if error.status != 429:
        return None
    wait = retry_after(error)
    return default if wait is None else max(FIRST_PAUSE, wait)
