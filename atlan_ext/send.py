"""Checked submission through pyatlan: a send counts only when Atlan answered 202.

pyatlan's ``client.open_lineage.send()`` returns ``None`` both on success and when its retries
end on HTTP 503, so the event is silently lost. We watch the final status of every lineage
POST with an httpx response hook on the client's own session, and turn every way a send can go
wrong into one of three typed errors: :class:`LineageNotConfiguredError`,
:class:`LineageAuthenticationError` or :class:`LineageDeliveryError`. No message carries a token.

pyatlan's client is imported only here, and only when a send happens. A tenant named by
settings (:class:`Tenant`, :func:`tenant_from_settings`...) is :mod:`atlan_ext._tenant`'s,
public here.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import json
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

from atlan_ext._tenant import (
    NO_TENANT,
    RETRY_STATUSES,
    Tenant,
    client_from_env,
    redact,
    shown_url,
    tenant_from_settings,
    url_problem,
)
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
    "shown_url",
    "tenant_from_settings",
    "tenant_wide",
    "url_problem",
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
_SUPPORTED = frozenset(SUPPORTED_CONNECTORS)

#: Events in one POST, at most.
BATCH_LIMIT = 100

_RETRYABLE = RETRY_STATUSES
_ACCEPTED = 202
_LINEAGE_PATH = "/events/openlineage/"
_NOT_CONFIGURED_ID = "ATLAN-PYTHON-400-064"

# The final answers (status, Retry-After header) to the lineage POSTs made while a send is
# under way in this context: pyatlan's own errors carry neither the header nor, on a 503 it
# gave up on, anything at all.
_Answer = Tuple[int, Optional[str]]
_observed: contextvars.ContextVar[Optional[List[_Answer]]] = contextvars.ContextVar(
    "atlan_ext_observed_statuses", default=None
)


def connector_value(connector: object) -> str:
    """The connector's value (``"spark"``, ...) from an ``AtlanConnectorType`` or a string.

    Raises :class:`UnsupportedConnectorError` for a connector without an OpenLineage endpoint.
    """
    if type(connector) is str and connector in _SUPPORTED:  # checked already: as it is
        return connector
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
        box.append((response.status_code, response.headers.get("Retry-After")))


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


def _retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """A ``Retry-After`` header's wait in seconds (it is seconds, or an HTTP date), or
    ``None`` when there is none or it cannot be read."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is in GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _wait_asked(box: Sequence[_Answer], status: Optional[int]) -> Optional[float]:
    """The wait Atlan asked for with its final answer, on a 429 or 503 only."""
    if not box or status not in (429, 503) or box[-1][0] != status:
        return None
    return _retry_after_seconds(box[-1][1])


def _classify(
    error: BaseException, connector: str, client: Any, box: Sequence[_Answer] = ()
) -> LineageDeliveryError:
    """One typed, token-free error for anything pyatlan or httpx raised (``box``: the
    answers seen, for a ``Retry-After``)."""
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
            retry_after=_wait_asked(box, status),
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


def _check_final(box: List[_Answer], connector: str) -> None:
    final = box[-1][0] if box else None
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
        retry_after=_wait_asked(box, final),
    )


def tenant_wide(error: LineageDeliveryError) -> bool:
    """True for an answer that no event of this tenant (and connector) will get otherwise
    until someone fixes a setting: the key refused, no OpenLineage connection, no such
    endpoint (a wrong base URL), a client that cannot be built. Nothing is tried again, one
    by one or later, after such an answer; the events wait in the outbox for the fix."""
    return isinstance(
        error, (LineageAuthenticationError, LineageNotConfiguredError, TenantSettingsError)
    ) or error.status in (404, 405)


#: An event to send: a dict, or its compact JSON (as a run made it: see
#: :func:`atlan_ext._event_build.event_text`).
Sendable = Union[Dict[str, Any], str]


class _Json(str):
    """A batch written as JSON already (one event, or an array): sent as it is."""


def _payload(events: Sequence[Sendable]) -> Any:
    """The request for pyatlan: its own raw-event model of the batch (one event alone as a
    dict, several as an array), serialised the cheap way (see :func:`_raw_event_type`)."""
    root: Any
    if events and all(isinstance(event, str) for event in events):
        texts = cast(Sequence[str], events)
        root = _Json(texts[0] if len(texts) == 1 else f"[{','.join(texts)}]")
    else:
        loaded = [json.loads(event) if isinstance(event, str) else event for event in events]
        root = loaded[0] if len(loaded) == 1 else loaded
    try:
        return _raw_event_type().construct(__root__=root)
    except Exception:  # a pyatlan whose model differs: its own way, slower, same bytes
        return json.loads(root) if isinstance(root, _Json) else root


@functools.cache
def _raw_event_type() -> Any:
    """pyatlan's ``OpenLineageRawEvent``, with the same bytes on the wire for less work.

    Given a dict or a list, ``open_lineage.send`` validates the whole tree into an
    ``OpenLineageRawEvent``, whose pydantic ``json()`` walks it again, twice (pyatlan first
    asks it with a ``client=`` argument that ``json.dumps`` refuses, then without); the
    request then re-reads that JSON, applies its tag re-translation and writes it out. Those
    walks were 80 % of a replay's time. Built with ``construct`` (the events are ours, read
    from JSON: nothing to validate), this subclass's ``json()`` writes the same data with
    ``json.dumps`` in one pass (a batch written as JSON already is that JSON: a run's events
    are not encoded again); the re-translation and what goes on the wire stay pyatlan's.
    Any other use of ``json()`` (include, exclude...) is pydantic's own."""
    from pyatlan.model.open_lineage import OpenLineageRawEvent

    class _RawEvent(OpenLineageRawEvent):
        def json(self, **options: Any) -> str:
            root = self.__root__
            fast = not options.keys() - {"by_alias", "exclude_unset", "client"}
            if isinstance(root, _Json):
                if fast:  # by_alias and exclude_unset change nothing for JSON data
                    return str.__str__(root)
                self.__root__ = json.loads(root)  # pydantic's own way, on the data
            if not fast:
                options.pop("client", None)
                return str(super().json(**options))
            # For a root of JSON data, by_alias and exclude_unset change nothing.
            try:
                encoder = cast(Callable[[Any], Any], self.__json_encoder__)
                return json.dumps(self.__root__, separators=(",", ":"), default=encoder)
            except (AttributeError, TypeError, ValueError):  # pydantic's own way, then
                options.pop("client", None)
                return str(super().json(**options))

    return _RawEvent


def send_checked(client: Any, events: Sequence[Sendable], connector: str) -> None:
    """Send ``events`` (one POST; each a dict or its compact JSON) with a sync
    ``AtlanClient``; return only when Atlan answered 202, else raise a
    :class:`LineageDeliveryError`."""
    _install_hook(client)
    box: List[_Answer] = []
    token = _observed.set(box)
    failure: Optional[LineageDeliveryError] = None
    try:
        client.open_lineage.send(_payload(events), connector_type=_pyatlan_connector(connector))
    except Exception as error:
        failure = _classify(error, connector, client, box)
    finally:
        _observed.reset(token)
    if failure is not None:  # raised here, so pyatlan's unredacted error is not its context
        raise failure
    _check_final(box, connector)


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
