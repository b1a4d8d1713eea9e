"""Starting the courier process, and knowing whether one works on an outbox.

A courier (:mod:`atlan_ext.courier`) is a detached process that delivers an outbox's pending
events. Step commands start one after storing their event; a script, ``wrap`` or a notebook
kernel starts one at exit for what it leaves undelivered. One courier per outbox and tenant:
it holds an exclusive lock on ``outbox.db.courier-<tenant hash>`` while it works.

``ATLAN_EXT_COURIER=off`` (or ``0``, ``no``, ``false``) starts none: undelivered events then
wait in the outbox for ``atlan-lineage replay``. Inside the testing kit none is started either
(it would send past the mock).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

from atlan_ext._pg_url import password_of
from atlan_ext._state import STATE
from atlan_ext.send import Tenant
from atlan_ext.stores import is_url, local_base, service_running

__all__ = ["allowed", "lock", "running", "spawn"]

log = logging.getLogger("atlan_ext")

_OFF = ("0", "off", "no", "false")


def allowed() -> bool:
    """True when this process may start couriers (not inside the testing kit, and not
    switched off with ``ATLAN_EXT_COURIER=off``)."""
    setting = os.environ.get("ATLAN_EXT_COURIER", "").strip().lower()
    return STATE.couriers and setting not in _OFF


def _lock_path(outbox_path: str, base_url: str) -> str:
    tenant = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return f"{local_base(outbox_path)}.courier-{tenant}"


@contextlib.contextmanager
def lock(outbox_path: str, base_url: str) -> Iterator[bool]:
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
    with lock(outbox_path, base_url) as free:
        return not free


def spawn(tenant: Tenant, outbox_path: str) -> bool:
    """Start a courier for ``outbox_path`` unless one is working on it (or couriers are not
    :func:`allowed`); True if one works on it now. Returns at once: the courier runs
    detached, in a session of its own, with the key (and the password of a PostgreSQL outbox
    given only in its URL, as ``PGPASSWORD``) in its environment (never on its command
    line), and writes what it does to ``courier.log`` beside the outbox."""
    if not allowed() or outbox_path == ":memory:":
        return False
    if running(outbox_path, tenant.base_url) or service_running(outbox_path):
        return True
    env: Dict[str, str] = dict(os.environ)
    env.update(
        ATLAN_BASE_URL=tenant.base_url,
        ATLAN_API_KEY=tenant.api_key,
        ATLAN_EXT_COURIER_OUTBOX=outbox_path,
        ATLAN_EXT_COURIER_TIMEOUT=repr(tenant.timeout),
    )
    password = password_of(outbox_path) if is_url(outbox_path) else None
    if password is not None:  # given only in the outbox's URL: for this child alone
        env["PGPASSWORD"] = password
    if is_url(outbox_path):  # a shared database: the log stays on this host
        log_path = Path(f"{local_base(outbox_path)}.courier.log")
        with contextlib.suppress(OSError):
            log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
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
