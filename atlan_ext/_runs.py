"""The runs: :class:`Run` (sync) and :class:`AsyncRun`, and the functions that make them.

They differ only at the I/O edge (how an event is handed over and awaited); state, events and
the one way a run ends live in :class:`atlan_ext._run_base.RunBase`. :func:`start_run` sends
START; :func:`resume_run` takes up a run started elsewhere. All are public through
:mod:`atlan_ext.run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Union, cast

from atlan_ext._outcome import Aborted, failure
from atlan_ext._run_base import Facets, RunBase, current_run
from atlan_ext._run_plan import Plan, make_plan
from atlan_ext._state import SHIELD, STATE
from atlan_ext._store import Item
from atlan_ext.events import DatasetLike, RunId
from atlan_ext.exceptions import (
    InvalidClientError,
    InvalidFacetError,
    InvalidOutcomeError,
    InvalidTransitionError,
    LineageDeliveryError,
    TenantSettingsError,
)
from atlan_ext.parent import Parent
from atlan_ext.send import Tenant
from atlan_ext.states import Outcome, RunState

if TYPE_CHECKING:
    from atlan_ext.receipt import Receipt

__all__ = [
    "AsyncRun",
    "Run",
    "begin",
    "begin_async",
    "resume_run",
    "resume_run_async",
    "start_run",
    "start_run_async",
]


class Run(RunBase):
    """A run driven from sync code: ``with lineage_run(...) as run``, :func:`start_run`,
    :func:`resume_run`. Used as ``with run:``, it ends with the block's outcome."""

    #: SIGTERM ends it with ABORT (see :mod:`atlan_ext._sigterm`).
    ends_on_signal = True

    def _send(self, make: Callable[..., Optional[Item]], *args: Any) -> bool:
        """Make an event (``make(*args)``: a ``_prepare`` that checks the transition and
        moves the state) and deliver it; False when none was made (the run had ended, or
        making it failed and was logged; a bad outcome, facet or transition is raised).
        Making it and handing it over are one shielded section: a SIGTERM landing between
        them is handled once the event is handed over, so the ABORT it sends always comes
        after this event, never before it (the wait for Atlan is outside the section)."""
        made = False
        try:
            with SHIELD:
                previous = self._lifecycle
                self.making = True  # on another thread, SIGTERM's handler waits for it
                try:
                    item = make(*args)
                    if item is None:
                        return False
                    made = True
                    try:
                        handed = self._delivery.hand_over(
                            item, self._check(item) if self._checked else None
                        )
                    except InvalidTransitionError:
                        self._refused(previous)
                        raise
                finally:
                    self.making = False
            if handed is not None:
                self._delivery.finish(handed)
        except (InvalidTransitionError, InvalidOutcomeError, InvalidFacetError):
            raise  # the caller's mistake (as from an async run): nothing was made or sent
        except Exception as error:
            self._trouble(error, None)
        finally:
            if self.ended:
                self._closed()
        return made

    def _start(self) -> None:
        self._opened()
        try:
            self._send(self._prepare, RunState.START, None)
        except InvalidTransitionError as error:
            self._trouble(error, None)
        except LineageDeliveryError as error:  # strict: the run does not begin
            self._withdraw(error)
            raise

    def running(self, facets: Facets = None) -> None:
        """Send RUNNING (with extra run facets, e.g. progress)."""
        self._send(self._prepare, RunState.RUNNING, facets)

    def other(self, facets: Facets = None) -> None:
        """Send OTHER: more facets for the run, at any time before it ends."""
        self._send(self._prepare, RunState.OTHER, facets)

    def end(self, outcome: Outcome = None, *, facets: Facets = None) -> Optional[RunState]:
        """End the run for ``outcome`` (``None``: success; an exception; a process exit
        status, negative for a signal) and return its terminal state. Idempotent: once the
        run has ended, nothing more is sent and ``None`` is returned."""
        made = self._send(self._prepare_end, outcome, facets, False)
        return self._lifecycle if made else None

    def _end_explicitly(self, outcome: Outcome, facets: Facets) -> None:
        self._send(self._prepare_end, outcome, facets, True)

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


class AsyncRun(RunBase):
    """A run driven from async code (``async with lineage_run(...)``, :func:`start_run_async`,
    :func:`resume_run_async`): the sending methods are coroutines. ``add_input`` and
    ``add_output`` send nothing, so they are plain methods here too."""

    async def _send(self, item: Optional[Item], previous: Optional[RunState]) -> None:
        if item is None:
            return
        try:
            await self._delivery.send_async(item, self._check(item) if self._checked else None)
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


def _make(cls: Any, plan: Plan, resumed: bool) -> Any:
    parent = plan.parent
    if parent is None:
        enclosing = current_run()
        parent = enclosing.as_parent() if enclosing is not None else Parent.from_env()
    run_id = plan.run_id if plan.run_id is not None else RunId.new()
    run = cls(plan, run_id, parent, resumed)
    delivery = run._delivery
    if cls is Run and delivery.is_async:  # made, nothing sent
        raise InvalidClientError(
            "a plain `with` (or a sync function) needs pyatlan's sync AtlanClient; use "
            "`async with` (or an async function) for an AsyncAtlanClient"
        )
    if delivery.strict and delivery.unconfigured and not STATE.captures:  # none made
        raise TenantSettingsError(
            f"{delivery.unconfigured}; strict=True needs a tenant (client='local' keeps "
            "lineage in the local outbox instead)",
            retryable=False,
        )
    return run


def begin(plan: Plan) -> Run:
    """A new sync run of ``plan``, its START sent."""
    run: Run = _make(Run, plan, False)
    run._start()
    return run


async def begin_async(plan: Plan) -> AsyncRun:
    """A new async run of ``plan``, its START sent."""
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
    return begin(make_plan(job, run_id, parent, inputs, outputs, options))


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
    return await begin_async(make_plan(job, run_id, parent, inputs, outputs, options))


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
    run = cast(Run, _make(Run, make_plan(job, run_id, parent, inputs, outputs, options), True))
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
    plan = make_plan(job, run_id, parent, inputs, outputs, options)
    run = cast(AsyncRun, _make(AsyncRun, plan, True))
    run._opened()
    return run
