"""How runs show themselves in a notebook (``_repr_html_``) and as text. Plain HTML: every
user string is escaped and there is no script. Needs no IPython."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

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
    @property
    def error_message(self) -> Optional[str]: ...
    def delivery(self) -> Dict[str, str]: ...


_COLOURS = {
    "COMPLETE": "#1a7f37",
    "FAIL": "#cf222e",
    "ABORT": "#9a6700",
    "START": "#0969da",
    "RUNNING": "#0969da",
    "OTHER": "#57606a",
}


def _badge(state: str) -> str:
    colour = _COLOURS.get(state, "#57606a")
    return (
        f'<span style="background:{colour};color:#fff;border-radius:3px;padding:1px 6px;'
        f'font-size:90%;font-weight:600">{html.escape(state)}</span>'
    )


def _clock(when: datetime) -> str:
    """A time for people: local, to the second, with its zone."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _duration(run: _Shown) -> str:
    if len(run.history) < 2:
        return ""
    seconds = (run.history[-1][1] - run.history[0][1]).total_seconds()
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def run_html(run: _Shown) -> str:
    """An HTML summary of a run: job, id, state (coloured), when and how long, the error of
    a FAIL or ABORT, each event with its delivery state, and the datasets as URIs. Every
    string is escaped; there is no script."""
    e = html.escape
    states = run.delivery()
    first = run.history[0][1] if run.history else None
    rows = "".join(
        f"<tr><td>{_badge(state.value)}</td>"
        f"<td>+{(when - first).total_seconds():.3f} s</td>"
        f"<td>{e(states.get(format_time(when), 'captured' if not states else 'sending'))}</td>"
        "</tr>"
        for state, when in run.history
        if first is not None
    )
    state = run.state.value if run.state else "not started"
    when = f" · started {e(_clock(first))}" if first is not None else ""
    duration = f" · {e(_duration(run))}" if _duration(run) else ""
    error = ""
    if run.error_message:
        error = (
            '<pre style="white-space:pre-wrap;max-height:12em;overflow:auto;'
            f'border-left:3px solid {_COLOURS.get(state, "#57606a")};padding:4px 8px;margin:6px 0">'
            f"{e(run.error_message)}</pre>"
        )

    def datasets(items: Sequence[Dataset]) -> str:
        if not items:
            return "<i>none</i>"
        return "<br>".join(f"<code>{e(str(d))}</code>" for d in items)

    return (
        '<div class="atlan-ext-run">'
        f"<b>{e(run.job.namespace)} / {e(run.job.name)}</b> {_badge(state)}{duration}{when}"
        f"<br><small>run <code>{e(run.run_id)}</code></small>{error}"
        "<table><tr><th>event</th><th>after start</th><th>delivery</th></tr>"
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
            f"<tr><td>{e(run.job.namespace)}/{e(run.job.name)}</td>"
            f"<td>{_badge(run.state.value if run.state else 'not started')}</td>"
            f"<td>{e(_clock(run.history[0][1])) if run.history else ''}</td>"
            f"<td>{e(_duration(run))}</td>"
            f"<td>{e((run.error_message or '').splitlines()[0][:120] if run.error_message else '')}"
            f"</td><td><code>{e(run.run_id)}</code></td></tr>"
            for run in self.runs
        )
        return (
            "<table><tr><th>job</th><th>state</th><th>started</th><th>took</th><th>error</th>"
            f"<th>run</th></tr>{rows}</table>"
        )
