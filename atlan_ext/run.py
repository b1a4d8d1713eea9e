"""``lineage_run``: START before a unit of work, exactly one terminal event after it.

One object serves as ``with``, ``async with`` and decorator of sync, async, generator and
async generator functions; every use gets a fresh run. However the work ends, the terminal
state comes from :func:`atlan_ext.terminal_state`, through one function (:meth:`_Run._finish`)
that the notebook magic and the command line use too. The user's exception is re-raised
unchanged, and a failure to send lineage never replaces it or the function's return value
(unless ``strict=True`` and the work itself succeeded).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import signal
import threading
import traceback
from datetime import datetime, timezone
from typing import (
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
    Type,
    TypeVar,
    Union,
    cast,
)

from atlan_ext import facets as _facets
from atlan_ext.delivery import Delivery
from atlan_ext.events import Dataset, DatasetLike, Job, RunId, as_dataset, as_job, build_event
from atlan_ext.exceptions import LineageDeliveryError
from atlan_ext.outbox import Outbox
from atlan_ext.send import client_from_env
from atlan_ext.states import Outcome, RunState, check_transition, terminal_state

__all__ = ["AsyncRun", "Run", "current_run", "lineage_run"]

log = logging.getLogger("atlan_ext")

F = TypeVar("F", bound=Callable[..., Any])
Facets = Optional[Mapping[str, Any]]

_current: contextvars.ContextVar[Optional[_Run]] = contextvars.ContextVar(
    "atlan_ext_current_run", default=None
)


def current_run() -> Optional[_Run]:
    """The innermost run of this thread or task, or ``None``."""
    return _current.get()


class _Aborted(BaseException):
    """Stands for an explicit abort(reason): an interruption, not an error."""


def _outcome_facets(outcome: Outcome, include_stack_trace: bool) -> Dict[str, Any]:
    """The errorMessage facet for how a unit of work ended (none for success)."""
    if terminal_state(outcome) is RunState.COMPLETE:
        return {}
    stack: Optional[str] = None
    if isinstance(outcome, _Aborted):
        message = str(outcome)
    elif isinstance(outcome, BaseException):
        text = str(outcome)
        message = f"{type(outcome).__name__}: {text}" if text else type(outcome).__name__
        if include_stack_trace:
            stack = "".join(
                traceback.format_exception(type(outcome), outcome, outcome.__traceback__)
            )
    elif isinstance(outcome, int) and outcome > 0:
        message = f"the command exited with status {outcome}"
    else:
        number = -int(cast(int, outcome))
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        message = f"the command was killed by {name} ({number})"
    return {"errorMessage": _facets.error_message(message, stack_trace=stack)}


class _Run:
    """What the sync and async run objects share: state, datasets, and event building."""

    def __init__(
        self,
        job: Job,
        delivery: Delivery,
        run_id: str,
        inputs: Iterable[Dataset],
        outputs: Iterable[Dataset],
        run_facets: Dict[str, Any],
        include_stack_trace: bool,
    ) -> None:
        self.job = job
        self.run_id = run_id
        self._delivery = delivery
        self._inputs: Dict[Tuple[str, str], Dataset] = {}
        self._outputs: Dict[Tuple[str, str], Dataset] = {}
        for dataset in inputs:
            self._inputs[(dataset.namespace, dataset.name)] = dataset
        for dataset in outputs:
            self._outputs[(dataset.namespace, dataset.name)] = dataset
        self._run_facets = run_facets
        self._include_stack_trace = include_stack_trace
        self._lock = threading.Lock()
        self._lifecycle: Optional[RunState] = None
        self.history: List[Tuple[RunState, datetime]] = []

    def __repr__(self) -> str:
        state = self._lifecycle.value if self._lifecycle else "not started"
        return f"<{type(self).__name__} {self.job.namespace}/{self.job.name} {self.run_id} {state}>"

    def _repr_html_(self) -> str:
        """The run in a notebook: job, id, state, duration, events with delivery, datasets."""
        from atlan_ext.notebook import run_html

        return run_html(self)

    @property
    def state(self) -> Optional[RunState]:
        """The run's lifecycle state: the last of START, RUNNING, COMPLETE, ABORT, FAIL sent."""
        return self._lifecycle

    @property
    def inputs(self) -> List[Dataset]:
        """The run's input datasets so far."""
        return list(self._inputs.values())

    @property
    def outputs(self) -> List[Dataset]:
        """The run's output datasets so far."""
        return list(self._outputs.values())

    def add_input(self, dataset: DatasetLike) -> Dataset:
        """Add an input dataset found during the run (a ``Dataset`` or a URI)."""
        checked = as_dataset(dataset)
        self._inputs[(checked.namespace, checked.name)] = checked
        return checked

    def add_output(self, dataset: DatasetLike) -> Dataset:
        """Add an output dataset found during the run (a ``Dataset`` or a URI)."""
        checked = as_dataset(dataset)
        self._outputs[(checked.namespace, checked.name)] = checked
        return checked

    def _event(self, state: RunState, facets: Facets) -> Tuple[Dict[str, Any], Optional[str]]:
        """Check the transition and build the event; the run's state moves only if both pass."""
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

    def _terminal_event(
        self, outcome: Outcome, facets: Facets
    ) -> Tuple[Dict[str, Any], Optional[str]]:
        merged = _outcome_facets(outcome, self._include_stack_trace)
        merged.update(facets or {})
        return self._event(terminal_state(outcome), merged)

    @property
    def ended(self) -> bool:
        """True once a terminal event was made for the run."""
        return self._lifecycle is not None and self._lifecycle.is_terminal

    def _finish(self, outcome: Outcome) -> None:
        """End the run for ``outcome``, unless an explicit terminal call already did.

        The one way every helper ends a run (context manager, decorator, magic, CLI).
        """
        if not self.ended:
            self._delivery.send(*self._terminal_event(outcome, None))

    async def _finish_async(self, outcome: Outcome) -> None:
        if not self.ended:
            await self._delivery.send_async(*self._terminal_event(outcome, None))


def _failure(error: Union[BaseException, str, None]) -> Outcome:
    if isinstance(error, BaseException):
        return error
    return RuntimeError(error or "failed")


class Run(_Run):
    """The run inside a ``with lineage_run(...)`` block or a decorated sync function."""

    def running(self, facets: Facets = None) -> None:
        """Send RUNNING (with extra run facets, e.g. progress)."""
        self._delivery.send(*self._event(RunState.RUNNING, facets))

    def other(self, facets: Facets = None) -> None:
        """Send OTHER: more facets for the run, at any time before it ends."""
        self._delivery.send(*self._event(RunState.OTHER, facets))

    def complete(self, facets: Facets = None) -> None:
        """End the run with COMPLETE now; the block's exit will not override it."""
        self._delivery.send(*self._terminal_event(None, facets))

    def fail(self, error: Union[BaseException, str, None] = None, facets: Facets = None) -> None:
        """End the run with FAIL now, with ``error`` in the errorMessage facet."""
        self._delivery.send(*self._terminal_event(_failure(error), facets))

    def abort(self, reason: Optional[str] = None, facets: Facets = None) -> None:
        """End the run with ABORT now, with ``reason`` in the errorMessage facet."""
        self._delivery.send(*self._terminal_event(_Aborted(reason or "aborted"), facets))


class AsyncRun(_Run):
    """The run inside ``async with lineage_run(...)`` or a decorated async function: the
    sending methods are coroutines."""

    async def running(self, facets: Facets = None) -> None:
        """Send RUNNING (with extra run facets, e.g. progress)."""
        await self._delivery.send_async(*self._event(RunState.RUNNING, facets))

    async def other(self, facets: Facets = None) -> None:
        """Send OTHER: more facets for the run, at any time before it ends."""
        await self._delivery.send_async(*self._event(RunState.OTHER, facets))

    async def complete(self, facets: Facets = None) -> None:
        """End the run with COMPLETE now; the block's exit will not override it."""
        await self._delivery.send_async(*self._terminal_event(None, facets))

    async def fail(
        self, error: Union[BaseException, str, None] = None, facets: Facets = None
    ) -> None:
        """End the run with FAIL now, with ``error`` in the errorMessage facet."""
        await self._delivery.send_async(*self._terminal_event(_failure(error), facets))

    async def abort(self, reason: Optional[str] = None, facets: Facets = None) -> None:
        """End the run with ABORT now, with ``reason`` in the errorMessage facet."""
        await self._delivery.send_async(
            *self._terminal_event(_Aborted(reason or "aborted"), facets)
        )


_env_clients: Dict[Tuple[str, str], Any] = {}
_env_lock = threading.Lock()


def _env_client() -> Any:
    import os

    key = (os.environ.get("ATLAN_BASE_URL", ""), os.environ.get("ATLAN_API_KEY", ""))
    if not all(key):
        return None
    with _env_lock:
        if key not in _env_clients:
            _env_clients[key] = client_from_env()
        return _env_clients[key]


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
    ``delivery_timeout``: the longest one send may hold the job. ``background``: never wait for
    Atlan. ``strict``: raise delivery errors instead of logging them. ``include_stack_trace``:
    put the stack trace in FAIL events (turn off when errors may hold secrets).
    ``run_facets``: extra run facets on every event (e.g. ``facets.nominal_time(...)``).
    """

    def __init__(
        self,
        job: Any,
        *,
        client: Any = None,
        inputs: Iterable[DatasetLike] = (),
        outputs: Iterable[DatasetLike] = (),
        connector_type: object = "spark",
        run_id: Optional[object] = None,
        strict: bool = False,
        delivery_timeout: float = 10.0,
        background: bool = False,
        include_stack_trace: bool = True,
        run_facets: Facets = None,
        outbox: Optional[Outbox] = None,
    ) -> None:
        self._job = as_job(job)
        self._inputs = [as_dataset(item) for item in inputs]
        self._outputs = [as_dataset(item) for item in outputs]
        self._run_id = RunId.check(run_id) if run_id is not None else None
        if isinstance(client, str) and client != "local":
            raise TypeError(
                f"client must be a pyatlan AtlanClient, AsyncAtlanClient, None or 'local', "
                f"got {client!r}"
            )
        self._client = client
        if strict and background:
            raise ValueError(
                "strict=True raises when Atlan does not accept an event, so it must wait for "
                "the answer: it cannot be combined with background=True"
            )
        # Checks the connector, the timeout and the facets now, before anything is sent.
        Delivery(None, connector_type, timeout=delivery_timeout)
        build_event(RunState.OTHER, self._job, RunId.new(), run_facets=run_facets)
        self._options: Dict[str, Any] = {
            "connector": connector_type,
            "timeout": delivery_timeout,
            "background": background,
            "strict": strict,
        }
        self._strict = strict
        self._include_stack_trace = include_stack_trace
        self._run_facets = dict(run_facets or {})
        self._outbox = outbox
        self._active: Optional[Tuple[_Run, contextvars.Token[Optional[_Run]]]] = None

    def _copy(self) -> lineage_run:
        """A fresh helper with the same settings, for one call of a decorated function."""
        fresh = object.__new__(lineage_run)
        fresh.__dict__.update(self.__dict__)
        fresh._active = None
        return fresh

    def _open(self, cls: Type[_Run]) -> _Run:
        if self._active is not None:
            raise RuntimeError(
                "this lineage_run is already in use: create one per run (or use it as a "
                "decorator, which makes a fresh run per call)"
            )
        if isinstance(self._client, str):  # "local": __init__ refuses any other string
            client = None
        else:
            client = self._client if self._client is not None else _env_client()
        delivery = Delivery(client, outbox=self._outbox, **self._options)
        run_facets = dict(self._run_facets)
        parent = _current.get()
        if parent is not None:
            root = parent._run_facets.get("parent", {}).get("root") or {
                "run": {"runId": parent.run_id},
                "job": {"namespace": parent.job.namespace, "name": parent.job.name},
            }
            run_facets["parent"] = _facets.parent(
                parent.run_id,
                parent.job.namespace,
                parent.job.name,
                root=(root["run"]["runId"], root["job"]["namespace"], root["job"]["name"]),
            )
        run = cls(
            self._job,
            delivery,
            self._run_id or RunId.new(),
            self._inputs,
            self._outputs,
            run_facets,
            self._include_stack_trace,
        )
        self._active = (run, _current.set(run))
        return run

    def _close(self) -> _Run:
        assert self._active is not None
        run, token = self._active
        self._active = None
        try:
            _current.reset(token)
        except ValueError:  # exited in another context (a generator finished elsewhere)
            _current.set(None)
        return run

    def _lineage_trouble(self, error: Exception, user_error: Optional[BaseException]) -> None:
        """Decide what a lineage failure does: raise only in strict mode, and never over the
        user's own exception."""
        if self._strict and user_error is None:
            raise error
        if not isinstance(error, LineageDeliveryError):
            log.warning("atlan_ext: lineage not recorded: %s", error, exc_info=error)

    # -- with ---------------------------------------------------------------------------------

    def __enter__(self) -> Run:
        run = cast(Run, self._open(Run))
        if run._delivery.is_async:
            self._close()
            raise TypeError(
                "a plain `with` (or a sync function) needs pyatlan's sync AtlanClient; use "
                "`async with` (or an async function) for an AsyncAtlanClient"
            )
        try:
            run._delivery.send(*run._event(RunState.START, None))
        except Exception as error:
            if self._strict:
                self._close()
            self._lineage_trouble(error, None)
        return run

    def __exit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        run = self._close()
        try:
            run._finish(error)
        except Exception as lineage_error:
            self._lineage_trouble(lineage_error, error)

    # -- async with ---------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncRun:
        run = cast(AsyncRun, self._open(AsyncRun))
        try:
            await run._delivery.send_async(*run._event(RunState.START, None))
        except Exception as error:
            if self._strict:
                self._close()
            self._lineage_trouble(error, None)
        return run

    async def __aexit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        run = self._close()
        try:
            await run._finish_async(error)
        except Exception as lineage_error:
            self._lineage_trouble(lineage_error, error)

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
                async with self._copy():
                    return await func(*args, **kwargs)

            return cast(F, run_coroutine)
        if not callable(func):
            raise TypeError(f"lineage_run decorates a function, got {func!r}")

        @functools.wraps(func)
        def run_function(*args: Any, **kwargs: Any) -> Any:
            with self._copy():
                return func(*args, **kwargs)

        return cast(F, run_function)

    def _wrap_generator(self, func: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(func)
        def run_generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            # START on the first next(), not when the generator object is made; the run ends
            # when the iteration does (closed early: ABORT).
            with self._copy():
                return (yield from func(*args, **kwargs))

        return run_generator

    def _wrap_async_generator(
        self, func: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        @functools.wraps(func)
        async def run_async_generator(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async with self._copy():
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
