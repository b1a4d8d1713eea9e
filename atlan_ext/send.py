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
import os
from typing import Any, Dict, List, Optional, Sequence

from atlan_ext.exceptions import (
    AtlanExtError,
    LineageAuthenticationError,
    LineageDeliveryError,
    LineageNotConfiguredError,
    UnsupportedConnectorError,
)

__all__ = ["SUPPORTED_CONNECTORS", "client_from_env", "connector_value", "is_async_client"]

#: The connector types that have an Atlan OpenLineage endpoint, by pyatlan's enum value.
SUPPORTED_CONNECTORS = (
    "spark",
    "airflow",
    "airflow-astronomer",
    "airflow-mwaa",
    "airflow-cloud-composer",
    "generic-openlineage",
)

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


async def _observe_async(response: Any) -> None:
    _observe(response)


def _install_hook(client: Any) -> None:
    """Make sure the client's httpx session reports each lineage response's final status."""
    hook: Any = _observe_async if is_async_client(client) else _observe
    session: Any = getattr(
        client, "_async_session" if is_async_client(client) else "_session", None
    )
    hooks = getattr(session, "event_hooks", None)
    if not isinstance(hooks, dict):
        raise AtlanExtError(
            f"cannot check delivery through {type(client).__name__}: expected pyatlan's "
            "AtlanClient or AsyncAtlanClient"
        )
    responses = hooks.setdefault("response", [])
    if hook not in responses:
        responses.append(hook)
        session.event_hooks = hooks


def _secrets_of(client: Any) -> List[str]:
    found = [getattr(client, "api_key", None), os.environ.get("ATLAN_API_KEY")]
    return [value for value in found if isinstance(value, str) and len(value) >= 4]


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _classify(error: BaseException, connector: str, client: Any) -> LineageDeliveryError:
    """One typed, token-free error for anything pyatlan or httpx raised."""
    secrets = _secrets_of(client)
    error_code = getattr(error, "error_code", None)
    status = getattr(error_code, "http_error_code", None)
    if getattr(error_code, "error_id", None) == _NOT_CONFIGURED_ID:
        return LineageNotConfiguredError(
            f"Atlan has no OpenLineage connection for connector {connector!r}: create one, "
            f"e.g. client.open_lineage.create_connection(name=..., "
            f"connector_type=AtlanConnectorType.{connector.upper().replace('-', '_')}), "
            "then send again (atlan-lineage replay)",
            status=401,
            retryable=True,
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


def _payload(events: Sequence[Dict[str, Any]]) -> Any:
    return events[0] if len(events) == 1 else list(events)


def send_checked(client: Any, events: Sequence[Dict[str, Any]], connector: str) -> None:
    """Send ``events`` (one POST) with a sync ``AtlanClient``; return only when Atlan
    answered 202, else raise a :class:`LineageDeliveryError`."""
    _install_hook(client)
    box: List[int] = []
    token = _observed.set(box)
    try:
        client.open_lineage.send(_payload(events), connector_type=_pyatlan_connector(connector))
    except Exception as error:
        raise _classify(error, connector, client) from None
    finally:
        _observed.reset(token)
    _check_final(box, connector)


async def send_checked_async(client: Any, events: Sequence[Dict[str, Any]], connector: str) -> None:
    """:func:`send_checked` for pyatlan's ``AsyncAtlanClient``, on the caller's event loop."""
    _install_hook(client)
    box: List[int] = []
    token = _observed.set(box)
    try:
        await client.open_lineage.send(
            _payload(events), connector_type=_pyatlan_connector(connector)
        )
    except Exception as error:
        raise _classify(error, connector, client) from None
    finally:
        _observed.reset(token)
    _check_final(box, connector)


def client_from_env(base_url: Optional[str] = None, api_key: Optional[str] = None) -> Any:
    """An ``AtlanClient`` from ``ATLAN_BASE_URL`` and ``ATLAN_API_KEY`` (or the arguments),
    or ``None`` when no tenant is configured."""
    url = base_url or os.environ.get("ATLAN_BASE_URL")
    key = api_key or os.environ.get("ATLAN_API_KEY")
    if not url or not key:
        return None
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(base_url=url, api_key=key)  # type: ignore[no-untyped-call]
