"""A run's arguments, checked once, before anything is sent: :class:`Plan`.

:func:`make_plan` checks the job, run id, parent, datasets and options of
:func:`atlan_ext.start_run`, :func:`atlan_ext.resume_run` and :class:`atlan_ext.lineage_run`;
a bad one raises a typed error that names it and the fix. Every run (each use of a
``lineage_run``) is built from one plan.
"""

from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from atlan_ext._event_build import facets_text, head_text, parts_text
from atlan_ext.delivery import Delivery
from atlan_ext.events import Dataset, DatasetLike, Job, RunId, as_dataset, as_job, build_event
from atlan_ext.exceptions import InvalidClientError, InvalidDatasetError, InvalidOptionError
from atlan_ext.outbox import Outbox
from atlan_ext.parent import Parent
from atlan_ext.send import NO_TENANT, Tenant, connector_value, tenant_from_settings
from atlan_ext.states import RunState

__all__ = ["Plan", "Settings", "check_client", "make_plan"]


@dataclass(frozen=True)
class Settings:
    """How a run sends: its client, connector, timeouts and switches, checked."""

    client: Any  # a pyatlan client, None (from the environment) or "local"
    connector: str
    timeout: float
    background: bool
    strict: bool
    include_stack_trace: bool
    run_facets: Dict[str, Any]
    outbox: Optional[Outbox]


def check_client(client: Any) -> None:
    """Raise :class:`InvalidClientError` unless ``client`` is one a run sends with: a pyatlan
    client, an atlan_ext :class:`Tenant`, ``None`` (the environment's tenant) or ``"local"``."""
    # Identity and type checks only: `client == None` would make pyatlan's pydantic model
    # serialise itself to compare (a third of a run's cost).
    local = client is None or (isinstance(client, str) and client == "local")
    if (
        not local
        and not isinstance(client, Tenant)
        and (isinstance(client, str) or not hasattr(client, "open_lineage"))
    ):
        shown = repr(client) if isinstance(client, str) else type(client).__name__
        raise InvalidClientError(
            "client must be a pyatlan AtlanClient, AsyncAtlanClient, atlan_ext Tenant, None or "
            f"'local', got {shown}"
        )


def _settings(
    job: Job,
    *,
    client: Any = None,
    connector_type: object = "spark",
    strict: bool = False,
    delivery_timeout: float = 10.0,
    background: bool = False,
    include_stack_trace: bool = True,
    run_facets: Optional[Mapping[str, Any]] = None,
    outbox: Optional[Outbox] = None,
) -> Settings:
    check_client(client)
    if (
        isinstance(delivery_timeout, bool)
        or not isinstance(delivery_timeout, (int, float))
        or not math.isfinite(delivery_timeout)
        or delivery_timeout <= 0
    ):
        raise InvalidOptionError(
            f"delivery_timeout must be a finite positive number of seconds, got "
            f"{delivery_timeout!r}"
        )
    for name, flag in (
        ("strict", strict),
        ("background", background),
        ("include_stack_trace", include_stack_trace),
    ):
        if not isinstance(flag, bool):
            # `background="no"` would be truthy: a switch is True or False, nothing else.
            raise InvalidOptionError(f"{name} must be True or False, got {flag!r}")
    if strict and background:
        raise InvalidOptionError(
            "strict=True raises when Atlan does not accept an event, so it must wait for "
            "the answer: it cannot be combined with background=True"
        )
    if outbox is not None and not isinstance(outbox, Outbox):
        raise InvalidOptionError(f"outbox must be an atlan_ext Outbox, got {outbox!r}")
    # Proves the run facets JSON objects now, before anything is sent.
    checked_facets: Dict[str, Any] = {}
    if run_facets:
        probe = build_event(RunState.OTHER, job, RunId.new(), run_facets=run_facets)
        checked_facets = probe["run"]["facets"]
    return Settings(
        client=client,
        connector=connector_value(connector_type),
        timeout=float(delivery_timeout),
        background=background,
        strict=strict,
        include_stack_trace=include_stack_trace,
        run_facets=checked_facets,
        outbox=outbox,
    )


def _datasets(items: Iterable[DatasetLike], side: str) -> Tuple[Dataset, ...]:
    """The datasets given, checked, each once (a later one with the same namespace and name
    takes the place of the first)."""
    unique: Dict[Tuple[str, str], Dataset] = {}
    for dataset in _checked_datasets(items, side):
        unique[(dataset.namespace, dataset.name)] = dataset
    return tuple(unique.values())


def _checked_datasets(items: Iterable[DatasetLike], side: str) -> List[Dataset]:
    if type(items) is list or type(items) is tuple:  # most often: no ABC checks to pass
        return [as_dataset(item) for item in items]
    if isinstance(items, (str, bytes)):
        raise InvalidDatasetError(
            f"{side} must be a list of datasets, got the string {items!r}: write {side}=[{items!r}]"
        )
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise InvalidDatasetError(
            f"{side} must be a list of datasets (Dataset objects or URIs such as "
            f"snowflake://acct/DB.SCHEMA.TABLE), got {items!r}: write {side}=[] for none"
        )
    return [as_dataset(item) for item in items]


#: The options of lineage_run, start_run and resume_run besides job, datasets, run_id and
#: parent: _settings' keyword arguments.
_OPTIONS = tuple(inspect.signature(_settings).parameters)[1:]
_KNOWN = frozenset(_OPTIONS)


@dataclass(frozen=True)
class Plan:
    """A run's arguments, checked once: every run of a :class:`lineage_run` (and the one of
    a :func:`start_run`) is built from one."""

    job: Job
    settings: Settings
    run_id: Optional[str]  # None: a fresh one per run
    parent: Optional[Parent]  # None: the enclosing run's, or the environment's, per run
    inputs: Tuple[Dataset, ...]  # each (namespace, name) once
    outputs: Tuple[Dataset, ...]

    # What every run of the plan shares, made once, when its first run needs it: the parts
    # of its events' JSON that do not change (see atlan_ext._event_build.event_text) and
    # where they go.

    @cached_property
    def producer_json(self) -> str:
        return head_text(self.job)

    @cached_property
    def parts_json(self) -> str:
        """The job and datasets, until a run adds one."""
        return parts_text(self.job, self.inputs, self.outputs)

    @cached_property
    def facets_json(self) -> str:
        """The run facets of a run without a parent."""
        return facets_text(self.settings.run_facets)

    @cached_property
    def _route(self) -> Optional[Delivery]:
        # With no client given, the environment names the tenant: it may change between
        # runs, so each run reads it (see delivery()).
        if self.settings.client is None:
            return None
        return _delivery(self.settings)

    def delivery(self) -> Delivery:
        """Where one run of this plan sends: a copy of the plan's own for a client given (or
        ``"local"``), checked once; from the environment's settings as they are now, for
        none. Either way the run looks up the default outbox afresh."""
        route = self._route
        return _delivery(self.settings) if route is None else route.fresh()


def _delivery(settings: Settings) -> Delivery:
    """A :class:`Delivery` for ``settings``: the client given, the tenant the environment
    names (its client is built off the job's thread), or none (kept locally), with the reason
    when a setting is wrong."""
    unconfigured = None
    target: Any = settings.client
    if isinstance(target, str):  # "local": asked for, so nothing to say
        target = None
    elif target is None:
        target, unconfigured = tenant_from_settings(timeout=settings.timeout)
        if target is None and unconfigured is None:
            unconfigured = NO_TENANT
    return Delivery(
        target,
        settings.connector,
        unconfigured=unconfigured,
        outbox=settings.outbox,
        timeout=settings.timeout,
        background=settings.background,
        strict=settings.strict,
    )


#: The plans of recent arguments, as :mod:`re` keeps compiled patterns: a job run in a loop
#: with the same arguments has them checked once. Keyed by value and type, the job, client
#: and outbox by identity (the plan holds them, so their ids are not reused while it is
#: kept; a Job is frozen, and its JSON is made once per object anyway).
_PLANS: Dict[Tuple[Any, ...], Plan] = {}
_PLANS_KEPT = 256
_BY_IDENTITY = frozenset({"client", "outbox"})


def make_plan(
    job: object,
    run_id: Optional[object],
    parent: object,
    inputs: Iterable[DatasetLike],
    outputs: Iterable[DatasetLike],
    options: Dict[str, Any],
) -> Plan:
    """The :class:`Plan` of these arguments, each checked; ``options`` are those of
    :class:`atlan_ext.lineage_run` (an unknown one is named, with the closest known one).
    Arguments seen recently give the plan made then (a Job, datasets as URIs in a list or
    tuple, no run id, parent or run facets)."""
    if (
        type(job) is not Job
        or run_id is not None
        or parent is not None
        or (type(inputs) is not list and type(inputs) is not tuple)
        or (type(outputs) is not list and type(outputs) is not tuple)
    ):
        return _checked_plan(job, run_id, parent, inputs, outputs, options)
    parts = [id(job), tuple(inputs), tuple(outputs)]  # datasets as URIs: hashable
    for name, value in options.items():
        parts.append((name, type(value), id(value) if name in _BY_IDENTITY else value))
    key = tuple(parts)
    try:
        plan = _PLANS.get(key)
    except TypeError:  # an unhashable argument (a Dataset, a dict): checked each time
        return _checked_plan(job, run_id, parent, inputs, outputs, options)
    if plan is None or plan.job is not job:
        plan = _checked_plan(job, run_id, parent, inputs, outputs, options)
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def _checked_plan(
    job: object,
    run_id: Optional[object],
    parent: object,
    inputs: Iterable[DatasetLike],
    outputs: Iterable[DatasetLike],
    options: Dict[str, Any],
) -> Plan:
    unknown = sorted(options.keys() - _KNOWN)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _OPTIONS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InvalidOptionError(
            f"{name!r} is not an option; {hint}the options are inputs, outputs, run_id, "
            f"parent, {', '.join(_OPTIONS)}"
        )
    checked_job = as_job(job)
    return Plan(
        checked_job,
        _settings(checked_job, **options),
        RunId.check(run_id) if run_id is not None else None,
        Parent.parse(parent) if parent is not None else None,
        _datasets(inputs, "inputs"),
        _datasets(outputs, "outputs"),
    )
