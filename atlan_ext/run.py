"""Runs: START, then exactly one of COMPLETE, FAIL or ABORT, however the work ends.

- :func:`start_run` sends START and returns the :class:`Run`; :func:`resume_run` takes up a
  run started elsewhere (another process or host) without sending START.
- :meth:`Run.end` is the one way a run ends: idempotent, the only place its terminal state is
  decided (:func:`atlan_ext.terminal_state`) and its errorMessage facet built. ``complete()``,
  ``fail()`` and ``abort()`` are thin calls to it, and so are the context manager's exit, the
  notebook magic, ``atlan-lineage wrap``, the step commands and ``close-orphans``.
- :class:`lineage_run` is ``start_run`` plus ``Run.end`` on every way out, as ``with``,
  ``async with`` and decorator; each use (each call of a decorated function) builds a fresh
  run from the stored arguments.

Lineage never breaks the user's work: a failure to record it is logged (``strict=True``
raises it, but never over the user's own exception), and the user's exception is re-raised
unchanged. Bad arguments raise at once, before anything is sent.
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import inspect
import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from atlan_ext import _sigterm, display
from atlan_ext._outcome import Aborted, failure, outcome_facets
from atlan_ext._state import SHIELD
from atlan_ext.delivery import Delivery
from atlan_ext.events import Dataset, DatasetLike, Job, RunId, as_dataset, as_job, build_event
from atlan_ext.exceptions import (
    InvalidClientError,
    InvalidDatasetError,
    InvalidOptionError,
    InvalidTransitionError,
    LineageDeliveryError,
    RunInUseError,
)
from atlan_ext.outbox import Outbox
from atlan_ext.parent import Parent
from atlan_ext.send import (
    NO_TENANT,
    Tenant,
    connector_value,
    is_async_client,
    tenant_from_settings,
)
from atlan_ext.states import Outcome, RunState, check_transition, terminal_state

if TYPE_CHECKING:
    from atlan_ext.receipt import Receipt

__all__ = [
    "AsyncRun",
    "Run",
    "current_run",
    "lineage_run",
    "resume_run",
    "resume_run_async",
    "start_run",
    "start_run_async",
]

log = logging.getLogger("atlan_ext")

F = TypeVar("F", bound=Callable[..., Any])
Facets = Optional[Mapping[str, Any]]
Prepared = Tuple[Dict[str, Any], Optional[str]]

_current: contextvars.ContextVar[Optional[_RunBase]] = contextvars.ContextVar(
    "atlan_ext_current_run", default=None
)


def current_run() -> Optional[_RunBase]:
    """The innermost run entered (``with``) in this thread or task, or ``None``."""
    return _current.get()


# -- settings, checked before anything is sent -----------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    client: Any  # a pyatlan client, None (from the environment) or "local"
    connector: str
    timeout: float
    background: bool
    strict: bool
    include_stack_trace: bool
    run_facets: Dict[str, Any]
    outbox: Optional[Outbox]


def _settings(
    job: Job,
    *,
    client: Any = None,
    connector_type: object = "spark",
    strict: bool = False,
    delivery_timeout: float = 10.0,
    background: bool = False,
    include_stack_trace: bool = True,
    run_facets: Facets = None,
    outbox: Optional[Outbox] = None,
) -> _Settings:
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
    return _Settings(
        client=client,
        connector=connector_value(connector_type),
        timeout=float(delivery_timeout),
        background=background,
        strict=strict,
        include_stack_trace=include_stack_trace,
        run_facets=checked_facets,
        outbox=outbox,
    )


def _datasets(items: Iterable[DatasetLike], side: str) -> List[Dataset]:
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


def _target(settings: _Settings) -> Tuple[Any, Optional[str]]:
    """Where the run's events go: the client given, the tenant the environment names (its
    client is built off the job's thread), or ``None`` (kept locally) with the reason when a
    setting is wrong."""
    if isinstance(settings.client, str):  # "local": asked for, so nothing to say
        return None, None
    if settings.client is not None:
        return settings.client, None
    tenant, problem = tenant_from_settings(timeout=settings.timeout)
    if tenant is None and problem is None:
        problem = NO_TENANT
    return tenant, problem


# -- runs ----------------------------------------------------------------------------------------


class _RunBase:
    """What the sync and async runs share: state, datasets, events; never any I/O."""

    #: Whether SIGTERM ends it with ABORT: a sync run's ``end`` can be called from the
    #: handler; an async run's cannot.
    ends_on_signal = False

    def __init__(
        self,
        job: Job,
        run_id: str,
        settings: _Settings,
        inputs: Iterable[Dataset],
        outputs: Iterable[Dataset],
        parent: Optional[Parent],
        resumed: bool,
    ) -> None:
        self.job = job
        self.run_id = run_id
        self._settings = settings
        target, unconfigured = _target(settings)
        self._delivery = Delivery(
            target,
            settings.connector,
            unconfigured=unconfigured,
            outbox=settings.outbox,
            timeout=settings.timeout,
            background=settings.background,
            strict=settings.strict,
        )
        self._inputs: Dict[Tuple[str, str], Dataset] = {}
        self._outputs: Dict[Tuple[str, str], Dataset] = {}
        for dataset in inputs:
            self._inputs[(dataset.namespace, dataset.name)] = dataset
        for dataset in outputs:
            self._outputs[(dataset.namespace, dataset.name)] = dataset
        self._run_facets = dict(settings.run_facets)
        self.parent = parent
        if parent is not None:
            self._run_facets["parent"] = parent.facet()
        self._lock = threading.RLock()  # RLock: SIGTERM may end the run inside its own call
        # A resumed run began elsewhere; it is checked against what the outbox remembers.
        self._lifecycle: Optional[RunState] = RunState.START if resumed else None
        self._checked = resumed
        self._token: Optional[contextvars.Token[Optional[_RunBase]]] = None
        self.history: List[Tuple[RunState, datetime]] = []
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
    def ended(self) -> bool:
        """True once the run has its terminal event."""
        return self._lifecycle is not None and self._lifecycle.is_terminal

    @property
    def inputs(self) -> List[Dataset]:
        """The run's input datasets so far."""
        return list(self._inputs.values())

    @property
    def outputs(self) -> List[Dataset]:
        """The run's output datasets so far."""
        return list(self._outputs.values())

    def add_input(self, dataset: DatasetLike) -> Dataset:
        """Add an input dataset found during the run (a ``Dataset`` or a URI); it is sent
        with the run's next event."""
        checked = as_dataset(dataset)
        self._inputs[(checked.namespace, checked.name)] = checked
        return checked

    def add_output(self, dataset: DatasetLike) -> Dataset:
        """Add an output dataset found during the run (a ``Dataset`` or a URI); it is sent
        with the run's next event."""
        checked = as_dataset(dataset)
        self._outputs[(checked.namespace, checked.name)] = checked
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
        return {item.event["eventTime"]: item.status for item in stored}

    # -- events, built under the lock; the state moves only if the event is legal -------------

    def _prepare(self, state: RunState, facets: Facets) -> Prepared:
        with self._lock:
            state = check_transition(self._lifecycle, state)
            run_facets = dict(self._run_facets)
            run_facets.update(facets or {})
            when = datetime.now(timezone.utc)
            event = build_event(
                state,
                self.job,
                self.run_id,
                inputs=self.inputs,
                outputs=self.outputs,
                run_facets=run_facets,
                event_time=when,
            )
            if state is not RunState.OTHER:
                self._lifecycle = state
            self.history.append((state, when))
        return event, None if state is RunState.OTHER else state.value

    def _prepare_end(self, outcome: Outcome, facets: Facets, explicit: bool) -> Optional[Prepared]:
        """The terminal event for ``outcome``; ``None`` when the run already ended (an
        explicit second ending raises :class:`InvalidTransitionError` instead)."""
        state = terminal_state(outcome)
        with self._lock:
            if self.ended:
                if explicit:
                    check_transition(self._lifecycle, state)
                return None
            merged = outcome_facets(
                outcome, self._settings.include_stack_trace, self._delivery.secrets
            )
            merged.update(facets or {})
            error = merged.get("errorMessage")
            self.error_message = error.get("message") if isinstance(error, dict) else None
            return self._prepare(state, merged)

    def _check(self, event: Dict[str, Any]) -> Optional[Callable[[Optional[str]], None]]:
        """For a run that began elsewhere: ``event``'s transition checked against the state
        the outbox remembers, inside its transaction (no record: it cannot be checked here)."""
        if not self._checked:
            return None
        new = event["eventType"]

        def still_legal(stored: Optional[str]) -> None:
            if stored is not None:
                check_transition(stored, new)

        return still_legal

    def _withdraw(self, error: LineageDeliveryError) -> None:
        """A strict run whose START was not delivered does not begin, and leaves no lone
        START behind: its ABORT is stored after it, for the same replay."""
        prepared = self._prepare_end(
            Aborted(f"the run did not begin: its START was not delivered ({error})"),
            None,
            explicit=False,
        )
        if prepared is not None:
            self._delivery.keep(*prepared)
        self._closed()

    def _refused(self, previous: Optional[RunState]) -> None:
        """The outbox refused the event just prepared: the run did not move."""
        with self._lock:
            self._lifecycle = previous
            self.history.pop()

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


class Run(_RunBase):
    """A run driven from sync code: ``with lineage_run(...) as run``, :func:`start_run`,
    :func:`resume_run`. Used as ``with run:``, it ends with the block's outcome."""

    #: SIGTERM ends it with ABORT (see :mod:`atlan_ext._sigterm`).
    ends_on_signal = True

    def _send(self, make: Callable[[], Optional[Prepared]]) -> None:
        """Make an event (``make`` checks the transition and moves the state) and deliver it.
        Making it and handing it over are one shielded section: a SIGTERM landing between
        them is handled once the event is handed over, so the ABORT it sends always comes
        after this event, never before it (the wait for Atlan is outside the section)."""
        handed = None
        try:
            with SHIELD:
                previous = self._lifecycle
                prepared = make()
                if prepared is None:
                    return
                try:
                    handed = self._delivery.hand_over(*prepared, check=self._check(prepared[0]))
                except InvalidTransitionError:
                    self._refused(previous)
                    raise
            self._delivery.finish(handed)
        except InvalidTransitionError:
            raise
        except Exception as error:
            self._trouble(error, None)
        finally:
            if self.ended:
                self._closed()

    def _start(self) -> None:
        self._opened()
        try:
            self._send(lambda: self._prepare(RunState.START, None))
        except InvalidTransitionError as error:
            self._trouble(error, None)
        except LineageDeliveryError as error:  # strict: the run does not begin
            self._withdraw(error)
            raise

    def running(self, facets: Facets = None) -> None:
        """Send RUNNING (with extra run facets, e.g. progress)."""
        self._send(lambda: self._prepare(RunState.RUNNING, facets))

    def other(self, facets: Facets = None) -> None:
        """Send OTHER: more facets for the run, at any time before it ends."""
        self._send(lambda: self._prepare(RunState.OTHER, facets))

    def end(self, outcome: Outcome = None, *, facets: Facets = None) -> Optional[RunState]:
        """End the run for ``outcome`` (``None``: success; an exception; a process exit
        status, negative for a signal) and return its terminal state. Idempotent: once the
        run has ended, nothing more is sent and ``None`` is returned."""
        made: List[Prepared] = []

        def make() -> Optional[Prepared]:
            prepared = self._prepare_end(outcome, facets, explicit=False)
            if prepared is not None:
                made.append(prepared)
            return prepared

        self._send(make)
        return self._lifecycle if made else None

    def _end_explicitly(self, outcome: Outcome, facets: Facets) -> None:
        self._send(lambda: self._prepare_end(outcome, facets, explicit=True))

    def complete(self, facets: Facets = None) -> None:
        """End the run with COMPLETE now; the block's exit will not override it."""
        self._end_explicitly(None, facets)

    def verify(self, wait: float = 60.0) -> Receipt:
        """Did this run's lineage land? Asks Atlan, through pyatlan's search, for the job, its
        process and each dataset (linked, partial or missing), polling up to ``wait`` seconds:
        :func:`atlan_ext.verify` for this run, its client and its outbox."""
        from atlan_ext.receipt import verify

        client = self._settings.client
        if isinstance(client, Tenant):
            client = client.client()
        elif client is None or isinstance(client, str):
            client = None  # from ATLAN_BASE_URL and ATLAN_API_KEY
        return verify(self.run_id, wait=wait, outbox=self._delivery.outbox, client=client)

    def fail(self, error: Union[BaseException, str, None] = None, facets: Facets = None) -> None:
        """End the run with FAIL now: ``error`` (an exception, or your message as it is) goes
        in the errorMessage facet."""
        self._end_explicitly(failure(error), facets)

    def abort(self, reason: Optional[str] = None, facets: Facets = None) -> None:
        """End the run with ABORT now, with ``reason`` in the errorMessage facet."""
        self._end_explicitly(Aborted(reason or "aborted"), facets)

    def __enter__(self) -> Run:
        self._enter()
        return self

    def __exit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        self._leave()
        try:
            self.end(error)
        except Exception as lineage_error:
            self._trouble(lineage_error, error)


class AsyncRun(_RunBase):
    """A run driven from async code (``async with lineage_run(...)``, :func:`start_run_async`,
    :func:`resume_run_async`): the sending methods are coroutines. ``add_input`` and
    ``add_output`` send nothing, so they are plain methods here too."""

    async def _send(self, prepared: Optional[Prepared], previous: Optional[RunState]) -> None:
        if prepared is None:
            return
        try:
            await self._delivery.send_async(*prepared, check=self._check(prepared[0]))
        except InvalidTransitionError:
            self._refused(previous)
            raise
        except Exception as error:
            self._trouble(error, None)
        finally:
            if self.ended:
                self._closed()

    async def _start(self) -> None:
        self._opened()
        try:
            await self._send(self._prepare(RunState.START, None), None)
        except InvalidTransitionError as error:
            self._trouble(error, None)
        except LineageDeliveryError as error:  # strict: the run does not begin
            self._withdraw(error)
            raise

    async def running(self, facets: Facets = None) -> None:
        """Send RUNNING (with extra run facets, e.g. progress)."""
        previous = self._lifecycle
        await self._send(self._prepare(RunState.RUNNING, facets), previous)

    async def other(self, facets: Facets = None) -> None:
        """Send OTHER: more facets for the run, at any time before it ends."""
        previous = self._lifecycle
        await self._send(self._prepare(RunState.OTHER, facets), previous)

    async def end(self, outcome: Outcome = None, *, facets: Facets = None) -> Optional[RunState]:
        """:meth:`Run.end` for async code."""
        previous = self._lifecycle
        prepared = self._prepare_end(outcome, facets, explicit=False)
        await self._send(prepared, previous)
        return self._lifecycle if prepared is not None else None

    async def _end_explicitly(self, outcome: Outcome, facets: Facets) -> None:
        previous = self._lifecycle
        await self._send(self._prepare_end(outcome, facets, explicit=True), previous)

    async def complete(self, facets: Facets = None) -> None:
        """End the run with COMPLETE now; the block's exit will not override it."""
        await self._end_explicitly(None, facets)

    async def fail(
        self, error: Union[BaseException, str, None] = None, facets: Facets = None
    ) -> None:
        """End the run with FAIL now, with ``error`` in the errorMessage facet."""
        await self._end_explicitly(failure(error), facets)

    async def abort(self, reason: Optional[str] = None, facets: Facets = None) -> None:
        """End the run with ABORT now, with ``reason`` in the errorMessage facet."""
        await self._end_explicitly(Aborted(reason or "aborted"), facets)

    async def __aenter__(self) -> AsyncRun:
        self._enter()
        return self

    async def __aexit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        self._leave()
        try:
            await self.end(error)
        except Exception as lineage_error:
            self._trouble(lineage_error, error)


# -- making runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A run's arguments, checked once: every run of a :class:`lineage_run` (and the one of
    a :func:`start_run`) is built from one."""

    job: Job
    settings: _Settings
    run_id: Optional[str]  # None: a fresh one per run
    parent: Optional[Parent]  # None: the enclosing run's, or the environment's, per run
    inputs: Tuple[Dataset, ...]
    outputs: Tuple[Dataset, ...]


def _plan(
    job: object,
    run_id: Optional[object],
    parent: object,
    inputs: Iterable[DatasetLike],
    outputs: Iterable[DatasetLike],
    options: Dict[str, Any],
) -> _Plan:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _OPTIONS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InvalidOptionError(
            f"{name!r} is not an option; {hint}the options are inputs, outputs, run_id, "
            f"parent, {', '.join(_OPTIONS)}"
        )
    checked_job = as_job(job)
    return _Plan(
        checked_job,
        _settings(checked_job, **options),
        RunId.check(run_id) if run_id is not None else None,
        Parent.parse(parent) if parent is not None else None,
        tuple(_datasets(inputs, "inputs")),
        tuple(_datasets(outputs, "outputs")),
    )


def _make(cls: Any, plan: _Plan, resumed: bool) -> Any:
    settings = plan.settings
    if cls is Run and settings.client is not None and is_async_client(settings.client):
        raise InvalidClientError(
            "a plain `with` (or a sync function) needs pyatlan's sync AtlanClient; use "
            "`async with` (or an async function) for an AsyncAtlanClient"
        )
    parent = plan.parent
    if parent is None:
        enclosing = _current.get()
        parent = enclosing.as_parent() if enclosing is not None else Parent.from_env()
    run_id = plan.run_id if plan.run_id is not None else RunId.new()
    return cls(plan.job, run_id, settings, plan.inputs, plan.outputs, parent, resumed)


def _begin(plan: _Plan) -> Run:
    run = cast(Run, _make(Run, plan, False))
    run._start()
    return run


async def _begin_async(plan: _Plan) -> AsyncRun:
    run = cast(AsyncRun, _make(AsyncRun, plan, False))
    await run._start()
    return run


def start_run(
    job: object,
    *,
    inputs: Iterable[DatasetLike] = (),
    outputs: Iterable[DatasetLike] = (),
    run_id: Optional[object] = None,
    parent: object = None,
    **options: Any,
) -> Run:
    """Send START for a new run of ``job`` and return the :class:`Run`; end it with
    :meth:`Run.end` (or ``complete()``, ``fail()``, ``abort()``), or use it as ``with run:``.

    ``parent``: the run that started this one (a run, :class:`atlan_ext.Parent`,
    ``(run_id, namespace, name)`` or ``"namespace/name/runId"``); by default the enclosing
    run of this thread or task, else ``OPENLINEAGE_CONTEXT`` / ``OPENLINEAGE_PARENT_ID``.
    ``options`` are those of :class:`lineage_run`.
    """
    return _begin(_plan(job, run_id, parent, inputs, outputs, options))


async def start_run_async(
    job: object,
    *,
    inputs: Iterable[DatasetLike] = (),
    outputs: Iterable[DatasetLike] = (),
    run_id: Optional[object] = None,
    parent: object = None,
    **options: Any,
) -> AsyncRun:
    """:func:`start_run` for async code (an ``AsyncAtlanClient``, or none)."""
    return await _begin_async(_plan(job, run_id, parent, inputs, outputs, options))


def resume_run(
    job: object,
    run_id: object,
    *,
    inputs: Iterable[DatasetLike] = (),
    outputs: Iterable[DatasetLike] = (),
    parent: object = None,
    **options: Any,
) -> Run:
    """A run started elsewhere (another process or host, e.g. with ``RunId.from_key``):
    no START is sent; the run's state begins at START, so ``running()``, ``complete()``,
    ``fail()`` and ``abort()`` are checked as usual, and against what this machine's outbox
    remembers of the run. As ``with resume_run(...) as run:`` it ends with the block."""
    run = cast(Run, _make(Run, _plan(job, run_id, parent, inputs, outputs, options), True))
    run._opened()
    return run


def resume_run_async(
    job: object,
    run_id: object,
    *,
    inputs: Iterable[DatasetLike] = (),
    outputs: Iterable[DatasetLike] = (),
    parent: object = None,
    **options: Any,
) -> AsyncRun:
    """:func:`resume_run` for async code: its sending methods are coroutines."""
    plan = _plan(job, run_id, parent, inputs, outputs, options)
    run = cast(AsyncRun, _make(AsyncRun, plan, True))
    run._opened()
    return run


class lineage_run:
    """Report one unit of work as an OpenLineage run: START, then exactly one of COMPLETE,
    FAIL or ABORT.

    ::

        with lineage_run(job, client=client, inputs=[...], outputs=[...]) as run:
            load()
            run.add_output("snowflake://acct/ANALYTICS.PUBLIC.ORDERS_DAILY")

        @lineage_run(job, client=client)
        def load(): ...

    ``client``: pyatlan ``AtlanClient`` or ``AsyncAtlanClient`` (``async with`` only); with
    ``None``, one is built from ``ATLAN_BASE_URL`` and ``ATLAN_API_KEY``, and with neither set,
    events are kept in the local outbox; ``"local"`` keeps them there in any case.
    ``connector_type``: the Atlan OpenLineage connector.
    ``run_id``: a given UUID (e.g. ``RunId.from_key(...)``) instead of a fresh one.
    ``parent``: see :func:`start_run`.
    ``delivery_timeout``: the longest one send may hold the job. ``background``: never wait for
    Atlan. ``strict``: raise delivery errors instead of logging them. ``include_stack_trace``:
    put the stack trace in FAIL events (turn off when errors may hold secrets).
    ``run_facets``: extra run facets on every event (e.g. ``facets.nominal_time(...)``).
    """

    def __init__(self, job: object, **options: Any) -> None:
        # Every argument is checked now, before anything is sent, and kept checked: each use
        # builds its run afresh from the same plan, as start_run does.
        rest = {
            key: value
            for key, value in options.items()
            if key not in ("inputs", "outputs", "run_id", "parent")
        }
        self._plan = _plan(
            job,
            options.get("run_id"),
            options.get("parent"),
            options.get("inputs", ()),
            options.get("outputs", ()),
            rest,
        )
        self._run: Optional[_RunBase] = None

    def _fresh(self) -> lineage_run:
        helper: lineage_run = object.__new__(lineage_run)
        helper._plan = self._plan
        helper._run = None
        return helper

    def _claim(self) -> None:
        if self._run is not None:
            raise RunInUseError(
                "this lineage_run is already in use: create one per run (or use it as a "
                "decorator, which makes a fresh run per call)"
            )

    def __enter__(self) -> Run:
        self._claim()
        run = _begin(self._plan)
        self._run = run
        return run.__enter__()

    def __exit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        run, self._run = cast(Run, self._run), None
        run.__exit__(kind, error, trace)

    async def __aenter__(self) -> AsyncRun:
        self._claim()
        run = await _begin_async(self._plan)
        self._run = run
        return await run.__aenter__()

    async def __aexit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        run, self._run = cast(AsyncRun, self._run), None
        await run.__aexit__(kind, error, trace)

    # -- decorator ----------------------------------------------------------------------------

    def __call__(self, func: F) -> F:
        """Decorate ``func``: each call is one fresh run (generators: the whole iteration)."""
        if inspect.isasyncgenfunction(func):
            return cast(F, self._wrap_async_generator(func))
        if inspect.isgeneratorfunction(func):
            return cast(F, self._wrap_generator(func))
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_coroutine(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await func(*args, **kwargs)

            return cast(F, run_coroutine)
        if not callable(func):
            raise InvalidOptionError(f"lineage_run decorates a function, got {func!r}")

        @functools.wraps(func)
        def run_function(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return cast(F, run_function)

    def _wrap_generator(self, func: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(func)
        def run_generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            # START on the first next(), not when the generator object is made; the run ends
            # when the iteration does (closed early: ABORT).
            with self._fresh():
                return (yield from func(*args, **kwargs))

        return run_generator

    def _wrap_async_generator(
        self, func: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        @functools.wraps(func)
        async def run_async_generator(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async with self._fresh():
                inner = func(*args, **kwargs)
                try:
                    value = await inner.__anext__()
                except StopAsyncIteration:
                    return
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        await inner.aclose()  # type: ignore[attr-defined]
                        raise
                    except BaseException as thrown:
                        try:
                            value = await inner.athrow(thrown)  # type: ignore[attr-defined]
                        except StopAsyncIteration:
                            return
                    else:
                        try:
                            value = await inner.asend(sent)  # type: ignore[attr-defined]
                        except StopAsyncIteration:
                            return

        return run_async_generator
