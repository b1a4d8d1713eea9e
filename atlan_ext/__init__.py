"""atlan-ext: report OpenLineage lineage to Atlan from scripts, scheduled jobs and notebooks.

Importing this package is cheap: pyatlan's client (seconds to import) is loaded only when an
event is actually sent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:  # the names below, for type checkers; at run time each loads on first use
    from atlan_ext import facets
    from atlan_ext._version import __version__
    from atlan_ext.events import (
        Dataset,
        Job,
        RunId,
        as_event,
        check_event,
    )
    from atlan_ext.exceptions import (
        AtlanExtError,
        InvalidClientError,
        InvalidDatasetError,
        InvalidEventError,
        InvalidFacetError,
        InvalidJobError,
        InvalidOptionError,
        InvalidOutcomeError,
        InvalidRunIdError,
        InvalidTimeError,
        InvalidTransitionError,
        LineageAuthenticationError,
        LineageDeliveryError,
        LineageNotConfiguredError,
        MissingDependencyError,
        OutboxError,
        RunInUseError,
        UnknownRunStateError,
        UnsupportedConnectorError,
    )
    from atlan_ext.parent import Parent
    from atlan_ext.receipt import verify
    from atlan_ext.run import (
        AsyncRun,
        Run,
        lineage_run,
        resume_run,
        resume_run_async,
        start_run,
        start_run_async,
    )
    from atlan_ext.show import show_lineage
    from atlan_ext.states import RunState, check_transition, terminal_state

#: Where each public name lives: ``import atlan_ext`` loads none of them (the command line, the
#: pytest plugin and the courier start fast); each is imported the first time it is used.
_LAZY = {
    "AsyncRun": "atlan_ext.run",
    "AtlanExtError": "atlan_ext.exceptions",
    "Dataset": "atlan_ext.events",
    "InvalidClientError": "atlan_ext.exceptions",
    "InvalidDatasetError": "atlan_ext.exceptions",
    "InvalidEventError": "atlan_ext.exceptions",
    "InvalidFacetError": "atlan_ext.exceptions",
    "InvalidJobError": "atlan_ext.exceptions",
    "InvalidOptionError": "atlan_ext.exceptions",
    "InvalidOutcomeError": "atlan_ext.exceptions",
    "InvalidRunIdError": "atlan_ext.exceptions",
    "InvalidTimeError": "atlan_ext.exceptions",
    "InvalidTransitionError": "atlan_ext.exceptions",
    "Job": "atlan_ext.events",
    "LineageAuthenticationError": "atlan_ext.exceptions",
    "LineageDeliveryError": "atlan_ext.exceptions",
    "LineageNotConfiguredError": "atlan_ext.exceptions",
    "MissingDependencyError": "atlan_ext.exceptions",
    "OutboxError": "atlan_ext.exceptions",
    "Parent": "atlan_ext.parent",
    "Run": "atlan_ext.run",
    "RunId": "atlan_ext.events",
    "RunInUseError": "atlan_ext.exceptions",
    "RunState": "atlan_ext.states",
    "UnknownRunStateError": "atlan_ext.exceptions",
    "UnsupportedConnectorError": "atlan_ext.exceptions",
    "__version__": "atlan_ext._version",
    "as_event": "atlan_ext.events",
    "check_event": "atlan_ext.events",
    "check_transition": "atlan_ext.states",
    "lineage_run": "atlan_ext.run",
    "resume_run": "atlan_ext.run",
    "resume_run_async": "atlan_ext.run",
    "start_run": "atlan_ext.run",
    "show_lineage": "atlan_ext.show",
    "start_run_async": "atlan_ext.run",
    "terminal_state": "atlan_ext.states",
    "facets": "atlan_ext.facets",
    "verify": "atlan_ext.receipt",
}


#: Names that left the top level (the surface stays small); they still work, with a warning.
_MOVED = {
    "PRODUCER": "atlan_ext.events",
    "as_dataset": "atlan_ext.events",
    "as_events": "atlan_ext.events",
    "as_job": "atlan_ext.events",
    "build_event": "atlan_ext.events",
    "current_run": "atlan_ext.run",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name in _MOVED:
        import warnings

        warnings.warn(
            f"atlan_ext.{name} is {_MOVED[name]}.{name} now: import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    if module is None:
        raise AttributeError(f"module 'atlan_ext' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != "facets":
        value = getattr(value, name)
    globals()[name] = value  # once: later uses are plain attribute reads
    return value


def __dir__() -> List[str]:
    return sorted({*globals(), *_LAZY})


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext atlan_ext``: register the ``%lineage`` and ``%%lineage`` magics."""
    from atlan_ext.notebook import load_ipython_extension as load

    load(ipython)


__all__ = [
    "AsyncRun",
    "AtlanExtError",
    "Dataset",
    "InvalidClientError",
    "InvalidDatasetError",
    "InvalidEventError",
    "InvalidFacetError",
    "InvalidJobError",
    "InvalidOptionError",
    "InvalidOutcomeError",
    "InvalidRunIdError",
    "InvalidTimeError",
    "InvalidTransitionError",
    "Job",
    "LineageAuthenticationError",
    "LineageDeliveryError",
    "LineageNotConfiguredError",
    "MissingDependencyError",
    "OutboxError",
    "Parent",
    "Run",
    "RunId",
    "RunInUseError",
    "RunState",
    "UnknownRunStateError",
    "UnsupportedConnectorError",
    "__version__",
    "as_event",
    "check_event",
    "check_transition",
    "facets",
    "lineage_run",
    "load_ipython_extension",
    "resume_run",
    "resume_run_async",
    "show_lineage",
    "start_run",
    "start_run_async",
    "terminal_state",
    "verify",
]
