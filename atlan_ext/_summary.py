"""The summary under a ``%%lineage`` cell: one line and the run's picture, shown with an
IPython display id and updated in place when delivery ends (``delivered``, or ``kept in the
outbox``, why, and who sends them).

Delivery is watched only through the run's public ``delivery()`` (event time -> ``pending``
or ``delivered``), from one daemon thread per summary, up to a bounded deadline: a kernel
that shuts down never waits for it.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional, Sequence

from atlan_ext._breaker import REFUSED, RETRY, STOP
from atlan_ext._exit import verdict_on
from atlan_ext._held import undelivered_note
from atlan_ext._state import start_thread
from atlan_ext.display import summary_bundle
from atlan_ext.send import tenant_from_settings

__all__ = ["WATCH_SECONDS", "Summary", "kept_in_outbox", "why_kept"]

#: How long a summary watches delivery before it says what is kept in the outbox.
WATCH_SECONDS = 120.0
_REPLAY = "atlan-lineage replay sends them"
_STATUS = "atlan-lineage status shows them"
# Said until delivery ends, so a notebook saved before then (its kernel stopped first) tells
# the truth about where its events are.
_SENDING = (
    "sending\u2026 (should the kernel stop first, they stay in the outbox for a courier or "
    "atlan-lineage replay)"
)
_NO_TENANT = "no Atlan tenant configured: set ATLAN_BASE_URL and ATLAN_API_KEY"


def why_kept(local: bool, client: Any) -> Optional[str]:
    """Why the notebook's runs go to the local outbox and not to Atlan, or ``None`` when they
    are sent (``local``: ``%lineage config --local``; ``client``: the notebook's client)."""
    if local:
        return "%lineage config --local"
    if client is not None:
        return None
    tenant, problem = tenant_from_settings()
    if tenant is not None:
        return None
    return problem or _NO_TENANT


def kept_in_outbox(runs: Sequence[Any], kept: Optional[str]) -> str:
    """Where the undelivered events of ``runs`` are, why, and who sends them. ``kept``:
    :func:`why_kept`'s reason, when there is no tenant to send to (then a replay sends them,
    once one is set). With a tenant: the last error stored, and who sends them in the words
    of the process's own warnings (:func:`~atlan_ext._held.undelivered_note`): the kernel
    when Atlan answers, and after it exits a courier process; after an answer that a fixed
    setting alone changes, a replay once it is fixed; an event Atlan refused holds its run's
    later events (``atlan-lineage status`` shows why)."""
    if kept is not None:
        return f"kept in the outbox ({kept}); {_REPLAY}"
    verdicts = {verdict_on(run.run_id) for run in runs}
    verdict = next((each for each in (STOP, REFUSED) if each in verdicts), RETRY)
    why = _last_error(runs) or "no answer from Atlan yet"
    watch = f"; {_STATUS}" if verdict == RETRY else ""
    return f"kept in the outbox ({why}){undelivered_note(verdict)}{watch}"


def _last_error(runs: Sequence[Any]) -> Optional[str]:
    """The error last stored with a pending event of ``runs``, if any."""
    from atlan_ext.delivery import default_outbox

    try:
        outbox = default_outbox()
        stored = [item for run in runs for item in outbox.events(run.run_id)]
    except Exception:  # the outbox is a nicety here
        return None
    errors = [item.last_error for item in stored if item.status == "pending" and item.last_error]
    return errors[-1] if errors else None


class Summary:
    """One cell's summary: displayed now, then (``watch``) updated from a daemon thread once
    every event of the run is delivered, or when :data:`WATCH_SECONDS` pass, or when
    :meth:`conclude` asks."""

    def __init__(self, run: Any, kept: Optional[str], *, watch: bool = True) -> None:
        from IPython.display import display

        self.run = run
        self._kept = kept
        self._stop = threading.Event()
        self._final = False
        self.done = threading.Event()
        self.state = self._look()
        self._handle = display(summary_bundle(run, self.state), raw=True, display_id=watch or None)
        if not watch or self._settled():
            self.done.set()
            return
        start_thread(self._watch, "atlan-ext-summary")

    def _settled(self) -> bool:
        return self.state == "delivered" or self.state.startswith("kept in the outbox")

    def _look(self) -> str:
        """How delivery stands now, in words."""
        if self._kept is not None:
            return kept_in_outbox([self.run], self._kept)
        try:
            states = self.run.delivery()
        except Exception:  # the outbox is a nicety here
            states = {}
        delivered = [s for s in states.values() if s == "delivered"]
        if delivered and len(delivered) == len(states) >= len(self.run.history):
            return "delivered"
        if not self._final:
            return _SENDING
        if not states:
            return "not in the outbox (captured, or the outbox could not be read)"
        return kept_in_outbox([self.run], None)

    def _watch(self) -> None:
        deadline = time.monotonic() + WATCH_SECONDS
        pause = 0.05
        try:
            while True:
                if time.monotonic() >= deadline:
                    self._final = True
                state = self._look()
                if state != self.state:
                    self.state = state
                    self._handle.update(summary_bundle(self.run, state), raw=True)
                if self._settled():
                    return
                self._stop.wait(min(pause, max(deadline - time.monotonic(), 0.0)))
                self._stop.clear()
                pause = min(pause * 2, 1.0)
        except Exception:  # a closed kernel or outbox: the summary simply stays as it was
            return
        finally:
            self.done.set()

    def conclude(self, timeout: float) -> None:
        """Settle the summary now (delivered, or kept in the outbox and why) and show it again
        from this cell: an update the watcher sent between two cells may have reached no
        one (a runner such as nbclient listens only to the cell it runs). Waits up to
        ``timeout`` seconds for the watcher."""
        self._final = True
        self._stop.set()
        self.done.wait(timeout)
        if not self.done.is_set():
            self.state = self._look()
        if self._handle is not None:
            self._handle.update(summary_bundle(self.run, self.state), raw=True)
