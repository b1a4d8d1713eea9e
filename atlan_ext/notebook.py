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
import shlex
from typing import Any, List, Optional, Sequence

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from atlan_ext.display import RunsView
from atlan_ext.events import Job
from atlan_ext.run import Run, lineage_run
from atlan_ext.send import connector_value, is_async_client

__all__ = ["LineageMagics", "load_ipython_extension"]


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
    parser.add_argument("--job-type", help="jobType facet: JOB (default), DAG, APPLICATION...")
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
        self.runs: List[Run] = []

    @line_cell_magic  # type: ignore[untyped-decorator]
    def lineage(self, line: str, cell: Optional[str] = None) -> Any:
        """Lineage for notebook cells; ``%lineage`` alone prints the usage."""
        __tracebackhide__ = True  # IPython leaves our frames out of the user's traceback
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
        __tracebackhide__ = True
        args = _cell_parser().parse_args(shlex.split(line))
        connection = args.connection or self.connection
        if not connection:
            raise UsageError(
                "%%lineage needs a connection: --connection C, or once for the notebook: "
                "%lineage config --connection C"
            )
        helper = lineage_run(
            Job(connection, args.job, job_type=args.job_type or "JOB"),
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
        """Run the cell in the notebook's namespace; return its last expression's value.

        The cell's source is registered as IPython registers a cell's (``compile.cache``), so
        a traceback shows the user's own lines, as ``Cell In[N], line L``."""
        __tracebackhide__ = True
        shell = self.shell
        transformed = shell.transform_cell(cell)
        filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
        tree = shell.transform_ast(shell.compile.ast_parse(transformed, filename=filename))
        last: Optional[ast.Expression] = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        if tree.body:
            exec(shell.compile(tree, filename, "exec"), shell.user_ns)  # noqa: S102
        if last is not None:
            return eval(shell.compile(last, filename, "eval"), shell.user_ns)  # noqa: S307
        return None


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics: ``%load_ext atlan_ext``."""
    ipython.register_magics(LineageMagics)
