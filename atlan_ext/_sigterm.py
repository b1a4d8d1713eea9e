"""SIGTERM: a scheduler's timeout or a pod eviction ends the open runs with ABORT.

While a run is open in the main thread and SIGTERM still has its default action, SIGTERM is
taken over: the handler stops all sending from the process, ends every open run that ends on a
signal (``ends_on_signal``) with ABORT, leaves what is unsent to the courier that takes over at
exit, and the process then dies of SIGTERM as it would have. The last run to end gives SIGTERM
its default action back; a handler the user installed is left alone.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import signal
import threading
import time
from typing import Any, Callable, List

from atlan_ext._state import STATE, defer_signal
from atlan_ext.delivery import holding, shutdown, stop_sending

__all__ = ["unwatch", "watch"]

log = logging.getLogger("atlan_ext")


def _c_getsignal() -> Callable[[int], Any]:
    # signal.getsignal answers through an Enum lookup that fails, raising and catching inside,
    # for every handler that is a function (ours): about a tenth of a background run's cold
    # cost when asked per run. The C function beneath it (CPython's _signal) gives the same
    # handler, with SIG_DFL as the plain 0 that equals signal.SIG_DFL.
    try:
        c_function: Callable[[int], Any] = importlib.import_module("_signal").getsignal
        return c_function
    except (ImportError, AttributeError):  # another interpreter
        return signal.getsignal


_getsignal = _c_getsignal()


def watch(run: Any) -> None:
    """Remember an open run; in the main thread, while SIGTERM still has its default action,
    take SIGTERM over so that it first ends the open runs (a user's own handler is left be)."""
    with STATE.lock:
        STATE.open_runs[id(run)] = run
    if threading.get_ident() != STATE.main:
        return
    try:
        # Asked every time, never remembered: a library may have set the default action
        # back meanwhile (asyncio's remove_signal_handler does, under nbclient or papermill).
        if _getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # no signals here (an embedded interpreter)
        return


def unwatch(run: Any) -> None:
    """Forget an ended run; the last one gives SIGTERM its default action back (when the
    main thread ends it: elsewhere our handler stays, and does what the default would).
    While the process still holds undelivered events (a background run's COMPLETE on its
    way), the handler stays too: with no run to end, it hands them to a courier and dies of
    SIGTERM, which the default action would do without handing anything over."""
    with STATE.lock:
        STATE.open_runs.pop(id(run), None)
        if STATE.open_runs:
            return
    if threading.get_ident() != STATE.main or holding():
        return
    try:
        if _getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):
        return


def _let_hand_overs_finish(runs: List[Any]) -> None:
    """Another thread may be between making an event of its run and handing it over (SHIELD
    holds the handler off only the main thread's): a bounded moment for it to finish, so
    that the event is among what is left to the courier. Before the handler ends any run
    itself (its own ``end`` calls would mark them making)."""
    deadline = time.monotonic() + _HAND_OVER_WAIT
    while any(run.making for run in runs) and time.monotonic() < deadline:
        time.sleep(0.001)  # the other thread runs meanwhile


_HAND_OVER_WAIT = 2.0  # seconds; a hand-over never waits for Atlan, only for the outbox


def _on_sigterm(number: int, frame: Any) -> None:
    """End every open run that ends on a signal with ABORT, keep what is unsent, then die of
    SIGTERM as the process would have (status 143, or -15 to its parent). Landing inside a
    section of ours that holds what this needs, it does so when that section ends (see
    ``SHIELD``)."""
    if defer_signal(functools.partial(_on_sigterm, number, frame)):
        return
    with STATE.lock:
        runs = list(STATE.open_runs.values())
        STATE.open_runs.clear()
    # Nothing more is sent from this process: the ABORTs are stored behind every event made
    # so far (a send this signal interrupted included), and the courier that takes over at
    # exit sends them all in the order they were made.
    stop_sending()
    _let_hand_overs_finish(runs)
    for run in runs:
        if run.ends_on_signal and run.state is not None:  # no START made: nothing to end
            try:
                run.end(-number)
            except Exception as error:  # dying anyway: say why lineage is missing
                log.warning("atlan_ext: ABORT of run %s not recorded: %s", run.run_id, error)
    shutdown(wait=False)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    # Still here: a process that ignores SIGTERM's default action (PID 1 of a container).
    # It was asked to stop, and sends nothing more: leave as SIGTERM's default would.
    os._exit(128 + number)
