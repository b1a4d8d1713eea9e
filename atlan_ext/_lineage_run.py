"""``lineage_run``: :func:`atlan_ext.start_run` plus ``Run.end`` on every way out, as ``with``,
``async with`` and decorator (of functions, coroutines, generators and async generators).

Each use, and each call of a decorated function, builds a fresh run from the arguments checked
once in ``__init__``; the run ends through its own ``__exit__`` / ``__aexit__``, so through
``Run.end`` like every other way a run ends. Public through :mod:`atlan_ext.run`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, AsyncIterator, Callable, Iterator, Optional, TypeVar, cast

from atlan_ext._run_base import RunBase
from atlan_ext._run_plan import make_plan
from atlan_ext._runs import AsyncRun, Run, begin, begin_async
from atlan_ext.exceptions import InvalidOptionError, RunInUseError

__all__ = ["lineage_run"]

F = TypeVar("F", bound=Callable[..., Any])


def _in_use() -> RunInUseError:
    return RunInUseError(
        "this lineage_run is already in use: create one per run (or use it as a decorator, "
        "which makes a fresh run per call)"
    )


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
        self._plan = make_plan(
            job,
            options.pop("run_id", None),
            options.pop("parent", None),
            options.pop("inputs", ()),
            options.pop("outputs", ()),
            options,  # the rest (a dict of this call's own)
        )
        self._run: Optional[RunBase] = None

    def _fresh(self) -> lineage_run:
        helper: lineage_run = object.__new__(lineage_run)
        helper._plan = self._plan
        helper._run = None
        return helper

    def __enter__(self) -> Run:
        if self._run is not None:
            raise _in_use()
        run = begin(self._plan)
        self._run = run
        return run.__enter__()

    def __exit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        run: Any = self._run  # the Run of __enter__
        self._run = None
        run.__exit__(kind, error, trace)

    async def __aenter__(self) -> AsyncRun:
        if self._run is not None:
            raise _in_use()
        run = await begin_async(self._plan)
        self._run = run
        return await run.__aenter__()

    async def __aexit__(self, kind: Any, error: Optional[BaseException], trace: Any) -> None:
        run: Any = self._run  # the AsyncRun of __aenter__
        self._run = None
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
