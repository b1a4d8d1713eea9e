"""Lineage from Jupyter: the ``%%lineage`` cell magic, the ``%lineage`` line magic, and how a
run shows itself in a notebook.

``%load_ext atlan_ext`` registers the magics (IPython is the ``notebook`` extra). A cell under
``%%lineage --job J`` is one run, through the same code path as :func:`lineage_run`: START,
then COMPLETE, FAIL (the cell raised; a syntax error too) or ABORT (interrupted). The cell
still fails as any cell does: the traceback shows and the exception reaches IPython.

After each ``%%lineage`` cell, a summary (one line and the run's picture) shows under the
cell's output and is updated in place when delivery ends (``%lineage config --no-summary``
turns it off). A failing cell's traceback starts at the user's own code: one cell, theirs.
A bad argument of the magic's own (or a setting it reads) is IPython's ``UsageError`` with
the library's message, raised before the cell runs.

Everything here is synchronous: nothing calls ``asyncio.run`` or patches the notebook's event
loop, and a user's ``AsyncAtlanClient`` is never driven from another loop.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import shlex
import sys
import time
from types import FrameType, TracebackType
from typing import Any, Iterator, List, Optional, Sequence

from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from atlan_ext._run_plan import check_client
from atlan_ext._summary import Summary, kept_in_outbox, why_kept
from atlan_ext.display import RunsView, run_text
from atlan_ext.events import Dataset, Job
from atlan_ext.exceptions import AtlanExtError, InvalidClientError
from atlan_ext.run import AsyncRun, Run, lineage_run
from atlan_ext.send import connector_value, is_async_client

__all__ = ["LineageMagics", "load_ipython_extension"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error to IPython instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage()}")

    def exit(self, status: int = 0, message: Optional[str] = None) -> Any:
        raise UsageError(message or self.format_help())


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """An atlan-ext error raised by the magic's own arguments or settings (a dataset URI, a
    connector, a job's name...) becomes IPython's usage error, with the same message: what to
    fix, without a traceback through atlan-ext. The user's cell never runs inside it, so its
    errors stay its own."""
    try:
        yield
    except AtlanExtError as error:
        raise UsageError(str(error)) from None


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
    parser.add_argument(
        "--summary",
        action=argparse.BooleanOptionalAction,
        help="show a summary with a picture under each %%%%lineage cell (default: on)",
    )
    return parser


def _show_parser() -> _Parser:
    parser = _Parser(
        prog="%lineage show", add_help=False, description="Draw an asset's lineage from Atlan."
    )
    parser.add_argument("asset", help="a qualifiedName, a GUID, or a dataset URI")
    parser.add_argument("--depth", type=int, default=2, help="hops each way (default 2)")
    parser.add_argument("--direction", choices=["both", "upstream", "downstream"], default="both")
    parser.add_argument("--client", metavar="VARIABLE", help="a notebook variable's AtlanClient")
    return parser


_USAGE = """\
%lineage config [--connection C] [--connector spark] [--client VAR] [--[no-]local] [--[no-]wait]
                [--[no-]summary]
%lineage status         this notebook's runs
%lineage last           the last run
%lineage wait [SECONDS] wait for this notebook's lineage to be delivered (default 60 s)
%lineage show ASSET [--depth 2] [--direction both|upstream|downstream] [--client VAR]
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
        self.summary = True
        self.runs: List[Run] = []
        self._ended: List[Run] = []  # runs of this cell, summarised after its output
        self._summaries: List[Summary] = []
        shell.events.register("post_run_cell", self._summarise)

    @line_cell_magic  # type: ignore[untyped-decorator]
    def lineage(self, line: str, cell: Optional[str] = None) -> Any:
        """Lineage for notebook cells; ``%lineage`` alone prints the usage."""
        __tracebackhide__ = True  # IPython leaves our frames out of the user's traceback
        if cell is None:
            with _usage_errors():
                return self._line(line)
        with _usage_errors():  # checked and planned before the cell runs
            helper = self._planned(line)
        with helper as run:
            self.runs.append(run)
            self._ended.append(run)
            return self._execute(cell)

    def _line(self, line: str) -> Any:
        """``%lineage COMMAND ...``."""
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
        if command == "wait":
            return self._wait(rest)
        if command == "show":
            return self._show(rest)
        raise UsageError(f"unknown %lineage command {command!r}\n{_USAGE}")

    def _config(self, words: Sequence[str]) -> None:
        args = _config_parser().parse_args(words)
        # Both checked before either is kept: a refused value leaves the settings as they were.
        connector = connector_value(args.connector) if args.connector else self.connector
        client = self._variable_client(args.client) if args.client else self.client
        self.connector, self.client = connector, client
        if args.connection:
            self.connection = args.connection
        if args.local is not None:
            self.local = args.local
        if args.wait is not None:
            self.background = not args.wait
        if args.summary is not None:
            self.summary = args.summary
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

    def _variable_client(self, name: str) -> Any:
        """The client in the notebook variable ``name``, checked as :class:`lineage_run`
        checks one, and sync: a bad one is refused now, not by every later cell."""
        if name not in self.shell.user_ns:
            raise UsageError(f"--client {name}: no such variable in the notebook")
        client = self.shell.user_ns[name]
        if is_async_client(client):
            raise UsageError(
                f"--client {name} is an AsyncAtlanClient; the magic sends with a sync "
                "AtlanClient (an async client's connections belong to the loop it first ran "
                "on). Use `async with lineage_run(...)` in the cell instead."
            )
        try:
            check_client(client)
        except InvalidClientError as error:
            raise UsageError(f"--client {name}: {error}") from None
        return client

    def _planned(self, line: str) -> lineage_run:
        """The run of a ``%%lineage`` cell, its arguments and the notebook's settings checked
        (nothing is sent yet)."""
        args = _cell_parser().parse_args(shlex.split(line))
        connection = args.connection or self.connection
        if not connection:
            raise UsageError(
                "%%lineage needs a connection: --connection C, or once for the notebook: "
                "%lineage config --connection C"
            )
        return lineage_run(
            Job(connection, args.job, job_type=args.job_type or "JOB"),
            client="local" if self.local else self.client,
            inputs=args.input,
            outputs=args.output,
            connector_type=args.connector or self.connector,
            background=self.background,
        )

    def _summarise(self, result: Any = None) -> None:
        """After a cell (its output and traceback shown): the summary of each run it ended."""
        runs, self._ended = self._ended, []
        if not self.summary:
            return
        # A terminal's publisher (IPython's plain one) prints: it cannot update in place.
        updatable = type(self.shell.display_pub) is not DisplayPublisher
        for run in runs:
            try:
                kept = why_kept(self.local, self.client)
                self._summaries.append(Summary(run, kept, watch=updatable))
            except Exception as error:  # the summary is a nicety: never fail a cell for it
                print(f"lineage: no summary ({type(error).__name__}: {error})")

    def _wait(self, words: Sequence[str]) -> None:
        """``%lineage wait [SECONDS]``: deliver what this notebook's runs left to send (for a
        notebook run unattended, e.g. by papermill, as its last cell), settle each summary,
        and say how delivery ended."""
        from atlan_ext.delivery import flush

        try:
            seconds = float(words[0]) if words else 60.0
        except ValueError:
            raise UsageError(f"%lineage wait {words[0]!r}: give a number of seconds") from None
        if not seconds > 0:
            raise UsageError(f"%lineage wait {words[0]!r}: give a positive number of seconds")
        deadline = time.monotonic() + seconds
        flush(seconds)
        summaries, self._summaries = self._summaries, []  # each is settled once
        for summary in summaries:
            summary.conclude(max(deadline - time.monotonic(), 0.1))
        pending = sum(
            1 for run in self.runs for status in run.delivery().values() if status != "delivered"
        )
        if not pending:
            print(f"lineage: every event of this notebook's {len(self.runs)} run(s) delivered")
            return
        kept = kept_in_outbox(self.runs, why_kept(self.local, self.client))
        print(f"lineage: {pending} event(s) {kept}")

    def _show(self, words: Sequence[str]) -> Any:
        """``%lineage show ASSET``: the asset's lineage read back from Atlan, drawn."""
        from atlan_ext.show import show_lineage

        args = _show_parser().parse_args(words)
        client = self.client
        if args.client:
            if args.client not in self.shell.user_ns:
                raise UsageError(f"--client {args.client}: no such variable in the notebook")
            client = self.shell.user_ns[args.client]
        asset: object = args.asset
        if args.asset.isidentifier() and isinstance(self.shell.user_ns.get(args.asset), Dataset):
            asset = self.shell.user_ns[args.asset]  # a Dataset in a variable
        try:
            return show_lineage(asset, client=client, depth=args.depth, direction=args.direction)
        except AtlanExtError as error:  # what to do, without a traceback through our code
            raise UsageError(f"%lineage show: {error}") from None

    def _execute(self, cell: str) -> Any:
        """Run the cell in the notebook's namespace; return its last expression's value.

        The cell's source is registered as IPython registers a cell's (``compile.cache``), so
        a traceback shows the user's own lines, as ``Cell In[N], line L``."""
        __tracebackhide__ = True
        shell = self.shell
        transformed = shell.transform_cell(cell)
        filename = shell.compile.cache(transformed, _cell_number(shell), raw_code=cell)
        tree = shell.transform_ast(shell.compile.ast_parse(transformed, filename=filename))
        last: Optional[ast.Expression] = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            if tree.body:
                exec(shell.compile(tree, filename, "exec"), shell.user_ns)  # noqa: S102
            if last is not None:
                return eval(shell.compile(last, filename, "eval"), shell.user_ns)  # noqa: S307
        except Exception as error:
            _from_the_users_code(shell, error, filename)
            raise
        return None


def _cell_number(shell: Any) -> int:
    """The number of the cell running now (``In[N]``). IPython counts a cell stored in the
    history before running it, so the count is one ahead, except for a cell not stored."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:  # the cell that called the magic knows its own number
        named = shell.compile.format_code_name(frame.f_code.co_filename)
        if named and named[1].startswith("In[") and named[1][3:-1].isdigit():
            return int(named[1][3:-1])
        frame = frame.f_back
    return int(shell.execution_count)


def _from_the_users_code(shell: Any, error: BaseException, filename: str) -> None:
    """Have IPython show ``error``'s traceback from the user's cell on (IPython asks an
    exception for ``_render_traceback_`` first): without it, the magic's own line shows as
    a second cell above the user's. The cell's first frame is found by its file name; should
    it not be in the traceback, IPython's usual rendering is used."""

    def render() -> List[str]:
        tb: Optional[TracebackType] = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != filename:
            tb = tb.tb_next
        start = tb if tb is not None else error.__traceback__
        offset = 0 if tb is not None else 1
        lines: List[str] = shell.InteractiveTB.structured_traceback(
            type(error), error, start, tb_offset=offset
        )
        return lines

    try:
        error._render_traceback_ = render  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type without a __dict__
        return


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext atlan_ext``), and how a run shows as plain text (a
    terminal); its HTML and Markdown are the run's own (``_repr_html_``, ``_repr_markdown_``)."""
    ipython.register_magics(LineageMagics)
    formatters = ipython.display_formatter.formatters
    for kind in (Run, AsyncRun):
        formatters["text/plain"].for_type(kind, _pretty_run)


def _pretty_run(run: Any, printer: Any, cycle: bool) -> None:
    printer.text(run_text(run))
