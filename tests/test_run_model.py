"""One run model across threads, processes and hosts: start_run, resume_run and Run.end, the
CLI's cross-host steps, the order of a run's events across processes, parents across
boundaries, and SIGTERM."""

from __future__ import annotations

import asyncio
import contextvars
import json
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import Tenant
from test_cli import cli, env, free_port, stored

from atlan_ext import (
    Dataset,
    InvalidClientError,
    InvalidDatasetError,
    InvalidFacetError,
    InvalidOptionError,
    InvalidTransitionError,
    Job,
    Parent,
    RunId,
    RunInUseError,
    RunState,
    lineage_run,
    resume_run,
    resume_run_async,
    start_run,
)
from atlan_ext.delivery import flush
from atlan_ext.outbox import Outbox
from atlan_ext.run import current_run
from atlan_ext.testing import assert_paired, capture_lineage, isolated_outbox

JOB = Job("ol-demo", "model")
Events = List[Dict[str, Any]]


def types(events: Events) -> List[str]:
    return [event["eventType"] for event in events]


def message(event: Dict[str, Any]) -> str:
    text: str = event["run"]["facets"]["errorMessage"]["message"]
    return text


def arrived(tenant: Tenant) -> Events:
    return [
        e for *_, body, _ in tenant.received for e in (body if isinstance(body, list) else [body])
    ]


class TestStartAndEnd:
    def test_start_run_then_end(self) -> None:
        """start_run sends START; end() sends the terminal event once and is idempotent."""
        with capture_lineage() as events:
            run = start_run(JOB, inputs=["s3://b/in"])
            assert types(events) == ["START"]
            assert run.end() is RunState.COMPLETE
            assert run.end(ValueError("later")) is None
        assert types(events) == ["START", "COMPLETE"]

    def test_end_with_facets_that_are_not_json_raises_and_sends_nothing(self) -> None:
        """end() with facets that are not JSON raises InvalidFacetError naming the facet (as
        an async run's does), sends nothing and leaves the run open; a later end() ends it."""
        with capture_lineage() as events:
            run = start_run(JOB)
            with pytest.raises(InvalidFacetError, match="'x'"):
                run.end(facets={"x": object()})
            assert not run.ended
            assert run.end() is RunState.COMPLETE
        assert types(events) == ["START", "COMPLETE"]

    def test_end_decides_by_outcome(self) -> None:
        """end() takes what terminal_state takes: an exception, an exit status, a signal."""
        with capture_lineage() as events:
            start_run(JOB).end(3)
            start_run(JOB).end(-signal.SIGTERM)
            start_run(JOB).end(KeyboardInterrupt())
        assert types(events) == ["START", "FAIL", "START", "ABORT", "START", "ABORT"]
        assert message(events[1]) == "the command exited with status 3"
        assert message(events[3]) == "killed by SIGTERM (15)"
        assert message(events[5]) == "KeyboardInterrupt"

    def test_run_as_a_block(self) -> None:
        """A run from start_run used as `with run:` ends with the block's outcome."""
        with capture_lineage() as events, pytest.raises(OSError):
            with start_run(JOB):
                raise OSError("disk full")
        assert types(events) == ["START", "FAIL"]
        assert message(events[1]) == "OSError: disk full"

    def test_decorated_calls_are_fresh_runs(self) -> None:
        """Each call of a decorated function builds its own run from the stored arguments."""
        helper = lineage_run(JOB)

        @helper
        def work(n: int) -> int:
            return n

        with capture_lineage() as events:
            assert [work(1), work(2)] == [1, 2]
        assert len({e["run"]["runId"] for e in events}) == 2
        assert_paired(events)

    def test_the_same_arguments_again_are_checked_as_before(self) -> None:
        """A loop of runs with the same arguments has them checked once (as re keeps its
        patterns): each run is still its own, a changed list names its new datasets, and an
        argument equal to an earlier good one but of another type is still refused."""
        outputs = ["s3://b/out"]
        with capture_lineage() as events:
            for _ in range(2):
                with lineage_run(JOB, inputs=["s3://b/in"], outputs=outputs, background=True):
                    pass
            outputs.append("s3://b/more")
            with lineage_run(JOB, inputs=["s3://b/in"], outputs=outputs, background=True):
                pass
        assert len({e["run"]["runId"] for e in events}) == 3
        assert [len(e["outputs"]) for e in events] == [1, 1, 1, 1, 2, 2]
        assert_paired(events)
        with pytest.raises(InvalidOptionError, match="background must be True or False, got 1"):
            lineage_run(JOB, inputs=["s3://b/in"], outputs=outputs, background=1)
        with pytest.raises(InvalidOptionError, match="delivery_timeout"):
            lineage_run(JOB, delivery_timeout=1)
            lineage_run(JOB, delivery_timeout=True)  # == 1, yet no number of seconds

    def test_runs_of_one_plan_share_only_what_was_checked(self, tmp_path: Path) -> None:
        """The runs of one lineage_run share its checked arguments, not their state: each
        stores in the outbox ATLAN_EXT_HOME names when it runs (a notebook or a test suite
        moves it between calls), a dataset one run adds is not in the next run's events, a
        dataset given twice is sent once, and a parent is each run's own."""
        helper = lineage_run(
            JOB, client="local", inputs=["s3://b/in", "s3://b/in"], background=True
        )

        @helper
        def work(extra: str = "") -> None:
            if extra:
                run = current_run()
                assert run is not None
                run.add_output(extra)

        homes = [tmp_path / "first", tmp_path / "second"]
        for home, extra in zip(homes, ["s3://b/added", ""]):
            with isolated_outbox(home) as outbox:
                work(extra)
                flush(60)
                events = [stored.event for stored in outbox.iter_events()]
            assert types(events) == ["START", "COMPLETE"], home
            assert [d["name"] for d in events[0]["inputs"]] == ["in"]
            assert [d["name"] for d in events[1]["outputs"]] == (["added"] if extra else [])
            assert "parent" not in events[0]["run"]["facets"]
        with capture_lineage() as captured:
            with lineage_run(JOB, client="local", background=True) as outer:
                work()
        assert [e["run"]["facets"]["parent"]["run"]["runId"] for e in captured[1:3]] == [
            outer.run_id
        ] * 2


class TestResume:
    def test_resume_sends_no_start(self) -> None:
        """resume_run takes up a run started elsewhere: no START, checked transitions."""
        run_id = RunId.from_key("dag", "task", "2026-11-25T00:00Z", 1)
        with capture_lineage() as events:
            run = resume_run(JOB, run_id)
            assert run.state is RunState.START
            run.running()
            run.complete()
            with pytest.raises(InvalidTransitionError, match="already ended with COMPLETE"):
                run.complete()
        assert types(events) == ["RUNNING", "COMPLETE"]
        assert {e["run"]["runId"] for e in events} == {run_id}

    def test_resume_as_a_block_fails_on_an_exception(self) -> None:
        """`with resume_run(...)` ends with FAIL when the block raises, and re-raises."""
        with capture_lineage() as events, pytest.raises(ValueError, match="bad row"):
            with resume_run(JOB, RunId.new()):
                raise ValueError("bad row")
        assert types(events) == ["FAIL"]
        assert message(events[0]) == "ValueError: bad row"

    def test_resume_async(self) -> None:
        """The async counterpart: its sending methods are coroutines."""

        async def main() -> None:
            async with resume_run_async(JOB, RunId.new()) as run:
                await run.running()

        with capture_lineage() as events:
            asyncio.run(main())
        assert types(events) == ["RUNNING", "COMPLETE"]

    def test_resume_of_a_remembered_run_sends_other_and_running(self) -> None:
        """OTHER and RUNNING for a run whose START this outbox remembers are legal."""
        run = start_run(JOB)
        again = resume_run(JOB, run.run_id)
        again.other()
        again.running()
        again.complete()
        assert again.state is RunState.COMPLETE

    def test_resume_checks_what_the_outbox_remembers(self) -> None:
        """A run this machine already ended cannot be ended again by a resumed handle."""
        run = start_run(JOB)
        run.complete()
        again = resume_run(JOB, run.run_id.upper())  # case does not split a run
        with pytest.raises(InvalidTransitionError, match="already ended with COMPLETE"):
            again.fail("late")
        assert again.state is RunState.START


class TestOneMessage:
    def test_same_failure_same_message(self, tmp_path: Path) -> None:
        """fail('disk full') carries the same message from Python and from the CLI; an exit
        status reads the same from Run.end and from wrap."""
        with capture_lineage() as events:
            start_run(JOB).fail("disk full")
            start_run(JOB).end(3)
        started = cli("start", "--connection", "c", "--job", "j", home=tmp_path)
        run_id = started.stdout.strip()
        assert (
            cli("fail", "--run-id", run_id, "--message", "disk full", home=tmp_path).returncode == 0
        )
        wrapped = cli(
            "wrap",
            "--connection",
            "c",
            "--job",
            "w",
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(3)",
            home=tmp_path,
        )
        assert wrapped.returncode == 3
        kept = {e.event["job"]["name"]: e.event for e in stored(tmp_path) if e.event_type == "FAIL"}
        assert message(events[1]) == message(kept["j"]) == "disk full"
        assert message(events[3]) == message(kept["w"]) == "the command exited with status 3"


class TestAcrossHosts:
    def test_run_id_command_equals_python(self, tmp_path: Path) -> None:
        """`atlan-lineage run-id --key ...` prints RunId.from_key of the same strings."""
        parts = ["nightly", "load", "2026-11-25T00:00:00Z", "1"]
        done = cli("run-id", "--key", *parts, home=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == RunId.from_key(*parts)

    def test_start_on_one_host_complete_on_another(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Two outboxes stand for two hosts: START from one, COMPLETE from the other, which
        has no record and says so once; Atlan gets both, START first."""
        host_a, host_b = tmp_path / "a", tmp_path / "b"
        run_id = RunId.from_key("nightly", "load", "2026-11-25T00:00:00Z")
        url = loopback_tenant.base_url
        job = ["--connection", "ol-demo", "--job", "load"]
        started = cli(
            "start", *job, "--run-id", run_id, "--input", "s3://b/in", "--wait",
            "--timeout", "60",  # the courier's first send imports pyatlan: slow when busy
            home=host_a, base_url=url,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        done = cli(
            "complete",
            "--run-id",
            run_id,
            *job,
            "--output",
            "s3://b/out",
            "--wait",
            "--timeout",
            "60",
            home=host_b,
            base_url=url,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("no record of run") == 1
        assert types(arrived(loopback_tenant)) == ["START", "COMPLETE"]
        assert arrived(loopback_tenant)[1]["outputs"][0]["name"] == "out"
        refused = cli("complete", "--run-id", run_id, home=tmp_path / "c")
        assert refused.returncode == 2
        assert "--connection and --job" in refused.stderr

    def test_every_step_after_start(self, tmp_path: Path) -> None:
        """other, running and complete, each its own process, after start."""
        run_id = cli("start", "--connection", "c", "--job", "j", home=tmp_path).stdout.strip()
        for step in ("other", "running", "complete"):
            done = cli(step, "--run-id", run_id, home=tmp_path)
            assert done.returncode == 0, done.stderr
        assert [e.event_type for e in stored(tmp_path)] == ["START", "OTHER", "RUNNING", "COMPLETE"]

    def test_other_after_complete(self, tmp_path: Path) -> None:
        """`other` after `complete` is stored (OTHER may follow the terminal event);
        `running` after it is still refused."""
        run_id = cli("start", "--connection", "c", "--job", "j", home=tmp_path).stdout.strip()
        for step in ("complete", "other"):
            done = cli(step, "--run-id", run_id, home=tmp_path)
            assert done.returncode == 0, done.stderr
        refused = cli("running", "--run-id", run_id, home=tmp_path)
        assert refused.returncode == 2
        assert "already ended with COMPLETE" in refused.stderr
        assert [e.event_type for e in stored(tmp_path)] == ["START", "COMPLETE", "OTHER"]

    def test_step_keeps_the_remembered_datasets_facets(self, tmp_path: Path) -> None:
        """A step's event repeats the run's datasets with their per-side facets."""
        facet = {"_producer": "https://x.io", "_schemaURL": "https://x.io/s", "rowCount": 3}
        dataset = Dataset("s3://b", "in", input_facets={"inputStatistics": facet})
        outbox = Outbox(tmp_path / "outbox.db")
        run = start_run(JOB, client="local", inputs=[dataset], outbox=outbox)
        done = cli("complete", "--run-id", run.run_id, home=tmp_path)
        assert done.returncode == 0, done.stderr
        last = stored(tmp_path)[-1].event
        assert last["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == 3

    def test_step_naming_another_job_is_refused(self, tmp_path: Path) -> None:
        """With a record, a step that names a different job is refused, naming both."""
        run_id = cli("start", "--connection", "c", "--job", "j", home=tmp_path).stdout.strip()
        done = cli(
            "complete", "--run-id", run_id, "--connection", "c", "--job", "other", home=tmp_path
        )
        assert done.returncode == 2
        assert "belongs to job c/j" in done.stderr


class TestOrderAcrossProcesses:
    def test_start_while_down_then_complete(self, tmp_path: Path, loopback_tenant: Tenant) -> None:
        """START kept while Atlan was unreachable goes before the COMPLETE sent once it is
        back: Atlan never sees a terminal event without its START."""
        down = f"http://127.0.0.1:{free_port()}"
        job = ["--connection", "ol-demo", "--job", "late"]
        started = cli("start", *job, "--timeout", "2", home=tmp_path, base_url=down)
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        done = cli(
            "complete", "--run-id", run_id, "--wait", "--timeout", "90", home=tmp_path,
            base_url=loopback_tenant.base_url,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert types(arrived(loopback_tenant)) == ["START", "COMPLETE"]
        assert [e.status for e in stored(tmp_path)] == ["delivered", "delivered"]

    def test_close_orphans_sends_the_start_first(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """close-orphans before replay: the kept START goes first, then the ABORT."""
        down = f"http://127.0.0.1:{free_port()}"
        started = cli(
            "start",
            "--connection",
            "c",
            "--job",
            "o",
            "--timeout",
            "2",
            home=tmp_path,
            base_url=down,
        )
        assert started.returncode == 0, started.stderr
        done = cli(
            "close-orphans", "--older-than", "0s", home=tmp_path, base_url=loopback_tenant.base_url
        )
        assert done.returncode == 0, done.stderr
        flushed = cli("flush", home=tmp_path, base_url=loopback_tenant.base_url)
        assert flushed.returncode == 0, flushed.stderr
        assert types(arrived(loopback_tenant)) == ["START", "ABORT"]


class TestParents:
    def test_parent_argument(self) -> None:
        """parent= takes a run, a Parent, a tuple or namespace/name/runId; root follows."""
        with capture_lineage() as events:
            outer = start_run(Job("ol-demo", "dag"))
            by_run = start_run(JOB, parent=outer)
            by_text = start_run(JOB, parent=f"ol-demo/dag/{outer.run_id}")
            grandchild = start_run(JOB, parent=(by_run.run_id, "ol-demo", "model"))
        for child in (by_run, by_text):
            assert child.parent == Parent(outer.run_id, "ol-demo", "dag")
        facet = events[-1]["run"]["facets"]["parent"]
        assert facet["run"]["runId"] == by_run.run_id
        assert facet["root"]["run"]["runId"] == by_run.run_id  # a tuple carries no root
        assert start_run(JOB, parent=by_run.as_parent()).parent.root == (
            outer.run_id,
            "ol-demo",
            "dag",
        )  # type: ignore[union-attr]
        grandchild.end()

    def test_parent_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OPENLINEAGE_PARENT_ID (with its root) is the parent of a top-level run;
        OPENLINEAGE_CONTEXT wins when both are set; a malformed value is ignored."""
        parent, root = RunId.new(), RunId.new()
        monkeypatch.setenv("OPENLINEAGE_PARENT_ID", f"airflow/dag.task/{parent}")
        monkeypatch.setenv("OPENLINEAGE_ROOT_PARENT_ID", f"airflow/dag/{root}")
        assert start_run(JOB).parent == Parent(
            parent, "airflow", "dag.task", root=(root, "airflow", "dag")
        )
        context = Parent(root, "ctx", "job").env()["OPENLINEAGE_CONTEXT"]
        monkeypatch.setenv("OPENLINEAGE_CONTEXT", context)
        assert start_run(JOB).parent == Parent(root, "ctx", "job", root=(root, "ctx", "job"))
        monkeypatch.setenv("OPENLINEAGE_CONTEXT", "{not json")
        monkeypatch.setenv("OPENLINEAGE_PARENT_ID", "no-run-id-here")
        assert start_run(JOB).parent is None

    def test_in_process_parent_wins_over_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OPENLINEAGE_PARENT_ID", f"airflow/dag/{RunId.new()}")
        with lineage_run(Job("ol-demo", "outer")) as outer, lineage_run(JOB) as inner:
            assert inner.parent is not None
            assert inner.parent.run_id == outer.run_id

    def test_thread_pool(self) -> None:
        """A pool's threads do not inherit the current run; copy_context() or parent= carry it."""
        with capture_lineage() as events, lineage_run(Job("ol-demo", "outer")) as outer:
            with ThreadPoolExecutor(2) as pool:
                context = contextvars.copy_context()
                pool.submit(context.run, lambda: start_run(JOB).end()).result()
                pool.submit(lambda: start_run(JOB, parent=outer).end()).result()
        children = [e for e in events if e["job"]["name"] == "model"]
        assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in children} == {outer.run_id}

    def test_wrap_exports_the_parent(self, tmp_path: Path) -> None:
        """wrap's command sees OPENLINEAGE_PARENT_ID / _CONTEXT, and an atlan-ext run in it
        nests under wrap's run."""
        script = textwrap.dedent(
            """
            import os
            from atlan_ext import Job, lineage_run
            print(os.environ["OPENLINEAGE_PARENT_ID"])
            with lineage_run(Job("ol-demo", "child"), client="local"):
                pass
            """
        )
        done = cli(
            "wrap",
            "--connection",
            "ol-demo",
            "--job",
            "wrapper",
            "--",
            sys.executable,
            "-c",
            script,
            home=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        events = {
            e.event["job"]["name"]: e.event for e in stored(tmp_path) if e.event_type == "START"
        }
        wrapper = events["wrapper"]["run"]["runId"]
        assert done.stdout.strip() == f"ol-demo/wrapper/{wrapper}"
        assert events["child"]["run"]["facets"]["parent"]["run"]["runId"] == wrapper
        assert (
            json.loads(Parent(wrapper, "ol-demo", "wrapper").env()["OPENLINEAGE_CONTEXT"])[
                "parent"
            ]["run"]["runId"]
            == wrapper
        )


SCRIPT = """
import asyncio, signal, sys, time
from atlan_ext import Job, lineage_run
if sys.argv[1] == "own-handler":
    signal.signal(signal.SIGTERM, lambda n, f: sys.exit(0))
with lineage_run(Job("ol-demo", "script"), client="local"):
    if sys.argv[1] == "reset-by-asyncio":  # as nbclient does around a notebook it runs
        loop = asyncio.new_event_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: None)
        loop.remove_signal_handler(signal.SIGTERM)  # SIGTERM's default action again
        loop.close()
        with lineage_run(Job("ol-demo", "inner"), client="local"):
            print("ready", flush=True)
            time.sleep(60)
    print("ready", flush=True)
    time.sleep(60)
"""


IN_A_HAND_OFF = """
import os, signal, sys, zlib
import atlan_ext.delivery
from atlan_ext import Job, lineage_run
from atlan_ext._inbox import Inbox

atlan_ext.delivery.exit_flush_seconds = 1
armed = []

def hook(frame, event, arg):
    journal = event == "c_call" and arg is zlib.adler32  # the journal's lock is held
    handed = (  # the item queued: before its token (put), or before add returns
        event == "c_return"
        and frame.f_code in (Inbox.put.__code__, Inbox.add.__code__)
        and getattr(arg, "__name__", "") == "append"
    )
    if armed and (journal if sys.argv[1] == "journal" else handed):
        armed.clear()
        os.kill(os.getpid(), signal.SIGTERM)

with lineage_run(Job("ol-demo", "script"), background=True) as run:
    armed.append(True)
    sys.setprofile(hook)
    run.running()
    sys.setprofile(None)
    print("not killed", flush=True)
"""


CTRL_C_IN_A_HAND_OFF = """
import os, signal, sys
from atlan_ext import Job, lineage_run
from atlan_ext._inbox import Inbox
from atlan_ext.delivery import flush

armed = []

def hook(frame, event, arg):
    if (
        armed
        and event == "c_return"
        and frame.f_code in (Inbox.put.__code__, Inbox.add.__code__)
        and getattr(arg, "__name__", "") == "append"
    ):
        armed.clear()
        # Ctrl-C once the item is queued: before its token (a put that wakes the sender),
        # or before an add (the sender looking at its queue on its own) returns
        os.kill(os.getpid(), signal.SIGINT)

try:
    with lineage_run(Job("ol-demo", "ctrl-c"), background=True) as run:
        armed.append(True)
        sys.setprofile(hook)
        try:
            run.running()
        finally:
            sys.setprofile(None)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print(flush(60), flush=True)
"""


class TestCtrlC:
    def test_ctrl_c_inside_a_hand_off_strands_nothing(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """Ctrl-C landing inside the hand-off of RUNNING (after the event is queued, before
        the sender is woken for it, or before an add that does not wake it returns): the
        user gets their KeyboardInterrupt, and RUNNING and
        the block's ABORT are still delivered, in order, without waiting out a timeout."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(CTRL_C_IN_A_HAND_OFF)],
            env=env(tmp_path, loopback_tenant.base_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.stdout.split() == ["interrupted", "True"], done.stderr
        assert types(arrived(loopback_tenant)) == ["START", "RUNNING", "ABORT"]


class TestSigterm:
    def run_and_terminate(self, tmp_path: Path, mode: str) -> int:
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, mode],
            env=env(tmp_path),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=30)

    def test_sigterm_ends_the_run_with_abort(self, tmp_path: Path) -> None:
        """SIGTERM to a script with the default handler: ABORT, then death by SIGTERM."""
        assert self.run_and_terminate(tmp_path, "default") == -signal.SIGTERM
        events = [e.event for e in stored(tmp_path)]
        assert types(events) == ["START", "ABORT"]
        assert message(events[1]) == "killed by SIGTERM (15)"

    def test_a_users_handler_is_left_alone(self, tmp_path: Path) -> None:
        """The user's own SIGTERM handler runs as written (here: exit 0, so COMPLETE)."""
        assert self.run_and_terminate(tmp_path, "own-handler") == 0
        assert types([e.event for e in stored(tmp_path)]) == ["START", "COMPLETE"]

    @pytest.mark.parametrize("where", ["journal", "queue"])
    def test_sigterm_inside_a_hand_off_waits_for_its_end(self, tmp_path: Path, where: str) -> None:
        """SIGTERM landing while the job's thread holds the lock of the hand-off journal (as
        it takes a record's checksum) or puts the event in the delivery queue (between the
        item and its token) is handled once the hand-off is done, instead of waiting for
        that lock forever or spilling a queue that does not show the event yet: the process
        dies of SIGTERM, and the interrupted RUNNING is kept before the ABORT."""
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(IN_A_HAND_OFF), where],
            env=env(tmp_path, f"http://127.0.0.1:{free_port()}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
        assert process.returncode == -signal.SIGTERM, err
        assert "not killed" not in out
        assert types([e.event for e in stored(tmp_path)]) == ["START", "RUNNING", "ABORT"]

    def test_default_action_is_restored(self) -> None:
        """Once the last run ends and the process holds nothing undelivered, SIGTERM has its
        default action again (captured: nothing is handed to a sender). While a sender still
        holds events (even a store-only one: no tenant), the handler stays, so that SIGTERM
        stores them before the process dies (test_postgres.TestNoTenantWorker)."""
        with capture_lineage(), lineage_run(JOB):
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def test_taken_over_again_after_a_library_resets_it(self, tmp_path: Path) -> None:
        """A library sets SIGTERM back to its default action while a run is open (asyncio's
        ``remove_signal_handler`` does, e.g. under nbclient or papermill): the next run
        takes SIGTERM over again, and SIGTERM then ends both open runs with ABORT."""
        assert self.run_and_terminate(tmp_path, "reset-by-asyncio") == -signal.SIGTERM
        events = [e.event for e in stored(tmp_path)]
        assert sorted((e["job"]["name"], e["eventType"]) for e in events) == [
            ("inner", "ABORT"),
            ("inner", "START"),
            ("script", "ABORT"),
            ("script", "START"),
        ]
        assert {message(e) for e in events if e["eventType"] == "ABORT"} == {
            "killed by SIGTERM (15)"
        }

    def test_given_back_after_a_library_reset_it(self) -> None:
        """The same in one process: inside the inner run SIGTERM is not the default, and once
        both runs end it is the default again."""
        with capture_lineage():
            with lineage_run(JOB):
                loop = asyncio.new_event_loop()
                try:
                    loop.add_signal_handler(signal.SIGTERM, lambda: None)
                    loop.remove_signal_handler(signal.SIGTERM)
                finally:
                    loop.close()
                assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
                with lineage_run(Job("ol-demo", "inner")):
                    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def test_a_handler_saved_and_put_back_is_ours_again(self) -> None:
        """Code that saves SIGTERM's handler, sets its own and later puts ours back (as
        ``wrap`` does around a command): its own is left be while set, and ours, put back,
        still gives SIGTERM its default action back once the last run ends."""

        def theirs(number: int, frame: Any) -> None:
            pass

        with capture_lineage():
            with lineage_run(JOB):
                saved = signal.signal(signal.SIGTERM, theirs)
            assert signal.getsignal(signal.SIGTERM) is theirs
            signal.signal(signal.SIGTERM, saved)
            with lineage_run(JOB):
                assert signal.getsignal(signal.SIGTERM) is saved
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"client": "prod"}, InvalidClientError),
            ({"client": 42}, InvalidClientError),
            ({"strict": True, "background": True}, InvalidOptionError),
            ({"delivery_timeout": "10"}, InvalidOptionError),
            ({"delivery_timeout": float("inf")}, InvalidOptionError),
            ({"inputs": "s3://bucket/key"}, InvalidDatasetError),
        ],
    )
    def test_typed_errors_before_anything_is_sent(
        self, options: Dict[str, Any], error: type
    ) -> None:
        """Every usage error is an AtlanExtError subclass naming the value; nothing is sent."""
        with capture_lineage() as events, pytest.raises(error):
            lineage_run(JOB, **options)
        assert events == []

    def test_entered_twice(self) -> None:
        """A helper or a run entered while already in use: RunInUseError."""
        helper = lineage_run(JOB)
        with helper, pytest.raises(RunInUseError):
            helper.__enter__()
        run = start_run(JOB)
        with run, pytest.raises(RunInUseError):
            run.__enter__()

    def test_second_thread_cannot_enter_a_helper(self) -> None:
        """A lineage_run in use in one thread is refused to another."""
        helper = lineage_run(JOB)
        errors: List[BaseException] = []

        def enter() -> None:
            try:
                helper.__enter__()
            except RunInUseError as error:
                errors.append(error)

        with helper:
            thread = threading.Thread(target=enter)
            thread.start()
            thread.join()
        assert len(errors) == 1
