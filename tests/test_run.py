"""lineage_run pairs START with exactly one terminal event, whatever the work does."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, AsyncIterator, Dict, Iterator, List

import pytest

from atlan_ext import (
    InvalidDatasetError,
    InvalidFacetError,
    InvalidJobError,
    InvalidOutcomeError,
    InvalidTransitionError,
    Job,
    RunId,
    RunState,
    UnsupportedConnectorError,
    lineage_run,
    start_run,
    start_run_async,
)
from atlan_ext.run import current_run
from atlan_ext.testing import assert_paired, capture_lineage, datasets_of, runs_of

JOB = Job("ol-spark", "nightly_orders_load", job_type="DAG")
IN = "snowflake://acct/RAW.PUBLIC.ORDERS"
OUT = "snowflake://acct/ANALYTICS.PUBLIC.ORDERS"
Events = List[Dict[str, Any]]


def states(events: Events) -> List[str]:
    return [event["eventType"] for event in events]


def error_facet(event: Dict[str, Any]) -> Dict[str, Any]:
    facet: Dict[str, Any] = event["run"]["facets"]["errorMessage"]
    return facet


class TestContextManager:
    def test_success(self, validate_event: Any) -> None:
        """START before the body, COMPLETE after, with the datasets on both."""
        with capture_lineage() as events:
            with lineage_run(JOB, inputs=[IN], outputs=[OUT]) as run:
                assert states(events) == ["START"]
                run.add_output("snowflake://acct/ANALYTICS.PUBLIC.ORDERS_DAILY")
        assert states(events) == ["START", "COMPLETE"]
        assert run.state is RunState.COMPLETE
        assert {e["run"]["runId"] for e in events} == {run.run_id}
        inputs, outputs = datasets_of(events[-1:], run.run_id)
        assert inputs == [IN]
        assert outputs == [OUT, "snowflake://acct/ANALYTICS.PUBLIC.ORDERS_DAILY"]
        for event in events:
            validate_event(event)

    def test_exception_is_fail_and_reraised_unchanged(self, validate_event: Any) -> None:
        """An exception ends the run with FAIL and an errorMessage facet, and reaches the
        caller as the very same object."""
        boom = ValueError("no such table")
        with capture_lineage() as events, pytest.raises(ValueError) as caught:
            with lineage_run(JOB):
                raise boom
        assert caught.value is boom
        assert states(events) == ["START", "FAIL"]
        facet = error_facet(events[-1])
        assert facet["message"] == "ValueError: no such table"
        assert facet["programmingLanguage"] == "python"
        assert "raise boom" in facet["stackTrace"]
        validate_event(events[-1])

    def test_stack_trace_can_be_left_out(self) -> None:
        """include_stack_trace=False keeps the message and drops the stack."""
        with capture_lineage() as events, pytest.raises(RuntimeError):
            with lineage_run(JOB, include_stack_trace=False):
                raise RuntimeError("password=hunter2 in a traceback")
        assert "stackTrace" not in error_facet(events[-1])

    @pytest.mark.parametrize("interruption", [KeyboardInterrupt, GeneratorExit])
    def test_interruption_is_abort(self, interruption: type) -> None:
        """KeyboardInterrupt and GeneratorExit end the run with ABORT, and propagate."""
        with capture_lineage() as events, pytest.raises(interruption), lineage_run(JOB):
            raise interruption()
        assert states(events) == ["START", "ABORT"]

    @pytest.mark.parametrize(("code", "state"), [(0, "COMPLETE"), (None, "COMPLETE"), (3, "FAIL")])
    def test_system_exit_by_code(self, code: Any, state: str) -> None:
        """SystemExit ends the run by its code, and still exits."""
        with capture_lineage() as events, pytest.raises(SystemExit), lineage_run(JOB):
            sys.exit(code)
        assert states(events) == ["START", state]

    def test_explicit_states(self) -> None:
        """running() and other() send their states; complete() is sticky: the exit sends
        nothing more, even when the body raises afterwards."""
        with capture_lineage() as events, pytest.raises(KeyError), lineage_run(JOB) as run:
            run.other(
                facets={"note": {"_producer": "https://x.io", "_schemaURL": "https://x.io/s"}}
            )
            run.running()
            run.running()
            run.complete()
            raise KeyError("after complete")
        assert states(events) == ["START", "OTHER", "RUNNING", "RUNNING", "COMPLETE"]
        assert "note" in events[1]["run"]["facets"]

    def test_second_terminal_call_raises(self) -> None:
        """A second terminal call raises InvalidTransitionError; nothing more is sent."""
        with capture_lineage() as events, lineage_run(JOB) as run:
            run.fail("bad input")
            with pytest.raises(InvalidTransitionError, match="already ended with FAIL"):
                run.complete()
        assert states(events) == ["START", "FAIL"]
        assert error_facet(events[-1])["message"] == "bad input"  # your words, as given

    def test_other_after_the_end(self, validate_event: Any) -> None:
        """OTHER after the terminal event is sent (the spec: "additional metadata after the
        run is complete"); the run stays ended and the whole run passes assert_paired."""
        note = {"note": {"_producer": "https://x.io", "_schemaURL": "https://x.io/s"}}
        with capture_lineage() as events:
            with lineage_run(JOB) as run:
                pass
            run.other(facets=note)
        assert states(events) == ["START", "COMPLETE", "OTHER"]
        assert run.state is RunState.COMPLETE
        assert "note" in events[-1]["run"]["facets"]
        assert_paired(events)
        validate_event(events[-1])

    def test_abort_with_reason(self) -> None:
        """abort(reason) sends ABORT with the reason as the message."""
        with capture_lineage() as events, lineage_run(JOB) as run:
            run.abort("superseded by a newer run")
        assert states(events) == ["START", "ABORT"]
        assert error_facet(events[-1])["message"] == "superseded by a newer run"

    def test_terminal_event_repeats_datasets(self) -> None:
        """Inputs and outputs found during the run are on the terminal event."""
        with capture_lineage() as events, lineage_run(JOB, inputs=[IN]) as run:
            run.add_input("s3://bucket/extra.csv")
            run.add_output(OUT)
            run.add_output(OUT)  # twice: still once
        terminal = events[-1]
        assert [d["name"] for d in terminal["inputs"]] == ["RAW.PUBLIC.ORDERS", "extra.csv"]
        assert [d["name"] for d in terminal["outputs"]] == ["ANALYTICS.PUBLIC.ORDERS"]

    def test_given_run_id(self) -> None:
        """A given run id (e.g. from RunId.from_key) is used as is, on every event."""
        run_id = RunId.from_key("dag", "task", "2026-11-25T00:00Z", 1)
        with capture_lineage() as events, lineage_run(JOB, run_id=run_id):
            pass
        assert {e["run"]["runId"] for e in events} == {run_id}

    def test_reusing_an_active_helper_is_refused(self) -> None:
        """Entering the same helper twice at once is a clear error, not crossed events."""
        helper = lineage_run(JOB)
        with capture_lineage(), helper, pytest.raises(RuntimeError, match="already in use"):
            helper.__enter__()

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"inputs": ["orders"]}, InvalidDatasetError),
            ({"connector_type": "snowflake"}, UnsupportedConnectorError),
            ({"run_id": "run-1"}, ValueError),
            ({"delivery_timeout": 0}, ValueError),
            ({"run_facets": {"x": 1}}, ValueError),
            ({"strict": True, "background": True}, ValueError),
            ({"client": "tenant"}, TypeError),
        ],
    )
    def test_bad_arguments_fail_before_anything_is_sent(
        self, kwargs: Dict[str, Any], error: type
    ) -> None:
        """Bad arguments raise at construction: nothing is half sent."""
        with capture_lineage() as events, pytest.raises(error):
            lineage_run(JOB, **kwargs)
        assert events == []

    @pytest.mark.parametrize("outcome", ["weird", 3.5, True, object()])
    def test_a_bad_outcome_is_raised_and_the_run_goes_on(self, outcome: Any) -> None:
        """``run.end(...)`` with what is not an outcome raises InvalidOutcomeError naming it
        (sync as async), makes no event, and the run can still end properly."""
        with capture_lineage() as events:
            run = start_run(JOB)
            with pytest.raises(InvalidOutcomeError, match="is not an outcome"):
                run.end(outcome)
            assert run.state is RunState.START
            with pytest.raises(InvalidFacetError, match="'x'"):
                run.running(facets={"x": 3})
            assert run.end() is RunState.COMPLETE
        assert states(events) == ["START", "COMPLETE"]

        async def in_async_code() -> None:
            arun = await start_run_async(JOB)
            with pytest.raises(InvalidOutcomeError, match="is not an outcome"):
                await arun.end(outcome)
            await arun.end()

        with capture_lineage() as events:
            asyncio.run(in_async_code())
        assert states(events) == ["START", "COMPLETE"]

    def test_job_must_be_a_job(self) -> None:
        """A job that is not a Job is refused with the way to make one."""
        with pytest.raises(InvalidJobError, match="Job\\(connection="):
            lineage_run("nightly")  # type: ignore[arg-type]


class TestNesting:
    def test_parent_facet(self, validate_event: Any) -> None:
        """A run inside another carries the parent facet of the outer run (and its root)."""
        outer_job, inner_job = (
            Job("ol-airflow", "dag", job_type="DAG"),
            Job("ol-airflow", "dag.task"),
        )
        with capture_lineage() as events, lineage_run(outer_job) as outer:
            with lineage_run(inner_job) as inner:
                with lineage_run(Job("ol-airflow", "dag.task.step")) as innermost:
                    assert current_run() is innermost
            assert current_run() is outer
        assert current_run() is None
        by_run = runs_of(events)
        assert all("parent" not in e["run"]["facets"] for e in by_run[outer.run_id])
        for event in by_run[inner.run_id]:
            parent = event["run"]["facets"]["parent"]
            assert parent["run"]["runId"] == outer.run_id
            assert parent["job"] == {"namespace": "ol-airflow", "name": "dag"}
            validate_event(event)
        deepest = by_run[innermost.run_id][0]["run"]["facets"]["parent"]
        assert deepest["run"]["runId"] == inner.run_id
        assert deepest["root"]["run"]["runId"] == outer.run_id
        assert_paired(events)


class TestDecorator:
    def test_function(self) -> None:
        """Each call is one run; the return value comes back untouched."""

        @lineage_run(JOB, inputs=[IN])
        def load(rows: int) -> int:
            return rows * 2

        with capture_lineage() as events:
            assert load(21) == 42
            assert load(1) == 2
        assert len(runs_of(events)) == 2
        assert_paired(events)
        assert load.__name__ == "load"

    def test_hundred_threads_never_share_a_run(self) -> None:
        """Concurrent calls from 100 threads get 100 runs with their own events."""
        barrier = threading.Barrier(100)

        @lineage_run(JOB)
        def work(index: int) -> int:
            run = current_run()
            assert run is not None
            barrier.wait(timeout=30)
            run.add_output(f"s3://bucket/part-{index}")  # type: ignore[attr-defined]
            return index

        with capture_lineage() as events:
            threads = [threading.Thread(target=work, args=(i,)) for i in range(100)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        grouped = runs_of(events)
        assert len(grouped) == 100
        assert_paired(events)
        outputs = {
            tuple(d["name"] for d in run_events[-1]["outputs"]) for run_events in grouped.values()
        }
        assert outputs == {(f"part-{i}",) for i in range(100)}

    def test_hundred_tasks_never_share_a_run(self) -> None:
        """Concurrent calls from 100 asyncio tasks get 100 runs, none a parent of another."""

        @lineage_run(JOB)
        async def work(index: int) -> int:
            await asyncio.sleep(0.001)
            return index

        async def main() -> List[int]:
            return await asyncio.gather(*(work(i) for i in range(100)))

        with capture_lineage() as events:
            assert asyncio.run(main()) == list(range(100))
        assert len(runs_of(events)) == 100
        assert_paired(events)
        assert all("parent" not in e["run"]["facets"] for e in events)

    def test_async_exception(self) -> None:
        """An async function's exception is FAIL and re-raised; cancellation is ABORT."""

        @lineage_run(JOB)
        async def broken() -> None:
            raise ValueError("x")

        @lineage_run(JOB)
        async def slow() -> None:
            await asyncio.sleep(10)

        async def main() -> None:
            with pytest.raises(ValueError):
                await broken()
            task = asyncio.ensure_future(slow())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        with capture_lineage() as events:
            asyncio.run(main())
        assert [states(e) for e in runs_of(events).values()] == [
            ["START", "FAIL"],
            ["START", "ABORT"],
        ]

    def test_generator_is_tracked_across_its_iteration(self) -> None:
        """A decorated generator starts its run on the first next() and completes when the
        iteration ends, never when the generator object is made."""

        @lineage_run(JOB)
        def rows() -> Iterator[int]:
            yield 1
            yield 2

        with capture_lineage() as events:
            iterator = rows()
            assert events == []
            assert next(iterator) == 1
            assert states(events) == ["START"]
            assert list(iterator) == [2]
        assert states(events) == ["START", "COMPLETE"]

    def test_generator_closed_early_is_abort(self) -> None:
        """A generator closed before it ends is ABORT; one that raises is FAIL."""

        @lineage_run(JOB)
        def rows() -> Iterator[int]:
            yield 1
            raise ValueError("row 2 is bad")

        with capture_lineage() as events:
            iterator = rows()
            next(iterator)
            iterator.close()
            with pytest.raises(ValueError):
                list(rows())
        assert [states(e) for e in runs_of(events).values()] == [
            ["START", "ABORT"],
            ["START", "FAIL"],
        ]

    def test_async_generator(self) -> None:
        """A decorated async generator is tracked across its iteration, values and sends
        passed through."""

        @lineage_run(JOB)
        async def numbers() -> AsyncIterator[int]:
            total = 0
            for i in range(3):
                received = yield i
                total += received or 0
            yield total

        async def main(events: Events) -> List[int]:
            agen = numbers()
            assert events == []
            got = [await agen.__anext__()]
            got.append(await agen.asend(10))
            got.append(await agen.asend(20))
            got.append(await agen.asend(5))
            with pytest.raises(StopAsyncIteration):
                await agen.__anext__()
            return got

        with capture_lineage() as events:
            assert asyncio.run(main(events)) == [0, 1, 2, 35]
        assert states(events) == ["START", "COMPLETE"]


class TestAsyncContextManager:
    def test_async_with_without_client(self) -> None:
        """async with gives a run whose sending methods are awaitable."""

        async def main() -> str:
            async with lineage_run(JOB) as run:
                await run.running()
                await run.complete()
            return run.run_id

        with capture_lineage() as events:
            run_id = asyncio.run(main())
        assert states(events) == ["START", "RUNNING", "COMPLETE"]
        assert events[0]["run"]["runId"] == run_id


class TestWhatUsersHave:
    def test_pyatlan_job_and_datasets(self) -> None:
        """lineage_run takes pyatlan's OpenLineageJob and datasets as they are."""
        from pyatlan.model.open_lineage import OpenLineageJob

        job = OpenLineageJob.creator(
            connection_name="ol-spark", job_name="dag_123", producer="https://example.com/p"
        )
        source = job.create_input(namespace="snowflake://abc", asset_name="RAW.ORDERS")
        with capture_lineage() as events:
            with lineage_run(job, inputs=[source]) as run:
                run.add_output(job.create_output(namespace="snowflake://abc", asset_name="OUT"))
        assert states(events) == ["START", "COMPLETE"]
        assert events[1]["job"]["name"] == "dag_123"
        assert datasets_of(events, run.run_id) == (
            ["snowflake://abc/RAW.ORDERS"],
            ["snowflake://abc/OUT"],
        )
