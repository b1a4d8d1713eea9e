"""Process-wide state, all of it here: the one place that outlives a single run.

What lives here: clients built from the environment, the senders, the default outboxes, the
outboxes in which this process leases events,
the warnings already given, the capture lists of the testing kit, the runs still open
(for SIGTERM) and the main thread's shielded sections (:data:`SHIELD`). Every collection is
bounded or empties itself: senders leave when idle, runs leave when they end, remembered
warnings and clients are capped.

:func:`reset` forgets it all but the captures (they belong to their ``capture_lineage``
blocks); the testing kit and the tests call it between
tests. It never touches a file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

__all__ = [
    "SHIELD",
    "STATE",
    "State",
    "captured",
    "defer_signal",
    "pop_capture",
    "push_capture",
    "reset",
    "say_once",
    "start_thread",
]

log = logging.getLogger("atlan_ext")

#: How many warning keys are remembered ("said once") before the oldest are forgotten.
_SAID_LIMIT = 4096
#: How many clients built from the environment are kept (one per URL and key).
_ENV_CLIENT_LIMIT = 4


class State:
    """Everything atlan-ext keeps for the life of the process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.captures: List[List[Dict[str, Any]]] = []
        self.outboxes: Dict[Any, Any] = {}  # by path, and by the settings that name it
        self.claiming: Set[Any] = set()
        self.senders: Dict[Tuple[object, str, str], Any] = {}
        self.read_hooks: List[Any] = []  # called before each outbox read (never reset)
        self.exit_hooked = False  # delivery's exit and read hooks are registered (never reset)
        self.couriers = True  # step commands and the transport may start courier processes
        self.inherited: List[Any] = []  # a forked child keeps its parent's handles, unused
        self.journals: Dict[str, Any] = {}  # outbox path -> this process's hand-off journal
        self.outbox_trouble: Dict[str, float] = {}  # outbox path -> leave it alone until
        self.env_clients: OrderedDict[Tuple[object, ...], Any] = OrderedDict()
        self.said: OrderedDict[str, None] = OrderedDict()
        self.open_runs: Dict[int, Any] = {}
        self.main = threading.main_thread().ident  # where signal handlers run
        self.shielded = 0  # how deep the main thread is in shielded sections
        self.deferred: Optional[Callable[[], None]] = None  # a handler's work, for their end
        self.importing = 0  # threads importing pyatlan for a client now (see _forked)
        #: Why pyatlan cannot be imported in this process: it was forked while another thread
        #: imported it, and that thread's import locks stay held here, by nobody.
        self.unimportable: Optional[str] = None

    @contextlib.contextmanager
    def importing_pyatlan(self) -> Iterator[None]:
        """Around an import of pyatlan: a process forked meanwhile does not import it."""
        with self.lock:
            self.importing += 1
        try:
            yield
        finally:
            with self.lock:
                self.importing -= 1

    def env_client(self, key: Tuple[object, ...], build: Any) -> Any:
        """The client for ``key`` (URL, API key, ...), built once by ``build()``; at most a
        few are kept. The build (pyatlan's import: seconds) happens outside the lock."""
        with self.lock:
            client = self.env_clients.get(key)
            if client is not None:
                self.env_clients.move_to_end(key)
                return client
        client = build()
        with self.lock:
            client = self.env_clients.setdefault(key, client)  # another thread may have won
            while len(self.env_clients) > _ENV_CLIENT_LIMIT:
                self.env_clients.popitem(last=False)
            return client


STATE = State()


def say_once(key: str, message: str, *args: object) -> bool:
    """Log ``message`` as a warning unless ``key`` was said already; True if it was logged."""
    with STATE.lock:
        if key in STATE.said:
            return False
        STATE.said[key] = None
        while len(STATE.said) > _SAID_LIMIT:
            STATE.said.popitem(last=False)
    log.warning(message, *args)
    return True


class _Shield:
    """``with SHIELD:`` marks a section of atlan-ext's own code that holds what our SIGTERM
    handler needs (a journal or queue lock, an outbox transaction). On the main thread, where
    the handler runs, a handler that lands inside such a section would wait for it forever
    (or find the transaction half done): it is deferred (:func:`defer_signal`) to the end of
    the outermost section instead. Sections are short and never wait for Atlan."""

    __slots__ = ()

    def __enter__(self) -> None:
        if threading.get_ident() == STATE.main:
            STATE.shielded += 1

    def __exit__(self, *exc: object) -> None:
        if threading.get_ident() == STATE.main:
            STATE.shielded -= 1
            if STATE.shielded == 0 and STATE.deferred is not None:
                work, STATE.deferred = STATE.deferred, None
                work()


SHIELD = _Shield()


def defer_signal(work: Callable[[], None]) -> bool:
    """In a signal handler: when it interrupted a shielded section, keep ``work`` for the
    section's end and return True; otherwise return False (do the work now)."""
    if STATE.shielded:
        STATE.deferred = work
        return True
    return False


def reset() -> None:
    """Forget everything above but the captures, which belong to their ``capture_lineage``
    blocks (the testing kit and the tests call this between tests).

    Senders still working finish their current batch on their own; nothing is written.
    """
    with STATE.lock:
        _forget_handles()  # shutdown() closed the journals; the next run opens its own
        STATE.said.clear()


def _forget_handles() -> None:
    """What ties this process to outboxes, senders and clients, forgotten (the next run
    opens or builds its own)."""
    STATE.outboxes.clear()
    STATE.claiming.clear()
    STATE.senders.clear()
    STATE.journals.clear()
    STATE.outbox_trouble.clear()
    STATE.env_clients.clear()
    STATE.open_runs.clear()


def _forked() -> None:
    """In a forked child (Airflow's task runner, multiprocessing): the parent's threads are
    gone and its locks may be held forever, so nothing of theirs is used again. The parent's
    outbox connections, clients (their sockets) and journals are kept from being closed or
    used here (SQLite forbids it); the child opens its own as needed."""
    STATE.lock = threading.RLock()
    STATE.main = threading.get_ident()  # the thread that forked is the child's main thread
    STATE.shielded, STATE.deferred = 0, None
    STATE.inherited.extend(
        [*STATE.outboxes.values(), *STATE.env_clients.values(), *STATE.journals.values()]
    )
    _forget_handles()
    half = _half_imported()
    if STATE.importing or half is not None:
        # An import here would wait forever for the parent thread's module lock, or get a
        # half-made module: the events wait for a process of their own (a courier).
        STATE.unimportable = half or "pyatlan"
    STATE.importing = 0


def _half_imported() -> Optional[str]:
    """A module of pyatlan that another thread was still importing when this process was
    forked, if any."""
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if name.split(".")[0] == "pyatlan" and getattr(spec, "_initializing", False):
            return name
    return None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


# -- capture (the testing kit swaps a list in here) ----------------------------------------------


def push_capture(events: List[Dict[str, Any]]) -> None:
    """Capture every event made from now on into ``events`` instead of storing or sending it."""
    with STATE.lock:
        STATE.captures.append(events)


def pop_capture(events: List[Dict[str, Any]]) -> None:
    """Stop capturing into ``events``."""
    with STATE.lock:
        STATE.captures.remove(events)


def captured(event: Dict[str, Any]) -> bool:
    """True when ``event`` went into the innermost capture (nothing else is done with it)."""
    with STATE.lock:
        if not STATE.captures:
            return False
        STATE.captures[-1].append(event)
        return True


_SIGNALS = frozenset(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name)
)


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread of ours that never receives SIGTERM or SIGINT: the kernel may
    hand a process-wide signal to any thread that does not block it, and one handed to ours
    would leave the main thread asleep (in ``time.sleep``, say) until its sleep ends, its
    handler not run (seen: a worker that slept on after SIGTERM)."""

    def quiet() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        target()

    thread = threading.Thread(target=quiet, name=name, daemon=True)
    thread.start()
    return thread
