"""How runs show themselves in a notebook and as text: HTML with a picture of the run
(inputs -> job -> outputs, as inline SVG), Markdown (``nbconvert --to markdown``, GitHub) and
plain text (terminals). Every user string is escaped and there is no script. Needs no
IPython."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

from atlan_ext import _picture
from atlan_ext._values import format_time
from atlan_ext.events import Dataset
from atlan_ext.parent import Parent
from atlan_ext.states import RunState

__all__ = [
    "RunsView",
    "run_html",
    "run_line",
    "run_markdown",
    "run_picture",
    "run_text",
    "summary_bundle",
]


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
    @property
    def parent(self) -> Optional[Parent]: ...
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
        f"<br><small>run <code>{e(run.run_id)}</code></small>"
        f"<div>{run_picture(run)}</div>{error}"
        "<table><tr><th>event</th><th>after start</th><th>delivery</th></tr>"
        f"{rows}</table>"
        "<details><summary>datasets as URIs</summary>"
        f"<p><b>inputs</b><br>{datasets(run.inputs)}</p>"
        f"<p><b>outputs</b><br>{datasets(run.outputs)}</p></details></div>"
    )


def _state(run: _Shown) -> str:
    return run.state.value if run.state else "not started"


def _dataset_box(dataset: Dataset, side: str, number: int) -> _picture.Box:
    return _picture.Box(f"{side}-{number}", dataset.name, dataset.namespace, tooltip=dataset.uri)


def run_picture(run: _Shown) -> str:
    """The run as a picture (inline SVG): its inputs, the job (coloured by state, with the
    message of a FAIL or ABORT under it, and its parent and root runs above it), its
    outputs. Past 8 datasets a side, the rest are one "+ N more" box."""
    state = _state(run)
    ancestors: List[_picture.Box] = []
    parent = run.parent
    if parent is not None:
        root = parent.root
        if root is not None and root[0] != parent.run_id:
            ancestors.append(
                _picture.Box("root", root[2], f"root run \u00b7 {root[1]}", dashed=True)
            )
        ancestors.append(
            _picture.Box(
                "parent", parent.name, f"parent run \u00b7 {parent.namespace}", dashed=True
            )
        )
    job = _picture.Box(
        "job",
        run.job.name,
        f"{run.job.namespace} \u00b7 {state}",
        fill=_COLOURS.get(state, "#57606a"),
        ink="#ffffff",
        stroke=_COLOURS.get(state, "#57606a"),
        tooltip=f"{run.job.namespace} / {run.job.name}\nrun {run.run_id}\n{state}",
        note=f"{state}: {run.error_message}" if run.error_message else "",
    )
    inputs = [_dataset_box(d, "in", n) for n, d in enumerate(run.inputs)]
    outputs = [_dataset_box(d, "out", n) for n, d in enumerate(run.outputs)]
    edges = [(box.key, "job") for box in inputs] + [("job", box.key) for box in outputs]
    edges += [(a.key, b.key) for a, b in zip(ancestors, [*ancestors[1:], job])]
    columns = [inputs, [*ancestors, job], outputs]
    label = (
        f"lineage of {run.job.namespace}/{run.job.name}: {len(run.inputs)} input(s), "
        f"{len(run.outputs)} output(s), {state}"
    )
    return _picture.draw([c for c in columns if c], edges, label=label)


def _md(text: str) -> str:
    """``text`` as literal Markdown: its HTML and Markdown characters escaped."""
    escaped = html.escape(" ".join(text.split()), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", escaped)


def _code(text: str) -> str:
    """``text`` as a Markdown code span, whatever backticks it holds."""
    text = " ".join(text.split())
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _sides(run: _Shown, limit: int = 8) -> Tuple[str, str]:
    def side(items: Sequence[Dataset]) -> str:
        if not items:
            return "none"
        shown = ", ".join(str(d) for d in items[:limit])
        return shown + (f", + {len(items) - limit} more" if len(items) > limit else "")

    return side(run.inputs), side(run.outputs)


def run_text(run: _Shown) -> str:
    """The run as plain text, for terminals: job, state, duration, run id, datasets, and
    the message of a FAIL or ABORT."""
    inputs, outputs = _sides(run)
    took = f" in {_duration(run)}" if _duration(run) else ""
    lines = [
        f"{run.job.namespace}/{run.job.name}: {_state(run)}{took} (run {run.run_id})",
        f"  {inputs} -> [job] -> {outputs}",
    ]
    if run.parent is not None:
        lines.append(f"  parent run: {run.parent.namespace}/{run.parent.name}")
    if run.error_message:
        lines.append("  " + run.error_message.strip().splitlines()[0][:500])
    return "\n".join(lines)


def run_markdown(run: _Shown) -> str:
    """The run as Markdown (``nbconvert --to markdown``): the same facts as the text."""
    took = f" in {_md(_duration(run))}" if _duration(run) else ""
    lines = [
        f"**{_md(run.job.namespace)} / {_md(run.job.name)}**: **{_md(_state(run))}**{took} "
        f"(run {_code(run.run_id)})",
        "",
    ]

    def side(items: Sequence[Dataset]) -> str:
        if not items:
            return "none"
        shown = ", ".join(_code(str(d)) for d in items[:8])
        return shown + (f", \\+ {len(items) - 8} more" if len(items) > 8 else "")

    lines.append(f"- inputs: {side(run.inputs)}")
    lines.append(f"- outputs: {side(run.outputs)}")
    if run.parent is not None:
        lines.append(f"- parent run: {_md(run.parent.namespace)} / {_md(run.parent.name)}")
    if run.error_message:
        lines.append(f"- {_md(_state(run))}: {_code(run.error_message.splitlines()[0][:500])}")
    return "\n".join(lines) + "\n"


def summary_bundle(run: _Shown, delivery: str) -> Dict[str, str]:
    """What a ``%%lineage`` cell shows under its output: one line (job, state, datasets, how
    delivery stands) and the run's picture, as HTML, Markdown and plain text."""
    e = html.escape
    state = _state(run)
    counts = f"{len(run.inputs)} in \u2192 {len(run.outputs)} out"
    took = f" in {_duration(run)}" if _duration(run) else ""
    line = f"lineage: {run.job.namespace}/{run.job.name} {state}{took}, {counts}: {delivery}"
    error = ""
    if run.error_message and run.error_message.strip():
        message = run.error_message.strip().splitlines()[0]
        error = f"<div><code>{e(message[:500])}</code></div>"
    page = (
        '<div class="atlan-ext-summary">'
        f"<small>lineage</small> <b>{e(run.job.namespace)} / {e(run.job.name)}</b> "
        f"{_badge(state)}{e(took)} \u00b7 {e(counts)} \u00b7 "
        f'<span class="atlan-ext-delivery">{e(delivery)}</span>{error}'
        f"<div>{run_picture(run)}</div></div>"
    )
    markdown = (
        f"lineage: **{_md(run.job.namespace)} / {_md(run.job.name)}** **{_md(state)}**"
        f"{' ' + _md(took) if took else ''}, {_md(counts)}: {_md(delivery)}\n"
    )
    first = (run.error_message or "").strip().splitlines()[:1]
    text = line + (f"\n  {first[0][:500]}" if first else "")
    if first:
        markdown += f"\n{_code(first[0][:500])}\n"
    return {"text/plain": text, "text/html": page, "text/markdown": markdown}


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
