"""``atlan-lineage doctor``: why lineage does not show up, one check per line, each with its fix.

The checks, in order (a check that cannot run because an earlier one failed is skipped and
says so): the tenant settings (the URL parses, the key is there; the key is never printed),
the outbox (path, private folder, writable, not corrupted, what is pending), that the tenant
answers and accepts the key (one cheap authenticated call through pyatlan: the current user),
told apart as a wrong address (404), a wrong key (401/403) or a tenant that is down (5xx, no
answer); that the connector's lineage endpoint is configured (an empty batch, which creates no
lineage: "not configured" is Atlan's own answer for a connector never set up); and that an
OpenLineage connection of that name exists for the connector (the job's namespace must be the
connection's name), listing the connector's connections when it does not.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional
from urllib.parse import urlsplit

from atlan_ext.exceptions import (
    LineageDeliveryError,
    LineageNotConfiguredError,
    OutboxError,
    TenantSettingsError,
)
from atlan_ext.outbox import Outbox, default_path
from atlan_ext.send import Tenant, connector_value, redact, url_problem

__all__ = ["Check", "diagnose"]


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it passed, and the fix if not."""

    ok: bool
    what: str
    fix: str = ""
    skipped: bool = False


def diagnose(
    base_url: Optional[str],
    api_key: Optional[str],
    *,
    connection: Optional[str] = None,
    connector: str = "spark",
    url_name: str = "ATLAN_BASE_URL",
    key_name: str = "ATLAN_API_KEY",
    key_problem: Optional[str] = None,
    timeout: float = 10.0,
) -> Iterator[Check]:
    """The checks, one by one (each is yielded as soon as it is known). ``key_problem``:
    why the key could not be read (a key file), said instead of "not set"."""
    settings_ok = True
    url = base_url or os.environ.get("ATLAN_BASE_URL") or ""
    key = (api_key or os.environ.get("ATLAN_API_KEY") or "").strip()
    example = "e.g. https://your-tenant.atlan.com"
    if not url:
        settings_ok = False
        yield Check(False, f"{url_name} is not set", f"set it to your tenant's address, {example}")
    else:
        problem = url_problem(url, url_name)
        settings_ok = problem is None
        yield Check(problem is None, problem or f"{url_name} is {url}")
    if key_problem is not None:
        settings_ok = False
        yield Check(False, key_problem, f"give {key_name} a readable file holding the token")
    elif not key:
        settings_ok = False
        yield Check(
            False,
            f"{key_name} is not set",
            "create an API token in Atlan (Admin > API tokens) and set it; it is never printed",
        )
    else:
        yield Check(True, f"{key_name} is set ({len(key)} characters, not shown)")

    yield from _outbox_checks()

    if not settings_ok:
        yield Check(False, "the tenant was not asked: fix the settings above first", skipped=True)
        if connection:
            yield Check(False, f"connection {connection!r} not looked up", "", True)
        return
    tenant = Tenant(url, key, timeout)
    client: Any = None
    try:
        client = tenant.client()
        user = client.user.get_current()
    except TenantSettingsError as error:
        yield Check(False, str(error))
        return
    except Exception as error:
        yield _tenant_failure(error, url, url_name, key_name, [key])
        if connection:
            yield Check(False, f"connection {connection!r} not looked up", "", True)
        return
    name = getattr(user, "username", None) or "its user"
    yield Check(True, f"{url} answers and accepts the API key ({name})")
    yield _endpoint_check(client, connector)
    if not connection:
        yield Check(
            True,
            "no --connection given: the OpenLineage connection was not looked up",
            skipped=True,
        )
        return
    yield _connection_check(client, connection, connector)


def _outbox_checks() -> Iterator[Check]:
    path = default_path()
    try:
        outbox = Outbox(path)
    except OutboxError as error:
        yield Check(False, str(error))
        return
    yield Check(True, f"outbox {path}")
    try:
        mode = stat.S_IMODE(Path(path).parent.stat().st_mode)
    except OSError as error:
        yield Check(False, f"outbox folder cannot be read ({error.strerror})")
    else:
        if mode & 0o077:
            yield Check(
                False,
                f"outbox folder {Path(path).parent} is {mode:04o}: others can read lineage",
                f"chmod 700 {Path(path).parent}",
            )
        else:
            yield Check(True, f"outbox folder is private ({mode:04o})")
    for problem in outbox.health():
        yield Check(False, problem, "move the file away or set ATLAN_EXT_HOME to another folder")
    try:
        pending, delivered = outbox.counts()
        last = outbox.last_error()
    except OutboxError as failure:
        yield Check(False, str(failure))
        return
    finally:
        outbox.close()
    line = f"{pending} event(s) pending, {delivered} delivered"
    if pending and last:
        line += f"; last error: {last}"
    yield Check(
        True, line, "send them with: atlan-lineage replay" if pending else "", skipped=False
    )


def _status(error: BaseException) -> Optional[int]:
    status = getattr(getattr(error, "error_code", None), "http_error_code", None)
    return status if isinstance(status, int) else None


def _tenant_failure(
    error: BaseException, url: str, url_name: str, key_name: str, secrets: List[str]
) -> Check:
    """Which of the three it is: a wrong address, a wrong key, or a tenant that is down."""
    import httpx

    status = _status(error)
    detail = redact(" ".join(str(error).split())[:200], secrets)
    address = f"set {url_name} to your tenant's own address, e.g. https://your-tenant.atlan.com"
    if status in (401, 403):
        return Check(
            False,
            f"{url} refused the API key (HTTP {status})",
            f"check {key_name}: the token may be expired, revoked or for another tenant",
        )
    if status in (404, 405):
        return Check(
            False,
            f"{url} has no Atlan API (HTTP {status} for the current user): a wrong address, "
            "not a wrong key",
            address,
        )
    if status is None and isinstance(error, TypeError):
        # pyatlan returns nothing (so reading the user fails) when the tenant answers 503.
        return Check(False, f"{url} is unavailable (HTTP 503): the tenant is down", _LATER)
    if status is not None and status >= 500:
        return Check(False, f"{url} answered HTTP {status}: the tenant is down", _LATER)
    if isinstance(status, int):
        return Check(False, f"{url} answered HTTP {status}: {detail}", _LATER)
    if isinstance(error, httpx.ConnectError) and _unknown_host(str(error)):
        return Check(False, f"{urlsplit(url).hostname} is not a known host ({detail})", address)
    if isinstance(error, httpx.TimeoutException):
        return Check(False, f"{url} did not answer in time: the tenant is down or slow", _LATER)
    return Check(
        False,
        f"cannot reach {url} ({type(error).__name__}: {detail})",
        "check the address, your network and any proxy (HTTPS_PROXY)",
    )


_LATER = "try again later; your Atlan admin or Atlan's status page says when it is back"


def _unknown_host(text: str) -> bool:
    """True when a connection failed because the host name does not resolve."""
    lowered = text.lower()
    return any(
        mark in lowered
        for mark in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo failed",
            "no address associated",
            "name resolution",
        )
    )


def _connector_member(connector: str) -> Any:
    from pyatlan.model.enums import AtlanConnectorType

    value = connector_value(connector)
    return next(m for m in AtlanConnectorType if m.value == value)


def _endpoint_check(client: Any, connector: str) -> Check:
    """Is the connector's lineage endpoint configured? Asked with an empty batch: Atlan
    answers it (202, or 400 for a batch with no event) without creating any lineage, and
    answers "not configured" for a connector whose OpenLineage package was never set up."""
    from atlan_ext.send import send_checked

    value = connector_value(connector)
    try:
        send_checked(client, [], value)
    except LineageNotConfiguredError:
        return Check(
            False,
            f"the {value} lineage endpoint is not configured: Atlan drops every event sent to it",
            f"set up the {value} OpenLineage connector in Atlan (Marketplace, or "
            f"client.open_lineage.create_connection(..., connector_type="
            f"AtlanConnectorType.{_connector_member(value).name}))",
        )
    except LineageDeliveryError as error:
        if error.status == 400:  # refused as invalid: the endpoint itself is there
            return Check(True, f"the {value} lineage endpoint is configured (empty batch refused)")
        if error.status in (401, 403):
            return Check(
                False,
                f"the {value} lineage endpoint refused the API key (HTTP {error.status})",
                "give the token's user permission to send lineage (an admin or a "
                "persona with lineage write access)",
            )
        return Check(
            False,
            f"could not check the {value} lineage endpoint: {error}",
            _LATER if error.retryable else "",
        )
    return Check(True, f"the {value} lineage endpoint is configured (empty batch accepted)")


def _connection_check(client: Any, connection: str, connector: str) -> Check:
    member = _connector_member(connector)
    value = member.value
    create = (
        f"create it: client.open_lineage.create_connection(name={connection!r}, "
        f"connector_type=AtlanConnectorType.{member.name})"
    )
    try:
        found = client.asset.find_connections_by_name(connection, member)
    except Exception as error:
        if type(error).__name__ != "NotFoundError":
            status = _status(error)
            return Check(
                False,
                f"could not look up connection {connection!r} ({type(error).__name__}"
                f"{f', HTTP {status}' if status else ''})",
                "the API token may lack permission to search assets",
            )
        found = []
    if found:
        return Check(True, f"{value} connection {connection!r} exists")
    others = _connection_names(client, value)
    if others:
        listed = ", ".join(repr(name) for name in others[:10])
        more = f" and {len(others) - 10} more" if len(others) > 10 else ""
        return Check(
            False,
            f"no {value} connection named {connection!r}; the {value} connections you can "
            f"see: {listed}{more}",
            f"name the job's connection (namespace) after one of them, or {create}",
        )
    return Check(
        False,
        f"no {value} connection named {connection!r}, and none of connector {value} that the "
        "API token can see (search results follow its personas and purposes)",
        f"{create}; the job's connection (namespace) must be its name",
    )


def _connection_names(client: Any, connector: str) -> List[str]:
    """The names of the connector's connections the token can see (one page), or none."""
    from pyatlan.model.assets import Connection
    from pyatlan.model.fluent_search import FluentSearch

    request = (
        FluentSearch()
        .where(FluentSearch.asset_type(Connection))
        .where(FluentSearch.active_assets())
        .where(Connection.CONNECTOR_NAME.eq(connector))
        .include_on_results(Connection.NAME)
        .page_size(50)
        .to_request()
    )
    try:
        page = client.asset.search(request).current_page()
    except Exception:
        return []
    return sorted({str(asset.name) for asset in page if getattr(asset, "name", None)})
