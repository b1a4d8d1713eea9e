"""An openlineage-python transport that delivers through atlan-ext: checked, kept, in order.

openlineage-python (and so dbt-ol, Airflow's provider, Spark's listener via the Python client)
loads a transport by its dotted class path::

    # openlineage.yml
    transport:
      type: atlan_ext.transport.AtlanTransport
      connector: generic-openlineage

    # or the environment (keys arrive lower-cased)
    OPENLINEAGE__TRANSPORT__TYPE=atlan_ext.transport.AtlanTransport
    OPENLINEAGE__TRANSPORT__CONNECTOR=airflow

What it adds over the ``http`` transport: an event counts as sent only on HTTP 202 (pyatlan
returns ``None`` even after a final 503); ``emit`` stores the event in the outbox before any
network call, so a task runner that leaves with ``os._exit`` loses nothing; a run's events go
in order (a terminal event never overtakes its START); what Atlan does not accept stays in the
outbox for ``atlan-lineage replay`` (or the courier this transport starts), and is announced.
The tenant is ``ATLAN_BASE_URL`` / ``ATLAN_API_KEY`` unless the config names it.

A setting it does not know, or cannot read (``OPENLINEAGE__TRANSPORT__BOGUS``, ``TIMEOUT=abc``,
an ``api_key_file`` that cannot be read), never stops the task: it is named in one error line
and left out (its default is used) and the events are sent or kept as usual; only with
``strict: true`` does building the transport raise :class:`InvalidOptionError` for it.

Needs openlineage-python: ``pip install 'atlan-ext[openlineage]'``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from openlineage.client.transport.transport import Config, Transport

from atlan_ext._state import say_once
from atlan_ext.delivery import Delivery, flush
from atlan_ext.events import as_event
from atlan_ext.exceptions import AtlanExtError, InvalidOptionError, LineageDeliveryError
from atlan_ext.outbox import Outbox
from atlan_ext.send import NO_TENANT, Tenant, connector_value, redact, tenant_from_settings

__all__ = ["AtlanConfig", "AtlanTransport"]

log = logging.getLogger("atlan_ext")

#: Accepted keys, by their folded form (lower case, no ``_`` or ``-``): camelCase,
#: snake_case and the lower-cased keys of ``OPENLINEAGE__TRANSPORT__...`` all fold alike.
_KEYS = {
    "connector": "connector",
    "connectortype": "connector",
    "baseurl": "base_url",
    "url": "base_url",
    "apikey": "api_key",
    "apikeyfile": "api_key_file",
    "outbox": "outbox",
    "timeout": "timeout",
    "background": "background",
    "strict": "strict",
}
_SHOWN = "connector, base_url, api_key, api_key_file, outbox, timeout, background, strict"


_DEFAULTS: Dict[str, Any] = {"timeout": 10.0, "background": False, "strict": False}


def _where(key: str) -> str:
    """How a user finds the setting: its environment variable and its openlineage.yml key."""
    return f"{key!r} (OPENLINEAGE__TRANSPORT__{key.upper()}, or transport.{key} in openlineage.yml)"


def _seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidOptionError(
            f"AtlanTransport timeout must be a finite positive number of seconds, got {value!r}"
        )
    return seconds


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise InvalidOptionError(f"AtlanTransport {name} must be true or false, got {value!r}")


class AtlanConfig(Config):
    """The transport's settings (see the module). :meth:`from_dict` (what openlineage-python
    calls) names each unknown or unreadable setting in :attr:`problems` and leaves it out,
    instead of raising: openlineage-python itself would drop unknown ones silently, and a
    raise there fails the task. The constructor, called directly, refuses bad values."""

    #: One line per setting :meth:`from_dict` left out, naming it and the fix.
    problems: List[str]

    def __init__(
        self,
        connector: str = "spark",
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        api_key_file: Optional[str] = None,
        outbox: Optional[str] = None,
        timeout: float = 10.0,
        background: bool = False,
        strict: bool = False,
    ) -> None:
        self.connector = connector_value(connector)
        self.base_url = base_url
        self.api_key = api_key
        self.api_key_file = api_key_file
        self.outbox = outbox
        self.timeout = _seconds(timeout)
        self.background = _flag("background", background)
        self.strict = _flag("strict", strict)
        self.problems = []

    def __repr__(self) -> str:  # the key never shows
        return (
            f"AtlanConfig(connector={self.connector!r}, base_url={self.base_url!r}, "
            f"outbox={_shown(self.outbox)!r}, timeout={self.timeout!r}, "
            f"background={self.background!r})"
        )

    @classmethod
    def from_dict(cls, params: Dict[str, Any]) -> AtlanConfig:
        """The settings openlineage-python read; each one that is unknown or cannot be read
        is left out and named in :attr:`problems` (see the class)."""
        values: Dict[str, Any] = {}
        problems: List[str] = []
        for key, value in params.items():
            folded = str(key).lower().replace("_", "").replace("-", "")
            if folded in ("type", "name", "priority"):
                continue  # openlineage-python's own
            if folded not in _KEYS:
                problems.append(
                    f"AtlanTransport does not know the setting {_where(str(key))}; it takes "
                    f"{_SHOWN} (camelCase, snake_case or lower case): left out"
                )
                continue
            values[_KEYS[folded]] = value
        for name in ("timeout", "background", "strict"):
            if name in values:
                try:
                    if name == "timeout":
                        values[name] = _seconds(values[name])
                    else:
                        values[name] = _flag(name, values[name])
                except InvalidOptionError as error:
                    problems.append(f"{error} ({_where(name)}): using {_DEFAULTS[name]!r}")
                    del values[name]
        try:
            config = cls(**values)
        except AtlanExtError as error:  # the connector: the default connector is used
            problems.append(f"{error} ({_where('connector')}): using 'spark'")
            values.pop("connector", None)
            config = cls(**values)
        config.problems = problems
        return config


class AtlanTransport(Transport):
    """Delivers openlineage-python's events to Atlan through atlan-ext (see the module)."""

    kind = "atlan"
    config_class = AtlanConfig

    def __init__(self, config: AtlanConfig) -> None:
        self.config = config
        problems = list(getattr(config, "problems", []))
        key = config.api_key
        if config.api_key_file:
            try:
                key = Path(config.api_key_file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as error:
                problems.append(
                    f"AtlanTransport cannot read api_key_file {config.api_key_file} "
                    f"({error.strerror}) ({_where('api_key_file')}): lineage is kept in the "
                    "outbox until it is fixed"
                )
                key = None
        if problems and config.strict:
            raise InvalidOptionError("; ".join(problems))
        for text in problems:  # one line each, once per transport built
            log.error("atlan_ext: %s", text)
        tenant, problem = tenant_from_settings(config.base_url, key, config.timeout)
        if problem is not None:
            say_once(
                f"transport:{problem}", "atlan_ext: %s; lineage is kept in the outbox", problem
            )
        self.tenant: Optional[Tenant] = tenant
        outbox: Optional[Outbox] = None
        if config.outbox:
            try:
                from atlan_ext.stores import is_url, open_outbox

                where = config.outbox
                outbox = open_outbox(where if is_url(where) else Path(where).expanduser())
            except AtlanExtError as error:
                say_once(f"transport-outbox:{config.outbox}", "atlan_ext: %s", error)
        self.delivery = Delivery(
            tenant,
            config.connector,
            outbox=outbox,
            timeout=config.timeout,
            background=config.background,
            strict=config.strict,
            unconfigured=problem or (None if tenant is not None else NO_TENANT),
            durable=True,
        )
        self._hand_leftovers_to_a_courier()

    def emit(self, event: Any) -> None:
        """Store the event in the outbox, then deliver it (checked, in order per run). Never
        raises, unless the config says ``strict``."""
        kind = type(event).__name__
        if kind in ("DatasetEvent", "JobEvent"):
            say_once(
                f"transport-skip:{kind}",
                "atlan_ext: Atlan takes OpenLineage run events only; %ss are not sent",
                kind,
            )
            return
        try:
            data = as_event(event)
            state = data["eventType"]
            self.delivery.send(data, None if state == "OTHER" else state)
        except AtlanExtError as error:
            if self.config.strict:
                raise
            say_once(f"transport-error:{type(error).__name__}", "atlan_ext: %s", error)
        except Exception as error:  # not the job's problem (e.g. no new thread at shutdown)
            text = redact(f"{type(error).__name__}: {error}", self.delivery.secrets())
            if self.config.strict:
                raise LineageDeliveryError(
                    f"event not handed over ({text})", retryable=False
                ) from None
            say_once(
                f"transport-error:{type(error).__name__}",
                "atlan_ext: event not handed over (kept in the outbox only if it was stored): %s",
                text,
            )

    def close(self, timeout: float = -1) -> bool:
        """Wait up to ``timeout`` seconds (negative: the transport's own timeout) for what
        was emitted; what is left stays in the outbox and a courier goes on with it."""
        # A tenant that is down is not waited for: the courier goes on with what is left.
        done = flush(self.config.timeout if timeout < 0 else timeout, retries=False)
        if not done:
            self._hand_leftovers_to_a_courier()
        return done

    def _hand_leftovers_to_a_courier(self) -> None:
        """Events left pending (a task that left with os._exit, a tenant that was down) are
        delivered by a courier process, not by whoever calls replay next."""
        if self.tenant is None:
            return
        try:
            outbox = self.delivery.outbox
            if outbox.path == ":memory:" or outbox.counts()[0] == 0:
                return
            from atlan_ext._spawn import spawn

            spawn(self.tenant, outbox.path)
        except AtlanExtError:
            return

    def __repr__(self) -> str:
        return f"<AtlanTransport {self.config!r}>"


def _shown(outbox: Optional[str]) -> Optional[str]:
    """The outbox setting as shown: a PostgreSQL URL without its password."""
    if outbox is None:
        return None
    from atlan_ext.stores import redacted

    return redacted(outbox)
