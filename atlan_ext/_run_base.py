"""The run core the sync and async runs share: what a run holds and how it ends.

:class:`RunBase` keeps the run's state, datasets and facets and builds its events under a lock;
:meth:`RunBase._prepare_end` is the only place a run's terminal state is decided and its
errorMessage facet built (every way a run ends goes through it, by ``Run.end`` or
``AsyncRun.end``). It does no I/O of its own: the runs in :mod:`atlan_ext._runs` send.
:func:`current_run` is the innermost run entered in this thread or task.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from atlan_ext import _sigterm, display
from atlan_ext._event_build import check_facets, event_text, facets_text, now_text, parts_text
from atlan_ext._outcome import Aborted, outcome_facets
from atlan_ext._run_plan import Plan
from atlan_ext._store import Item
from atlan_ext.events import Dataset, DatasetLike, as_dataset
from atlan_ext.exceptions import LineageDeliveryError, RunInUseError
from atlan_ext.parent import Parent
from atlan_ext.states import Outcome, RunState, check_transition, terminal_state

__all__ = ["Facets", "RunBase", "current_run"]

log = logging.getLogger("atlan_ext")

#: Extra run facets for one event.
Facets = Optional[Mapping[str, Any]]

_current: contextvars.ContextVar[Optional[RunBase]] = contextvars.ContextVar(
    "atlan_ext_current_run", default=None
)


def current_run() -> Optional[RunBase]:
    """The innermost run entered (``with``) in this thread or task, or ``None``."""
    return _current.get()


def _with(
    added: Optional[Dict[Tuple[str, str], Dataset]], planned: Tuple[Dataset, ...], new: Dataset
) -> Dict[Tuple[str, str], Dataset]:
    """A run's datasets on one side with ``new`` (in place of one of the same name)."""
    datasets = {(d.namespace, d.name): d for d in planned} if added is None else added
    datasets[(new.namespace, new.name)] = new
    return datasets


class RunBase:
    """What the sync and async runs share: state, datasets, events; never any I/O."""

    #: Whether SIGTERM ends it with ABORT: a sync run's ``end`` can be called from the
    #: handler; an async run's cannot.
    ends_on_signal = False
    #: True while one of its events is being made and handed over (a sync run's): SHIELD
    #: holds a SIGTERM off the main thread's, and the handler waits a moment for another's.
    making = False

    def __init__(self, plan: Plan, run_id: str, parent: Optional[Parent], resumed: bool) -> None:
        self.job = plan.job
        self.run_id = run_id
        self._plan = plan
        self._settings = settings = plan.settings
        self._delivery = plan.delivery()
        # The datasets, by (namespace, name): the plan's until the run adds one (None).
        self._inputs: Optional[Dict[Tuple[str, str], Dataset]] = None
        self._outputs: Optional[Dict[Tuple[str, str], Dataset]] = None
        self.parent = parent
        # The event's JSON parts that change rarely (see _prepare): the plan's, made once for
        # all its runs, unless a parent or an added dataset makes them this run's own (None:
        # made when the next event needs them).
        self._run_facets = settings.run_facets  # never changed in place
        self._facets_json: Optional[str] = None
        if parent is not None:
            self._run_facets = {**settings.run_facets, "parent": parent.facet()}
        else:
            self._facets_json = plan.facets_json
        self._parts: Optional[str] = plan.parts_json
        self._producer = plan.producer_json
        self._lock = threading.RLock()  # RLock: SIGTERM may end the run inside its own call
        # A resumed run began elsewhere; it is checked against what the outbox remembers.
        self._lifecycle: Optional[RunState] = RunState.START if resumed else None
        self._checked = resumed
        self._token: Optional[contextvars.Token[Optional[RunBase]]] = None
        self._sent: List[Tuple[RunState, str]] = []  # each event made: state, eventTime
        #: The errorMessage of a run that ended with FAIL or ABORT (as sent), else ``None``.
        self.error_message: Optional[str] = None

    def __repr__(self) -> str:
        state = self._lifecycle.value if self._lifecycle else "not started"
        return f"<{type(self).__name__} {self.job.namespace}/{self.job.name} {self.run_id} {state}>"

    def _repr_html_(self) -> str:
        """The run in a notebook: job, id, state, duration, events with delivery, datasets."""
        return display.run_html(self)

    def _repr_markdown_(self) -> str:
        """The run as Markdown (``nbconvert --to markdown``, GitHub), its picture included."""
        return display.run_markdown(self)

    @property
    def state(self) -> Optional[RunState]:
        """The run's lifecycle state: the last of START, RUNNING, COMPLETE, ABORT, FAIL."""
        return self._lifecycle

    @property
    def history(self) -> List[Tuple[RunState, datetime]]:
        """Each event the run made, in order: its state and its ``eventTime``."""
        return [(state, datetime.fromisoformat(when)) for state, when in self._sent]

    @property
    def ended(self) -> bool:
        """True once the run has its terminal event."""
        return self._lifecycle is not None and self._lifecycle.is_terminal

    @property
    def inputs(self) -> List[Dataset]:
        """The run's input datasets so far."""
        return list(self._plan.inputs if self._inputs is None else self._inputs.values())

    @property
    def outputs(self) -> List[Dataset]:
        """The run's output datasets so far."""
        return list(self._plan.outputs if self._outputs is None else self._outputs.values())

    def add_input(self, dataset: DatasetLike) -> Dataset:
        """Add an input dataset found during the run (a ``Dataset`` or a URI); it is sent
        with the run's next event."""
        checked = as_dataset(dataset)
        with self._lock:
            self._inputs = _with(self._inputs, self._plan.inputs, checked)
            self._parts = None
        return checked

    def add_output(self, dataset: DatasetLike) -> Dataset:
        """Add an output dataset found during the run (a ``Dataset`` or a URI); it is sent
        with the run's next event."""
        checked = as_dataset(dataset)
        with self._lock:
            self._outputs = _with(self._outputs, self._plan.outputs, checked)
            self._parts = None
        return checked

    def as_parent(self) -> Parent:
        """This run as the parent of another (``parent=run``), with its root."""
        root = self.parent.root_or_self if self.parent is not None else None
        return Parent(self.run_id, self.job.namespace, self.job.name, root=root)

    def child_env(self) -> Dict[str, str]:
        """Environment variables that nest a child process's runs under this one
        (``OPENLINEAGE_PARENT_ID``, ``OPENLINEAGE_ROOT_PARENT_ID``, ``OPENLINEAGE_CONTEXT``)::

            subprocess.run(["dbt-ol", "run"], env={**os.environ, **run.child_env()})
        """
        return self.as_parent().env()

    def delivery(self) -> Dict[str, str]:
        """Delivery state (``pending``/``delivered``) of the run's stored events, by event
        time; empty when the outbox cannot tell."""
        try:
            stored = self._delivery.outbox.events(self.run_id)
        except Exception:  # the outbox is a nicety here; the run shows without it
            return {}
        return {item.event_time: item.status for item in stored}

    # -- events, built under the lock; the state moves only if the event is legal -------------

    def _prepare(self, state: RunState, facets: Facets) -> Item:
        # The job, run id, datasets and the run's own facets were checked when the run was
        # planned (or added): only facets given now are checked here, as build_event would.
        # The event is made as JSON text only (see atlan_ext._event_build.event_text).
        with self._lock:
            state = check_transition(self._lifecycle, state)
            if facets:
                run_facets = dict(self._run_facets)
                run_facets.update(check_facets(facets, "run"))
                facets_json = facets_text(run_facets)
            elif self._facets_json is not None:
                facets_json = self._facets_json
            else:
                facets_json = self._facets_json = facets_text(self._run_facets)
            parts = self._parts
            if parts is None:
                parts = self._parts = parts_text(self.job, self.inputs, self.outputs)
            when = now_text()
            kind: str = state._value_  # (the value property is a descriptor call)
            text = event_text(
                kind,
                when,
                self.run_id,
                facets_json,
                self._producer,
                parts,
            )
            lifecycle = None
            if state is not RunState.OTHER:
                self._lifecycle = state
                lifecycle = kind
            self._sent.append((state, when))
        return Item.of_text(text, self.run_id, kind, lifecycle)

    def _prepare_end(self, outcome: Outcome, facets: Facets, explicit: bool) -> Optional[Item]:
        """The terminal event for ``outcome``; ``None`` when the run already ended (an
        explicit second ending raises :class:`InvalidTransitionError` instead)."""
        state = terminal_state(outcome)
        with self._lock:
            if self.ended:
                if explicit:
                    check_transition(self._lifecycle, state)
                return None
            merged = (
                {}  # a success has no errorMessage
                if state is RunState.COMPLETE
                else outcome_facets(
                    outcome, self._settings.include_stack_trace, self._delivery.secrets
                )
            )
            if facets:
                merged.update(facets)
            error = merged.get("errorMessage")
            self.error_message = error.get("message") if isinstance(error, dict) else None
            return self._prepare(state, merged)

    def _check(self, item: Item) -> Callable[[Optional[str]], None]:
        """For a run that began elsewhere: ``item``'s transition checked against the state
        the outbox remembers, inside its transaction (no record: it cannot be checked here).
        Asked only of such a run (``_checked``)."""
        new = item.lifecycle or RunState.OTHER.value

        def still_legal(stored: Optional[str]) -> None:
            if stored is not None:
                check_transition(stored, new)

        return still_legal

    def _withdraw(self, error: LineageDeliveryError) -> None:
        """A strict run whose START was not delivered does not begin, and leaves no lone
        START behind: its ABORT is stored after it, for the same replay."""
        item = self._prepare_end(
            Aborted(f"the run did not begin: its START was not delivered ({error})"),
            None,
            explicit=False,
        )
        if item is not None:
            self._delivery.keep(item)
        self._closed()

    def _refused(self, previous: Optional[RunState]) -> None:
        """The outbox refused the event just prepared: the run did not move."""
        with self._lock:
            self._lifecycle = previous
            self._sent.pop()

    def _trouble(self, error: Exception, user_error: Optional[BaseException]) -> None:
        """A lineage failure: raised only with ``strict=True`` and never over the user's own
        exception; otherwise logged (delivery failures were reported where they happened)."""
        if self._settings.strict and user_error is None:
            raise error
        if not isinstance(error, LineageDeliveryError):
            log.warning("atlan_ext: lineage not recorded: %s", error)

    # -- entering and leaving a block ----------------------------------------------------------

    def _enter(self) -> None:
        if self._token is not None:
            raise RunInUseError(
                f"run {self.run_id} is already entered; a run is one block: start another "
                "with start_run() (or use lineage_run as a decorator, which makes a fresh run "
                "per call)"
            )
        self._token = _current.set(self)

    def _leave(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _current.reset(token)
        except ValueError:  # left in another context (a generator finished elsewhere)
            _current.set(None)

    def _opened(self) -> None:
        _sigterm.watch(self)

    def _closed(self) -> None:
        _sigterm.unwatch(self)
