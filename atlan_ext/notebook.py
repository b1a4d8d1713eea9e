"""Lineage from Jupyter: the ``%%lineage`` cell magic, the ``%lineage`` line magic, and how a
run shows itself in a notebook.

``%load_ext atlan_ext`` registers the magics (IPython is the ``notebook`` extra). A cell under
``%%lineage --job J`` is one run, through the same code path as :func:`lineage_run`: START,
then COMPLETE, FAIL (the cell raised; a syntax error too) or ABORT (interrupted). The cell
still fails as any cell does: the traceback shows and the exception reaches IPython.

Everything here is synchronous: nothing calls ``asyncio.run`` or patches the notebook's event
loop, and a user's ``AsyncAtlanClient`` is never driven from another loop.
"""

from __future__ import annotations

import argparse
import ast
import html
import shlex
from typing import Any, Dict, List, Optional, Sequence

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from atlan_ext.events import Job, format_time
from atlan_ext.run import _Run, lineage_run
from atlan_ext.send import connector_value, is_async_client

__all__ = ["LineageMagics", "RunsView", "load_ipython_extension", "run_html"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error to IPython instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage()}")

    def exit(self, status: int = 0, message: Optional[str] = None) -> Any:
        raise UsageError(message or self.format_help())


def _cell_parser() -> _Parser:
    parser = _Parser(
        prog="%%lineage", add_help=False, description="Run the cell as one lineage run."
    )
    parser.add_argument("--job", required=True, help="the job's name")
    parser.add_argument("--connection", help="the Atlan OpenLineage connection")
    parser.add_argument("--input", action="append", default=[], metavar="URI")
    parser.add_argument("--output", action="append", default=[], metavar="URI")
    parser.add_argument("--connector", help="connector type (default: the notebook's, spark)")
    parser.add_argument("--job-type", help="jobType facet, e.g. DAG or APPLICATION")
    return parser


def _config_parser() -> _Parser:
    parser = _Parser(
        prog="%lineage config", add_help=False, description="Set the notebook's lineage defaults."
    )
    parser.add_argument("--connection", help="default Atlan OpenLineage connection")
    parser.add_argument("--connector", help="default connector type")
    parser.add_argument(
        "--client",
        metavar="VARIABLE",
        help="a notebook variable holding a sync pyatlan AtlanClient",
    )
    parser.add_argument(
        "--local",
        action=argparse.BooleanOptionalAction,
        help="keep events in the local outbox, whatever the environment says",
    )
    parser.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        help="wait for Atlan's answer after each cell (default: send in the background)",
    )
    return parser


_USAGE = """\
%lineage config [--connection C] [--connector spark] [--client VAR] [--[no-]local] [--[no-]wait]
%lineage status         this notebook's runs
%lineage last           the last run
%%lineage --job J [--connection C] [--input URI]... [--output URI]... [--connector spark]"""


@magics_class
class LineageMagics(Magics):  # type: ignore[misc]
    """``%lineage`` (settings and runs) and ``%%lineage`` (a cell as one run)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.connection: Optional[str] = None
        self.connector = "spark"
        self.client: Any = None
        self.local = False
        self.background = True
        self.runs: List[_Run] = []

    @line_cell_magic  # type: ignore[untyped-decorator]
    def lineage(self, line: str, cell: Optional[str] = None) -> Any:
        """Lineage for notebook cells; ``%lineage`` alone prints the usage."""
        if cell is not None:
            return self._run_cell(line, cell)
        words = shlex.split(line)
        if not words:
            print(_USAGE)
            return None
        command, rest = words[0], words[1:]
        if command == "config":
            return self._config(rest)
        if command == "status":
            return RunsView(self.runs)
        if command == "last":
            if not self.runs:
                raise UsageError("no lineage run in this notebook yet")
            return self.runs[-1]
        raise UsageError(f"unknown %lineage command {command!r}\n{_USAGE}")

    def _config(self, words: Sequence[str]) -> None:
        args = _config_parser().parse_args(words)
        if args.connector:
            self.connector = connector_value(args.connector)
        if args.connection:
            self.connection = args.connection
        if args.client:
            if args.client not in self.shell.user_ns:
                raise UsageError(f"--client {args.client}: no such variable in the notebook")
            client = self.shell.user_ns[args.client]
            if is_async_client(client):
                raise UsageError(
                    f"--client {args.client} is an AsyncAtlanClient; the magic sends with a sync "
                    "AtlanClient (an async client's connections belong to the loop it first ran "
                    "on). Use `async with lineage_run(...)` in the cell instead."
                )
            self.client = client
        if args.local is not None:
            self.local = args.local
        if args.wait is not None:
            self.background = not args.wait
        where = (
            "local outbox"
            if self.local
            else (
                "the given client"
                if self.client is not None
                else "ATLAN_BASE_URL, else local outbox"
            )
        )
        print(
            f"lineage: connection {self.connection or '(set --connection)'}, connector "
            f"{self.connector}, sending to {where}, "
            f"{'in the background' if self.background else 'waiting for Atlan'}"
        )

    def _run_cell(self, line: str, cell: str) -> Any:
        args = _cell_parser().parse_args(shlex.split(line))
        connection = args.connection or self.connection
        if not connection:
            raise UsageError(
                "%%lineage needs a connection: --connection C, or once for the notebook: "
                "%lineage config --connection C"
            )
        helper = lineage_run(
            Job(connection, args.job, job_type=args.job_type),
            client="local" if self.local else self.client,
            inputs=args.input,
            outputs=args.output,
            connector_type=args.connector or self.connector,
            background=self.background,
        )
        with helper as run:
            self.runs.append(run)
            return self._execute(cell)

    def _execute(self, cell: str) -> Any:
        """Run the cell in the notebook's namespace; return its last expression's value."""
        shell = self.shell
        tree = shell.transform_ast(shell.compile.ast_parse(shell.transform_cell(cell)))
        last: Optional[ast.Expression] = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        if tree.body:
            exec(shell.compile(tree, "<lineage cell>", "exec"), shell.user_ns)  # noqa: S102
        if last is not None:
            return eval(shell.compile(last, "<lineage cell>", "eval"), shell.user_ns)  # noqa: S307
        return None


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics: ``%load_ext atlan_ext``."""
    ipython.register_magics(LineageMagics)


# -- how runs look in a notebook -----------------------------------------------------------------


def _delivery_states(run: _Run) -> Dict[str, str]:
    """Delivery state of each of the run's events, by event time."""
    try:
        stored = run._delivery.outbox.events(run.run_id)
    except Exception:  # the outbox is a nicety here; the run shows without it
        return {}
    return {item.event["eventTime"]: item.status for item in stored}


def run_html(run: _Run) -> str:
    """An HTML summary of a run: job, id, state, duration, events, datasets. Every user
    string is escaped; there is no script."""
    e = html.escape
    states = _delivery_states(run)
    rows = "".join(
        f"<tr><td>{e(state.value)}</td><td>{e(format_time(when))}</td>"
        f"<td>{e(states.get(format_time(when), 'captured' if not states else 'sending'))}</td></tr>"
        for state, when in run.history
    )
    duration = ""
    if len(run.history) > 1:
        seconds = (run.history[-1][1] - run.history[0][1]).total_seconds()
        duration = f" · {seconds:.3f} s"

    def datasets(items: Sequence[Any]) -> str:
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


class RunsView:
    """This notebook's runs, as a table (``%lineage status``)."""

    def __init__(self, runs: Sequence[_Run]) -> None:
        self.runs = list(runs)

    def __repr__(self) -> str:
        if not self.runs:
            return "no lineage runs in this notebook yet"
        return "\n".join(_text_line(run) for run in self.runs)

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


def _text_line(run: _Run) -> str:
    events = " -> ".join(state.value for state, _ in run.history)
    return f"{run.job.namespace}/{run.job.name} {run.run_id} {events}"
