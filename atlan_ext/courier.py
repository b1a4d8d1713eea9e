"""The courier: one loop that delivers an outbox's pending events, as a detached process.

Step commands (``atlan-lineage start``, ``running``, ``complete``...) store their event and
return at once (no pyatlan import: that alone costs seconds); a script, ``wrap`` or a kernel
leaves at exit what it could not deliver. Either way a courier (:func:`atlan_ext._spawn.spawn`)
takes over: a detached process that imports pyatlan once and runs :func:`drain` — the same
loop ``atlan-lineage replay`` runs in the foreground — until the outbox has stayed empty for
:data:`LINGER_SECONDS` (so a shell pipeline's next step finds it still there), or for at most
:data:`LIFE_SECONDS` while Atlan does not answer.

One policy, the delivery thread's too (:mod:`atlan_ext._breaker`): oldest first, a run's
events in order (never a terminal before its START), Atlan's ``Retry-After`` honoured, else a
pause that doubles from 1 s to a minute while Atlan does not answer, and a stop at once on an
answer that only a fixed setting changes (a refused key, no OpenLineage connection, a wrong
URL). It never holds a terminal's signals and loses nothing if killed: its events stay in the
outbox and its leases end with it. Each change of state is one line in ``courier.log``
beside the outbox.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Set

from atlan_ext import _breaker
from atlan_ext._breaker import FIRST_PAUSE, Breaker, shared_pause
from atlan_ext._breaker import LAST_PAUSE as LAST_PAUSE  # where it was
from atlan_ext._spawn import lock
from atlan_ext._state import start_thread
from atlan_ext.outbox import Outbox
from atlan_ext.replay import replay
from atlan_ext.send import BATCH_LIMIT, Tenant, redact, shown_url
from atlan_ext.stores import SERVICE, open_shown

__all__ = ["LIFE_SECONDS", "LINGER_SECONDS", "Drained", "drain", "main", "serve"]

LINGER_SECONDS = 3.0  # an idle courier waits this long for the next step's event
LIFE_SECONDS = 3600.0  # and, while Atlan does not answer, keeps trying this long at most
_POLL_SECONDS = 0.1
#: While nothing is sendable, journals of processes gone since (a forked child killed after
#: this loop began) are taken in this often.
_RECOVER_EVERY = 1.0
#: After HTTP 429 without ``Retry-After``, with ``rate_limit``: every courier waits this long
#: (Atlan blocks programmatic calls for a minute).
TOO_MANY_PAUSE = _breaker.TOO_MANY_PAUSE


@dataclass
class Drained:
    """What :func:`drain` did: events delivered, and why it stopped early, if it did."""

    delivered: int = 0
    #: An answer only a fixed setting changes (nothing more was tried).
    fatal: Optional[str] = None
    #: The last failure that can pass, when the deadline came while Atlan did not answer.
    last_error: Optional[str] = None
    #: Events Atlan refused (e.g. HTTP 400): their runs wait in the outbox.
    refused: int = 0


def drain(
    client: Any,
    outbox: Outbox,
    *,
    seconds: float,
    linger: float = 0.0,
    batch_size: int = BATCH_LIMIT,
    limit: Optional[int] = None,
    say: Callable[[str], None] = lambda line: None,
    rate_limit: Optional[float] = None,
    stop: Optional[threading.Event] = None,
    poll: float = _POLL_SECONDS,
    breaker: Optional[Breaker] = None,
    skip_runs: Optional[Set[str]] = None,
) -> Drained:
    """Deliver ``outbox``'s pending events through ``client`` (pyatlan's ``AtlanClient``)
    until nothing sendable has been left for ``linger`` seconds, or ``seconds`` passed, or
    Atlan gave an answer only a fixed setting changes. ``say`` gets one line per change of
    state (Atlan stops or starts answering, the stop). ``limit``: at most this many events.

    A pause set on the outbox (:meth:`Outbox.pause_sending`, after a 429) is honoured.
    ``rate_limit``: requests a minute for all couriers sharing the outbox (one batch per
    request slot; a 429 then pauses them all, for its ``Retry-After`` or
    :data:`TOO_MANY_PAUSE`). ``stop``: when set, it returns after the
    batch in flight. ``poll``: how long it sleeps when nothing is sendable.

    ``breaker``: whose pauses it honours and keeps (the delivery thread of a process passes
    its own, so that its jobs see the tenant down while this loop waits; default: a new one).
    ``skip_runs``: runs left alone (an event of theirs was refused); runs refused here are
    added to it."""
    done = Drained()
    wait = stop.wait if stop is not None else time.sleep
    deadline = time.monotonic() + seconds
    idle_since = time.monotonic()
    breaker = breaker if breaker is not None else Breaker()
    # Runs with an event Atlan refused: left for a replay.
    refused: Set[str] = skip_runs if skip_runs is not None else set()
    recovered_at = time.monotonic()  # opening the outbox took in what was left until then
    while True:
        left = deadline - time.monotonic()
        wanted = None if limit is None else limit - done.delivered
        if left <= 0 or (wanted is not None and wanted <= 0) or (stop and stop.is_set()):
            return done
        ahead = breaker.wait_left()  # a pause set before this call (Retry-After) included
        if ahead > 0:
            wait(min(ahead, left))
            continue
        paused = outbox.paused_until() - time.time()
        if paused > 0:
            wait(min(paused, left))
            continue
        if rate_limit is not None:  # one batch per slot of the shared budget
            wanted = batch_size if wanted is None else min(wanted, batch_size)
            ahead = outbox.take_slot(60.0 / rate_limit) - time.time()
            if ahead > 0:
                wait(min(ahead, left))
            if stop and stop.is_set():
                return done
        report = replay(
            client,
            outbox,
            batch_size=batch_size,
            time_limit=left,
            limit=wanted,
            skip_runs=refused,
            stop=stop,
        )
        done.delivered += report.delivered
        error = report.last
        if report.fatal is not None:  # final: nothing more is tried
            if error is not None:
                breaker.failed(error)  # a shared breaker is final too
            done.fatal = report.fatal
            say(f"stopped: {report.fatal}")
            return done
        if report.down and error is not None:
            done.last_error = str(error)
            everyone = shared_pause(error, TOO_MANY_PAUSE) if rate_limit is not None else None
            if everyone is not None:
                # Atlan's per-tenant limit: every courier on the outbox waits it out.
                outbox.pause_sending(time.time() + everyone)
                say(f"Atlan answered 429: all sending paused for {everyone:g} s")
                continue
            if breaker.down is None:
                say(f"Atlan is not answering ({done.last_error}); trying again")
            breaker.failed(error)  # waited out at the top of the loop
            idle_since = time.monotonic()
            continue
        if breaker.down is not None:
            say("Atlan answers again")
        breaker.answered()
        done.last_error = None
        done.refused += report.failed
        if report.delivered or report.failed:
            idle_since = time.monotonic()
            continue
        # Nothing was sendable: all delivered, or leased by another sender for now.
        now = time.monotonic()
        if now - recovered_at >= _RECOVER_EVERY:
            recovered_at = now
            if outbox.recover():  # a process died since and left events in its journal
                idle_since = now
                continue
        if now - idle_since >= linger:
            return done
        wait(poll)


def _say(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(f"{stamp} atlan-lineage courier: {line}", file=sys.stderr, flush=True)


def main() -> int:
    """Entry point of the courier process (``python -m atlan_ext.courier``)."""
    from atlan_ext.send import tenant_from_settings

    path = os.environ.get("ATLAN_EXT_COURIER_OUTBOX", "")
    try:
        timeout = float(os.environ.get("ATLAN_EXT_COURIER_TIMEOUT", "10"))
    except ValueError:
        timeout = 10.0
    tenant, problem = tenant_from_settings(timeout=timeout)
    if tenant is None or not path:
        _say(f"nothing to do ({problem or 'no tenant'})")
        return 1
    try:
        return _work(tenant, path)
    except Exception as error:  # one line in the log, never a traceback
        _say(redact(f"{type(error).__name__}: {error}", [tenant.api_key]))
        return 1


_EMPTY_ROUNDS = 3  # rounds in a row that deliver nothing while more arrives, at most


def _work(tenant: Tenant, path: str) -> int:
    # A PostgreSQL URL comes without its password; ATLAN_EXT_OUTBOX (in the environment the
    # courier inherits, like the API key) may hold it.
    outbox = open_shown(path)
    where = shown_url(tenant.base_url)
    deadline = time.monotonic() + LIFE_SECONDS
    client = None
    looked_again = False
    empty_rounds = 0  # rounds in a row that delivered nothing
    while True:
        with lock(path, tenant.base_url) as mine:
            if not mine:
                return 0  # another courier works on it
            before = outbox.counts()[0]
            if client is None:
                _say(f"delivering {before} pending event(s) to {where}")
                client = tenant.client()
            done = drain(
                client,
                outbox,
                seconds=max(0.0, deadline - time.monotonic()),
                linger=LINGER_SECONDS,
                say=_say,
            )
        pending = outbox.counts()[0]
        if pending == 0:
            _say(f"all delivered ({done.delivered} this time)")
            return 0
        if done.fatal is not None or time.monotonic() >= deadline:
            _say(
                f"{pending} event(s) not delivered to {where}"
                f" ({done.fatal or done.last_error or 'no answer'}); they stay in {path}: "
                "send them with: atlan-lineage replay"
            )
            return 1
        # A step that stored an event while this courier held the lock left it to this
        # courier: more pending than when the round began is another round's work (a few
        # rounds: events that keep coming and cannot go, e.g. behind a refused one, do not
        # keep it here).
        idle = not done.delivered and pending <= before
        empty_rounds = 0 if done.delivered else empty_rounds + 1
        if (idle and looked_again) or empty_rounds > _EMPTY_ROUNDS:
            # What is left was refused, or another process sends it.
            _say(f"{pending} event(s) left pending: refused by Atlan, or sent by another process")
            return 0
        # Once more after a round that delivered nothing: a step may have stored an event
        # after this courier's last look, and found the lock taken.
        looked_again = idle
        # The lock is free: a step that stored an event just now may have found it taken.


def serve(
    tenant: Tenant,
    outbox: Outbox,
    *,
    rate_limit: float = 400.0,
    batch_size: int = BATCH_LIMIT,
    stop: Optional[threading.Event] = None,
    say: Callable[[str], None] = _say,
) -> int:
    """``atlan-lineage courier``: deliver ``outbox``'s events until ``stop`` is set (SIGTERM),
    at most ``rate_limit`` requests a minute for all couriers sharing the outbox; returns the
    exit status (0 when stopped, 1 on an answer only a fixed setting changes).

    It says it is alive on the outbox every few seconds, so workers on a shared outbox start
    no courier of their own while it runs; the outbox failing (a database restart) is waited
    out, never fatal."""
    from atlan_ext.exceptions import OutboxError

    stop = stop if stop is not None else threading.Event()
    halt = stop

    def beat() -> None:
        while not halt.is_set():
            with contextlib.suppress(OutboxError):  # said by the delivery loop
                outbox.beat(SERVICE)
            halt.wait(_BEAT_SECONDS)

    start_thread(beat, "atlan-ext-beat")
    say(f"serving {outbox.path} for {tenant.base_url}, at most {rate_limit:g} requests a minute")
    client = tenant.client()
    while not stop.is_set():
        try:
            done = drain(
                client,
                outbox,
                seconds=LIFE_SECONDS,
                linger=LIFE_SECONDS,
                say=say,
                batch_size=batch_size,
                rate_limit=rate_limit,
                stop=stop,
                poll=_SERVICE_POLL_SECONDS,
            )
        except OutboxError as error:
            say(f"the outbox cannot be used ({error}); trying again")
            while not stop.wait(FIRST_PAUSE):
                try:
                    # The batch in flight when it failed may still be leased to us: it is
                    # sent again (Atlan may have taken it: at least once).
                    outbox.release_mine()
                except OutboxError:
                    continue
                say("the outbox works again")
                break
            continue
        if done.fatal is not None:
            return 1
    say("stopped")
    return 0


_BEAT_SECONDS = 5.0
_SERVICE_POLL_SECONDS = 0.5


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
