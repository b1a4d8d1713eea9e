"""How runs show themselves in a notebook (``_repr_html_``) and as text. Plain HTML: every
user string is escaped and there is no script. Needs no IPython."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Dict, List, Protocol, Sequence, Tuple

from atlan_ext._values import format_time
from atlan_ext.events import Dataset
from atlan_ext.states import RunState

__all__ = ["RunsView", "run_html", "run_line"]


class _Shown(Protocol):
    """What a run offers to be shown."""

    @property
    def job(self) -> Any: ...
    @property
    def run_id(self) -> str: ...
    @property
    def state(self) -> Any: ...
    @property
    def history(self) -> List[Tuple[RunState, datetime]]: ...
    @property
    def inputs(self) -> List[Dataset]: ...
    @property
    def outputs(self) -> List[Dataset]: ...
    def delivery(self) -> Dict[str, str]: ...


def run_html(run: _Shown) -> str:
    """An HTML summary of a run: job, id, state, duration, events with their delivery state,
    datasets."""
    e = html.escape
    states = run.delivery()
    rows = "".join(
        f"<tr><td>{e(state.value)}</td><td>{e(format_time(when))}</td>"
        f"<td>{e(states.get(format_time(when), 'captured' if not states else 'sending'))}</td></tr>"
        for state, when in run.history
    )
    duration = ""
    if len(run.history) > 1:
        seconds = (run.history[-1][1] - run.history[0][1]).total_seconds()
        duration = f" · {seconds:.3f} s"

    def datasets(items: Sequence[Dataset]) -> str:
        if not items:
            return "<i>none</i>"
        return "<br>".join(e(f"{d.namespace}/{d.name}") for d in items)

    return (
        '<div class="atlan-ext-run">'
        f"<b>{e(run.job.namespace)} / {e(run.job.name)}</b> · run <code>{e(run.run_id)}</code>"
        f" · {e(run.state.value if run.state else 'not started')}{duration}"
        "<table><tr><th>event</th><th>time</th><th>delivery</th></tr>"
        f"{rows}</table>"
        f"<p><b>inputs</b><br>{datasets(run.inputs)}</p>"
        f"<p><b>outputs</b><br>{datasets(run.outputs)}</p></div>"
    )


def run_line(run: _Shown) -> str:
    """One line of text for a run: job, run id and its events."""
    events = " -> ".join(state.value for state, _ in run.history)
    return f"{run.job.namespace}/{run.job.name} {run.run_id} {events}"


class RunsView:
    """Several runs as a table (``%lineage status``)."""

    def __init__(self, runs: Sequence[_Shown]) -> None:
        self.runs = list(runs)

    def __repr__(self) -> str:
        if not self.runs:
            return "no lineage runs in this notebook yet"
        return "\n".join(run_line(run) for run in self.runs)

    def _repr_html_(self) -> str:
        e = html.escape
        if not self.runs:
            return "<p>no lineage runs in this notebook yet</p>"
        rows = "".join(
            f"<tr><td>{e(run.job.namespace)}/{e(run.job.name)}</td><td><code>{e(run.run_id)}"
            f"</code></td><td>{e(' → '.join(state.value for state, _ in run.history))}</td></tr>"
            for run in self.runs
        )
        return f"<table><tr><th>job</th><th>run</th><th>events</th></tr>{rows}</table>"
