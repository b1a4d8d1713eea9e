"""Choosing the outbox: a SQLite file (the default) or a PostgreSQL database a fleet shares.

``ATLAN_EXT_OUTBOX`` (and the ``outbox=`` argument, ``--outbox`` option and the transport's
``outbox`` setting) takes a path or a ``postgresql://user@host:port/db`` URL. The password
comes from the URL, ``PGPASSWORD`` or ``~/.pgpass``, and is never shown: an outbox's
``path`` is the URL without it. psycopg 3 (``pip install 'atlan-ext[postgres]'``) is imported
only when such a URL is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from atlan_ext._pg_url import is_url, redacted
from atlan_ext.outbox import Outbox, default_path

__all__ = [
    "SERVICE",
    "is_url",
    "local_base",
    "open_outbox",
    "open_shown",
    "outbox_setting",
    "redacted",
    "service_running",
]

#: The name a courier service beats under (:meth:`Outbox.beat`), and how recent a beat
#: must be for workers to leave delivery to it.
SERVICE = "courier-service"
SERVICE_FRESH_SECONDS = 30.0


def outbox_setting() -> str:
    """Where the outbox is: ``ATLAN_EXT_OUTBOX`` (a path or a PostgreSQL URL), else
    :func:`atlan_ext.outbox.default_path`."""
    setting = os.environ.get("ATLAN_EXT_OUTBOX", "").strip()
    if not setting:
        return str(default_path())
    return setting if is_url(setting) else str(Path(setting).expanduser())


def open_outbox(target: Union[str, os.PathLike[str], None] = None) -> Outbox:
    """Open the outbox at ``target`` (a path, ``":memory:"`` or a PostgreSQL URL; default:
    :func:`outbox_setting`). Raises :class:`~atlan_ext.exceptions.OutboxError` when it cannot
    be used, :class:`~atlan_ext.exceptions.MissingDependencyError` naming the extra when the
    URL needs psycopg and it is not installed."""
    where = outbox_setting() if target is None else target
    if is_url(where):
        # Loaded only for a URL: a SQLite outbox's processes (couriers among them) skip it.
        from atlan_ext._postgres import PostgresOutbox

        return PostgresOutbox(str(where))
    return Outbox(where)


def open_shown(path: str) -> Outbox:
    """Open an outbox named as shown (a PostgreSQL URL without its password): the password
    of ``ATLAN_EXT_OUTBOX``, when it names the same database, is used."""
    setting = os.environ.get("ATLAN_EXT_OUTBOX", "").strip()
    return open_outbox(setting if setting and redacted(setting) == path else path)


def service_running(outbox_path: str) -> bool:
    """True when a courier service (``atlan-lineage courier``) works on this shared outbox:
    workers then start no courier of their own. Never raises."""
    import time

    if not is_url(outbox_path):
        return False
    try:
        outbox = open_shown(outbox_path)
    except Exception:  # cannot tell: a courier of our own is the safe side
        return False
    try:
        return time.time() - outbox.last_beat(SERVICE) < SERVICE_FRESH_SECONDS
    except Exception:
        return False
    finally:
        outbox.close()


def local_base(outbox_path: str) -> str:
    """A path on this host for an outbox's lock files and ``courier.log``: the file itself
    for SQLite; for a (redacted) PostgreSQL URL, a name in the local outbox folder."""
    if is_url(outbox_path):
        import hashlib

        key = hashlib.sha256(redacted(outbox_path).encode()).hexdigest()[:12]
        return str(default_path().parent / f"postgres-{key}")
    return outbox_path
