"""The courier: a short-lived process that delivers what the step commands stored.

``atlan-lineage start``, ``running``, ``complete``... store their event in the outbox and
return at once (no pyatlan import: that alone costs seconds). Before returning they make sure
a courier runs: a detached process that imports pyatlan once, sends the outbox's pending
events through pyatlan's ``AtlanClient`` (the same checked path and order as ``replay``),
and exits once the outbox has stayed empty for :data:`LINGER_SECONDS` — so a shell
pipeline's next step finds it still there — or after :data:`LIFE_SECONDS` at most.

- One courier per outbox and tenant: it holds an exclusive lock on
  ``outbox.db.courier-<tenant hash>`` while it works.
  A step that finds the lock taken leaves its event to that courier, which looks once more
  after letting go of the lock (so an event stored at that moment is not left behind).
- It never holds a terminal's signals (a session of its own, no terminal) and loses nothing
  if killed: its events stay in the outbox, and its leases end with it.
- Its messages (what it could not deliver) go to ``courier.log`` beside the outbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from atlan_ext._state import STATE
from atlan_ext.outbox import Outbox
from atlan_ext.replay import replay
from atlan_ext.send import Tenant, redact

__all__ = ["LIFE_SECONDS", "LINGER_SECONDS", "main", "spawn"]

LINGER_SECONDS = 3.0  # an idle courier waits this long for the next step's event
LIFE_SECONDS = 120.0  # and never lives longer than this
_DOWN_PAUSE = 2.0  # after a failed batch, before the next try
_POLL_SECONDS = 0.1

log = logging.getLogger("atlan_ext")


def _lock_path(outbox_path: str, base_url: str) -> str:
    tenant = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return f"{outbox_path}.courier-{tenant}"


@contextlib.contextmanager
def _lock(outbox_path: str, base_url: str) -> Iterator[bool]:
    """The lock of the courier of this outbox and tenant, taken without waiting: yields True
    if this process holds it. (Couriers of two tenants may share an outbox: leases keep them
    from sending one event at the same time.)"""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; leases still keep two couriers apart
        yield True
        return
    try:
        handle = os.open(_lock_path(outbox_path, base_url), os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def running(outbox_path: str, base_url: str) -> bool:
    """True while a courier works on this outbox for this tenant."""
    with _lock(outbox_path, base_url) as free:
        return not free


def spawn(tenant: Tenant, outbox_path: str) -> bool:
    """Start a courier for ``outbox_path`` unless one is working on it; True if started.
    Returns at once: the courier runs detached, in a session of its own. Inside the testing
    kit's ``MockAtlan`` none is started (it would send past the mock)."""
    if not STATE.couriers or outbox_path == ":memory:" or running(outbox_path, tenant.base_url):
        return False
    env: Dict[str, str] = dict(os.environ)
    env.update(
        ATLAN_BASE_URL=tenant.base_url,
        ATLAN_API_KEY=tenant.api_key,  # in its environment, never on its command line
        ATLAN_EXT_COURIER_OUTBOX=outbox_path,
        ATLAN_EXT_COURIER_TIMEOUT=repr(tenant.timeout),
    )
    log_path = Path(outbox_path).with_name("courier.log")
    try:
        log_file = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        log_file = os.open(os.devnull, os.O_WRONLY)
    try:
        kwargs: Dict[str, Any] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # no terminal, no signals meant for the job
        else:  # pragma: no cover - Windows
            kwargs["creationflags"] = getattr(subprocess, "DETACHED_PROCESS", 0)
        subprocess.Popen(
            [sys.executable, "-m", "atlan_ext.courier"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            close_fds=True,
            **kwargs,
        )
    except OSError as error:
        log.warning(
            "atlan_ext: cannot start the courier that delivers lineage (%s); the events are in "
            "%s: send them with: atlan-lineage replay",
            error,
            outbox_path,
        )
        return False
    finally:
        os.close(log_file)
    return True


def deliver(tenant: Tenant, outbox: Outbox, life: float = LIFE_SECONDS) -> bool:
    """The courier's work: send pending events until the outbox has stayed empty for
    :data:`LINGER_SECONDS` (returns True), or ``life`` seconds passed (False)."""
    client = tenant.client()
    deadline = time.monotonic() + life
    idle_since = time.monotonic()
    last_error: Optional[str] = None
    while time.monotonic() < deadline:
        if outbox.counts()[0] == 0:
            if time.monotonic() - idle_since >= LINGER_SECONDS:
                return True
            time.sleep(_POLL_SECONDS)
            continue
        report = replay(client, outbox, time_limit=max(0.1, deadline - time.monotonic()))
        if report.errors:
            last_error = report.errors[-1]
            time.sleep(_DOWN_PAUSE)
        elif report.delivered == 0:
            time.sleep(_POLL_SECONDS)  # what is pending is leased elsewhere
        idle_since = time.monotonic()
    pending = outbox.counts()[0]
    if pending:
        print(
            f"atlan-lineage courier: {pending} event(s) not delivered to {tenant.base_url}"
            f"{f' ({last_error})' if last_error else ''}; send them with: atlan-lineage replay",
            file=sys.stderr,
        )
    return False


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
        print(f"atlan-lineage courier: nothing to do ({problem or 'no tenant'})", file=sys.stderr)
        return 1
    outbox = Outbox(path)
    deadline = time.monotonic() + LIFE_SECONDS
    while True:
        with _lock(path, tenant.base_url) as mine:
            if not mine:
                return 0  # another courier works on it
            try:
                idle = deliver(tenant, outbox, max(0.0, deadline - time.monotonic()))
            except Exception as error:  # one line in the log, never a traceback
                text = redact(f"{type(error).__name__}: {error}", [tenant.api_key])
                print(f"atlan-lineage courier: {text}", file=sys.stderr)
                return 1
        # The lock is free: a step that stored an event just now may have found it taken.
        if not idle or outbox.counts()[0] == 0:
            return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
