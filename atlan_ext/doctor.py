"""``atlan-lineage doctor``: why lineage does not show up, one check per line, each with its fix.

The checks, in order (a check that cannot run because an earlier one failed is skipped and
says so): the tenant settings (the URL parses, the key is there; the key is never printed),
the outbox (path, private folder, writable, not corrupted, what is pending), that the tenant
answers and accepts the key (one cheap authenticated call through pyatlan: the current user),
and that an OpenLineage connection of that name exists for the connector (the most common
reason lineage never shows up: the job's namespace must be the connection's name).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional

from atlan_ext.exceptions import OutboxError, TenantSettingsError
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
        yield _tenant_failure(error, url, key_name, [key])
        if connection:
            yield Check(False, f"connection {connection!r} not looked up", "", True)
        return
    name = getattr(user, "username", None) or "its user"
    yield Check(True, f"{url} answers and accepts the API key ({name})")
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


def _tenant_failure(error: BaseException, url: str, key_name: str, secrets: List[str]) -> Check:
    status = getattr(getattr(error, "error_code", None), "http_error_code", None)
    detail = redact(" ".join(str(error).split())[:200], secrets)
    if status in (401, 403):
        return Check(
            False,
            f"{url} refused the API key (HTTP {status})",
            f"check {key_name}: the token may be expired, revoked or for another tenant",
        )
    if isinstance(status, int):
        return Check(False, f"{url} answered HTTP {status}: {detail}", "try again later")
    return Check(
        False,
        f"cannot reach {url} ({type(error).__name__}: {detail})",
        "check the address, your network and any proxy (HTTPS_PROXY)",
    )


def _connection_check(client: Any, connection: str, connector: str) -> Check:
    from pyatlan.model.enums import AtlanConnectorType

    value = connector_value(connector)
    member = next(m for m in AtlanConnectorType if m.value == value)
    create = (
        f"create it: client.open_lineage.create_connection(name={connection!r}, "
        f"connector_type=AtlanConnectorType.{member.name})"
    )
    try:
        found = client.asset.find_connections_by_name(connection, member)
    except Exception as error:
        if type(error).__name__ == "NotFoundError":
            return Check(
                False,
                f"no {value} connection named {connection!r}: lineage for it is dropped",
                f"{create}; the job's connection (namespace) must be its name",
            )
        status = getattr(getattr(error, "error_code", None), "http_error_code", None)
        return Check(
            False,
            f"could not look up connection {connection!r} ({type(error).__name__}"
            f"{f', HTTP {status}' if status else ''})",
            "the API token may lack permission to search assets",
        )
    if not found:
        return Check(False, f"no {value} connection named {connection!r}", create)
    return Check(True, f"{value} connection {connection!r} exists")
