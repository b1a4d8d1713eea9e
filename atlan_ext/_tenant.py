"""A tenant named by settings, and its pyatlan client: URL and key checked without importing
pyatlan, the client built once per process (off the job's thread) with timeouts and a retry
policy that fit ``delivery_timeout``; and the helpers that keep the key and a URL's password
out of every message. Public through :mod:`atlan_ext.send`."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from atlan_ext._state import STATE
from atlan_ext.exceptions import LineageDeliveryError, TenantSettingsError

__all__ = [
    "NO_TENANT",
    "RETRY_STATUSES",
    "Tenant",
    "client_from_env",
    "label",
    "redact",
    "shown_url",
    "tenant_from_settings",
    "tenant_of",
    "url_problem",
]

#: The statuses a failure that can pass answers with: retried once by the client, and later.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def shown_url(url: str) -> str:
    """``url`` for a message: any ``user:password@`` part hidden."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2], 1)
    return url


def url_problem(url: str, name: str = "ATLAN_BASE_URL") -> Optional[str]:
    """Why ``url`` cannot be a tenant's address, or ``None`` when it can."""
    shown = shown_url(url)
    fix = f"set {name} to your tenant's address, e.g. https://your-tenant.atlan.com"
    if url != url.strip() or any(char.isspace() for char in url):
        return f"{name} {shown!r} contains spaces: {fix}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{name} {shown!r} is not an http(s) URL: {fix}"
    try:
        parts.port  # noqa: B018 - it raises for a port that is not a number in range
    except ValueError:
        return f"{name} {shown!r} has an invalid port: {fix}"
    if parts.netloc.endswith(":"):
        return f"{name} {shown!r} has an empty port: {fix}"
    return None


def _client_timeouts(timeout: float) -> Tuple[float, float, float]:
    """``(connect, read, pause)`` for the tenant's client: two attempts and the pause between
    them fit ``timeout`` in all (:func:`longest_send` of the client is ``timeout``), so the
    job may send on its own thread. Longer waits are the delivery thread's: it tries again
    itself, after a pause that grows."""
    pause = min(1.0, timeout / 10)
    attempt = (timeout - pause) / 2
    connect = min(attempt / 4, 5.0)
    return connect, attempt - connect, pause


def _retry_policy(pause: float) -> Any:
    """One quick retry of a failure that can pass (honouring ``Retry-After`` up to
    ``pause``), never of 401/403, so a bad key is reported at once."""
    from httpx_retries import Retry

    return Retry(
        total=1,
        backoff_factor=pause / 2,
        status_forcelist=sorted(RETRY_STATUSES),
        allowed_methods=["POST", "GET"],
        respect_retry_after_header=True,
        max_backoff_wait=pause,  # one retry: one pause (total_timeout is not in every version)
    )


@dataclass(frozen=True)
class Tenant:
    """An Atlan tenant named by settings (URL and API key). Its pyatlan client is built on
    first use, by :meth:`client`, which the delivery thread calls: pyatlan's import (seconds)
    never holds the job. The key never shows in a repr or a message."""

    base_url: str
    api_key: str = field(repr=False)
    timeout: float = 10.0

    def client(self) -> Any:
        """The pyatlan ``AtlanClient`` for this tenant (built once per process)."""
        return STATE.env_client((self.base_url, self.api_key, self.timeout), self._build)

    def _build(self) -> Any:
        if STATE.unimportable is not None:
            raise LineageDeliveryError(
                "pyatlan cannot be imported in this process: it was forked while another "
                f"thread was importing it ({STATE.unimportable}); a courier process sends "
                "these events",
                retryable=True,
            )
        failure: Optional[TenantSettingsError] = None
        try:
            with STATE.importing_pyatlan():
                from pyatlan.client.atlan import AtlanClient

            connect, read, pause = _client_timeouts(self.timeout)
            return AtlanClient(  # type: ignore[no-untyped-call]
                base_url=self.base_url,
                api_key=self.api_key,
                connect_timeout=connect,
                read_timeout=read,
                retry=_retry_policy(pause),
            )
        except Exception as error:
            detail = redact(
                str(error).strip().splitlines()[0] if str(error).strip() else "", [self.api_key]
            )
            failure = TenantSettingsError(
                f"pyatlan cannot make a client for ATLAN_BASE_URL "
                f"{shown_url(self.base_url)!r} ({type(error).__name__}: {detail[:200]}): set "
                "ATLAN_BASE_URL to your tenant's address, e.g. https://your-tenant.atlan.com",
                retryable=False,
            )
        raise failure


#: What is said when neither ``ATLAN_BASE_URL`` nor ``ATLAN_API_KEY`` is set.
NO_TENANT = (
    "no Atlan tenant configured (set ATLAN_BASE_URL and ATLAN_API_KEY to send lineage to Atlan)"
)


def tenant_from_settings(
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
    timeout: float = 10.0,
    *,
    url_name: str = "ATLAN_BASE_URL",
    key_name: str = "ATLAN_API_KEY",
) -> Tuple[Optional[Tenant], Optional[str]]:
    """The tenant the settings name (the arguments, else ``ATLAN_BASE_URL`` and
    ``ATLAN_API_KEY``), with no import of pyatlan: ``(tenant, None)``; ``(None, None)`` when
    nothing is configured; ``(None, problem)`` naming each setting that is missing or wrong."""
    url = base_url or os.environ.get("ATLAN_BASE_URL") or ""
    key = api_key or os.environ.get("ATLAN_API_KEY") or ""
    if not url and not key:
        return None, None
    return _tenant(url, key, timeout, url_name, key_name)


@functools.lru_cache(maxsize=16)  # settings rarely change: each run asks again, cheaply
def _tenant(
    url: str, key: str, timeout: float, url_name: str, key_name: str
) -> Tuple[Optional[Tenant], Optional[str]]:
    if not url:
        return None, f"{key_name} is set but {url_name} is not: set {url_name} too"
    problem = url_problem(url, url_name)
    if problem is None and not key.strip():
        problem = f"{url_name} is set but {key_name} is not: set {key_name} to an API token"
    if problem is not None:
        return None, problem
    if not math.isfinite(timeout) or timeout <= 0:
        timeout = 10.0
    return Tenant(url, key.strip(), float(timeout)), None


def client_from_env(base_url: Optional[str] = None, api_key: Optional[str] = None) -> Any:
    """An ``AtlanClient`` from ``ATLAN_BASE_URL`` and ``ATLAN_API_KEY`` (or the arguments),
    or ``None`` when no tenant is configured. Imports pyatlan (seconds): the library itself
    builds clients with :class:`Tenant`, off the job's thread."""
    tenant, problem = tenant_from_settings(base_url, api_key)
    if problem is not None:
        raise TenantSettingsError(problem, retryable=False)
    return None if tenant is None else tenant.client()


def tenant_of(target: Any, timeout: float = 10.0) -> Optional[Tenant]:
    """The tenant a courier process (or a sync client of ours) can reach for ``target``: a
    :class:`Tenant`, or the URL and key of a pyatlan client (in a courier's environment, never
    shown)."""
    if isinstance(target, Tenant):
        return target
    url, key = getattr(target, "base_url", None), getattr(target, "api_key", None)
    if isinstance(url, str) and url and isinstance(key, str) and key:
        return Tenant(url, key, timeout)
    return None


def label(target: Any) -> str:
    """The tenant, for messages: its URL (never its key, nor a password in the URL)."""
    url = getattr(target, "base_url", None)
    return shown_url(str(url)) if url else type(target).__name__


# -- the sender thread of a sync client ------------------------------------------------------
