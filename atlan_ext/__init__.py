"""atlan-ext: report OpenLineage lineage to Atlan from scripts, scheduled jobs and notebooks.

Importing this package is cheap: pyatlan's client (seconds to import) is loaded only when an
event is actually sent.
"""

from __future__ import annotations

from atlan_ext import facets
from atlan_ext._version import PRODUCER, __version__
from atlan_ext.events import (
    Dataset,
    Job,
    RunId,
    as_dataset,
    as_event,
    as_events,
    as_job,
    build_event,
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
from atlan_ext.run import (
    AsyncRun,
    Run,
    current_run,
    lineage_run,
    resume_run,
    resume_run_async,
    start_run,
    start_run_async,
)
from atlan_ext.show import show_lineage
from atlan_ext.states import RunState, check_transition, terminal_state


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext atlan_ext``: register the ``%lineage`` and ``%%lineage`` magics."""
    from atlan_ext.notebook import load_ipython_extension as load

    load(ipython)


__all__ = [
    "PRODUCER",
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
    "as_dataset",
    "as_event",
    "as_events",
    "as_job",
    "build_event",
    "check_event",
    "check_transition",
    "current_run",
    "facets",
    "lineage_run",
    "load_ipython_extension",
    "resume_run",
    "resume_run_async",
    "show_lineage",
    "start_run",
    "start_run_async",
    "terminal_state",
]
