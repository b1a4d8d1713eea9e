"""Checked submission through pyatlan: a send counts only when Atlan answered 202.

pyatlan's ``client.open_lineage.send()`` returns ``None`` both on success and when its retries
end on HTTP 503, so the event is silently lost. We watch the final status of every lineage
POST with an httpx response hook on the client's own session, and turn every way a send can go
wrong into one of three typed errors: :class:`LineageNotConfiguredError`,
:class:`LineageAuthenticationError` or :class:`LineageDeliveryError`. No message carries a token.

pyatlan's client is imported only here, and only when a send happens.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from atlan_ext._state import STATE
from atlan_ext.exceptions import (
    AtlanExtError,
    LineageAuthenticationError,
    LineageDeliveryError,
    LineageNotConfiguredError,
    TenantSettingsError,
    UnsupportedConnectorError,
)

__all__ = [
    "BATCH_LIMIT",
    "NO_TENANT",
    "SUPPORTED_CONNECTORS",
    "Tenant",
    "client_from_env",
    "connector_value",
    "is_async_client",
    "longest_send",
    "redact",
    "secrets_of",
    "tenant_from_settings",
    "tenant_wide",
]

#: The connector types that have an Atlan OpenLineage endpoint, by pyatlan's enum value.
SUPPORTED_CONNECTORS = (
    "spark",
    "airflow",
    "airflow-astronomer",
    "airflow-mwaa",
    "airflow-cloud-composer",
    "generic-openlineage",
)

#: Events in one POST, at most.
BATCH_LIMIT = 100

_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_ACCEPTED = 202
_LINEAGE_PATH = "/events/openlineage/"
_NOT_CONFIGURED_ID = "ATLAN-PYTHON-400-064"

# The final statuses of the lineage POSTs made while a send is under way in this context.
_observed: contextvars.ContextVar[Optional[List[int]]] = contextvars.ContextVar(
    "atlan_ext_observed_statuses", default=None
)


def connector_value(connector: object) -> str:
    """The connector's value (``"spark"``, ...) from an ``AtlanConnectorType`` or a string.

    Raises :class:`UnsupportedConnectorError` for a connector without an OpenLineage endpoint.
    """
    raw = getattr(connector, "value", connector)
    if isinstance(raw, tuple):  # AtlanConnectorType members are (value, category) tuples
        raw = raw[0]
    if isinstance(raw, str):
        key = raw.strip().lower().replace("_", "-")
        if key in SUPPORTED_CONNECTORS:
            return key
    raise UnsupportedConnectorError(
        f"{connector!r} has no Atlan OpenLineage endpoint; use one of "
        f"{', '.join(SUPPORTED_CONNECTORS)} (AtlanConnectorType.SPARK, ...)"
    )


@functools.cache
def _pyatlan_connector(value: str) -> Any:
    from pyatlan.model.enums import AtlanConnectorType

    for member in AtlanConnectorType:
        if member.value == value:
            return member
    raise UnsupportedConnectorError(f"the installed pyatlan has no connector type {value!r}")


def is_async_client(client: object) -> bool:
    """True for pyatlan's ``AsyncAtlanClient`` (without importing it)."""
    return hasattr(client, "_async_session")


def _observe(response: Any) -> None:
    box = _observed.get()
    if box is not None and _LINEAGE_PATH in response.request.url.path:
        box.append(response.status_code)


def _install_hook(client: Any) -> None:
    """Make sure the client's httpx session reports each lineage response's final status."""
    session: Any = getattr(client, "_session", None)
    hooks = getattr(session, "event_hooks", None)
    if not isinstance(hooks, dict):
        raise AtlanExtError(
            f"cannot check delivery through {type(client).__name__}: expected pyatlan's AtlanClient"
        )
    responses = hooks.setdefault("response", [])
    if _observe not in responses:
        responses.append(_observe)
        session.event_hooks = hooks


def secrets_of(client: Any) -> List[str]:
    """The API keys that must never be shown: the client's (or tenant's) and the environment's."""
    found = [getattr(client, "api_key", None), os.environ.get("ATLAN_API_KEY")]
    return [value for value in found if isinstance(value, str) and len(value) >= 4]


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _classify(error: BaseException, connector: str, client: Any) -> LineageDeliveryError:
    """One typed, token-free error for anything pyatlan or httpx raised."""
    secrets = secrets_of(client)
    error_code = getattr(error, "error_code", None)
    status = getattr(error_code, "http_error_code", None)
    if getattr(error_code, "error_id", None) == _NOT_CONFIGURED_ID:
        return LineageNotConfiguredError(
            f"Atlan has no OpenLineage connection for connector {connector!r}: create one, "
            f"e.g. client.open_lineage.create_connection(name=..., "
            f"connector_type=AtlanConnectorType.{connector.upper().replace('-', '_')}), "
            "then send again (atlan-lineage replay)",
            status=401,
            retryable=False,
        )
    detail = redact(str(error).strip().splitlines()[0] if str(error).strip() else "", secrets)
    detail = detail[:300]
    if isinstance(status, int):
        if status in (401, 403):
            return LineageAuthenticationError(
                f"Atlan refused the API token (HTTP {status}): check ATLAN_API_KEY and that "
                f"its user may send lineage. {detail}".strip(),
                status=status,
                retryable=False,
            )
        return LineageDeliveryError(
            f"Atlan did not accept the event (HTTP {status}): {detail}".strip(),
            status=status,
            retryable=status in _RETRYABLE,
        )
    name = type(error).__name__
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return LineageDeliveryError(
            f"timed out waiting for Atlan ({name}){': ' + detail if detail else ''}",
            status=None,
            retryable=True,
        )
    if isinstance(error, httpx.ConnectError):
        return LineageDeliveryError(
            f"could not connect to Atlan, connection refused or no route ({name})"
            f"{': ' + detail if detail else ''}",
            status=None,
            retryable=True,
        )
    if isinstance(error, httpx.HTTPError):
        return LineageDeliveryError(
            f"could not reach Atlan ({name}): {detail or 'no answer'}",
            status=None,
            retryable=True,
        )
    return LineageDeliveryError(
        f"pyatlan could not send the event ({name}): {detail}", status=None, retryable=False
    )


def _check_final(box: List[int], connector: str) -> None:
    final = box[-1] if box else None
    if final == _ACCEPTED:
        return
    if final is None:
        raise LineageDeliveryError(
            "pyatlan made no request for the event, so it was not delivered",
            status=None,
            retryable=True,
        )
    raise LineageDeliveryError(
        f"Atlan answered HTTP {final} to the {connector} lineage endpoint after pyatlan's "
        "retries (pyatlan itself reports nothing), so the event was not delivered",
        status=final,
        retryable=final in _RETRYABLE,
    )


def tenant_wide(error: LineageDeliveryError) -> bool:
    """True for an answer that no event of this tenant (and connector) will get otherwise
    until someone fixes a setting: the key refused, no OpenLineage connection, no such
    endpoint (a wrong base URL), a client that cannot be built. Nothing is tried again, one
    by one or later, after such an answer; the events wait in the outbox for the fix."""
    return isinstance(
        error, (LineageAuthenticationError, LineageNotConfiguredError, TenantSettingsError)
    ) or error.status in (404, 405)


def _payload(events: Sequence[Dict[str, Any]]) -> Any:
    return events[0] if len(events) == 1 else list(events)


def send_checked(client: Any, events: Sequence[Dict[str, Any]], connector: str) -> None:
    """Send ``events`` (one POST) with a sync ``AtlanClient``; return only when Atlan
    answered 202, else raise a :class:`LineageDeliveryError`."""
    _install_hook(client)
    box: List[int] = []
    token = _observed.set(box)
    failure: Optional[LineageDeliveryError] = None
    try:
        client.open_lineage.send(_payload(events), connector_type=_pyatlan_connector(connector))
    except Exception as error:
        failure = _classify(error, connector, client)
    finally:
        _observed.reset(token)
    if failure is not None:  # raised here, so pyatlan's unredacted error is not its context
        raise failure
    _check_final(box, connector)


def _shown_url(url: str) -> str:
    """``url`` for a message: any ``user:password@`` part hidden."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2], 1)
    return url


def url_problem(url: str, name: str = "ATLAN_BASE_URL") -> Optional[str]:
    """Why ``url`` cannot be a tenant's address, or ``None`` when it can."""
    shown = _shown_url(url)
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
        status_forcelist=sorted(_RETRYABLE),
        allowed_methods=["POST", "GET"],
        respect_retry_after_header=True,
        max_backoff_wait=pause,  # one retry: one pause (total_timeout is not in every version)
    )


def longest_send(client: Any) -> Optional[float]:
    """The longest one send through a sync ``client`` can take, in seconds, read from its
    public settings (connect and read timeouts, and pyatlan's retry policy: attempts and the
    sleeps between them), or ``None`` when they set no bound this can read.

    Not covered, as pyatlan's timeouts do not cover them: a name lookup for a new connection,
    and a write the server stops reading. A caller that relies on the bound sends only over a
    connection in use moments ago, and only small events."""
    connect = _seconds(getattr(client, "connect_timeout", None))
    read = _seconds(getattr(client, "read_timeout", None))
    retry = getattr(client, "retry", None)
    kind = type(retry)
    if connect is None or read is None:
        return None
    if kind.__name__ != "Retry" or kind.__module__.split(".")[0] != "httpx_retries":
        return None  # a policy of another kind may sleep as it likes
    total = getattr(retry, "total", None)
    each = _seconds(getattr(retry, "max_backoff_wait", None))
    if not isinstance(total, int) or total < 0 or each is None:
        return None
    sleeps = total * each
    cap = _seconds(getattr(retry, "total_timeout", None))
    if cap is not None:
        sleeps = min(sleeps, cap)
    return (total + 1) * (connect + read) + sleeps


def _seconds(value: object) -> Optional[float]:
    """``value`` as a positive, finite number of seconds, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


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
        failure: Optional[TenantSettingsError] = None
        try:
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
                f"{_shown_url(self.base_url)!r} ({type(error).__name__}: {detail[:200]}): set "
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
