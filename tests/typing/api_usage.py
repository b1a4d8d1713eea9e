"""Typical use of the public API; `mypy --strict tests/typing` must pass, so the public
types are themselves tested."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from atlan_ext import (
    Dataset,
    Job,
    LineageDeliveryError,
    Parent,
    RunId,
    RunState,
    check_transition,
    facets,
    lineage_run,
    resume_run,
    resume_run_async,
    show_lineage,
    start_run,
    start_run_async,
    terminal_state,
    verify,
)
from atlan_ext.display import run_markdown, run_picture, run_text
from atlan_ext.events import build_event
from atlan_ext.exceptions import LineageReadError
from atlan_ext.testing import MockAtlan, assert_paired, capture_lineage, datasets_of
from atlan_ext.validate import Problem, check_events

job = Job("ol-spark", "nightly", job_type="DAG")
state: RunState = RunState.coerce("complete")
later: RunState = check_transition(RunState.START, state)
ended: RunState = terminal_state(ValueError("x"))
run_id: str = RunId.from_key("dag", "task", 1)
source: Dataset = Dataset.parse("snowflake://acct/DB.S.T")
event: Dict[str, Any] = build_event(
    "START", job, run_id, inputs=[source], run_facets={"x": facets.documentation("d")}
)


@lineage_run(job)
def load(rows: int) -> int:
    return rows


doubled: int = load(2) * 2


async def load_async() -> Optional[str]:
    async with lineage_run(job) as run:
        await run.running()
        return run.run_id


with capture_lineage() as captured:
    with lineage_run(job, outputs=["s3://b/k"]) as run:
        run.add_input("s3://b/raw")
        status: Optional[RunState] = run.state
    assert_paired(captured)
    inputs, outputs = datasets_of(captured, run.run_id)
    names: List[str] = inputs + outputs

with MockAtlan() as tenant:
    tenant.script(503, 202)
    try:
        with lineage_run(job, client=tenant.client(), strict=True):
            pass
    except LineageDeliveryError as error:
        code: Optional[int] = error.status

started = start_run(job, inputs=[source], parent=Parent(run_id, "ol-spark", "dag"))
child_env: Dict[str, str] = started.child_env()
final: Optional[RunState] = started.end(ValueError("x"))
with resume_run(job, run_id, outputs=["s3://b/k"]) as resumed:
    resumed.complete()
parent: Optional[Parent] = Parent.from_env()


async def resume_async() -> Optional[RunState]:
    run = resume_run_async(job, run_id)
    first = await start_run_async(job, parent=run)
    await first.end()
    return await run.end(-15)


def lineage_pictures(client: Any) -> str:
    """A run and an asset's lineage as pictures and text (not run: it needs a tenant)."""
    with lineage_run(Job("ol-nb", "load"), client="local", inputs=["s3://b/in"]) as run:
        pass
    shown: List[str] = [run_picture(run), run_text(run), run_markdown(run)]
    try:
        view = show_lineage("default/snowflake/1/DB/S/T", client=client, depth=2)
    except LineageReadError as error:
        return str(error)
    edges: List[Tuple[str, str]] = view.edges
    depths: Dict[str, int] = {node.guid: node.depth for node in view.nodes}
    return view.picture() + "".join(shown) + str(len(edges) + len(depths))


def landed(run_id: str, client: object, table: object, account: object) -> int:
    receipt = verify(run_id, client=client, wait=30.0)
    hints: List[str] = [finding.hint for finding in receipt.findings if not finding.ok]
    linked: Dataset = Dataset.from_asset(table, account)
    return receipt.exit_status + len(hints) + len(linked.name)


# The run cycle, the judges, and the jobType facet.
leaf = Job("ol-spark", "load", job_type="TASK", integration="AIRFLOW")
no_type = Job("ol-spark", "load", job_type=None)
bigquery: str = Dataset.parse("bigquery:proj.sales.orders").uri
dated: str = RunId.from_key("nightly", "2026-12-02")
judged: List[Problem] = check_events([("e", {})], None, rules="atlan")
judges: List[str] = [problem.judge for problem in judged]
