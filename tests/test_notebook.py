"""The %%lineage cell magic and %lineage line magic, in IPython's InteractiveShell and in a
real Jupyter kernel."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

pytest.importorskip("IPython")

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from atlan_ext import Job, lineage_run
from atlan_ext.testing import MockAtlan, assert_paired, capture_lineage

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lineage_notebook.ipynb"


@pytest.fixture
def shell() -> Iterator[Any]:
    config = Config()
    config.HistoryManager.enabled = False
    ipython = InteractiveShell.instance(config=config)
    ipython.run_cell("%load_ext atlan_ext", store_history=False)
    ipython.run_cell("%lineage config --connection ol-nb", store_history=False)
    yield ipython
    ipython.run_cell("%unload_ext atlan_ext", store_history=False)
    InteractiveShell.clear_instance()


def states(events: List[Dict[str, Any]]) -> List[str]:
    return [event["eventType"] for event in events]


def cell(shell: Any, code: str) -> Any:
    return shell.run_cell(code, store_history=False)


class TestCellMagic:
    def test_success(self, shell: Any) -> None:
        """A cell is one run: START, then COMPLETE; the last expression is the cell's value;
        names it defines stay in the notebook."""
        with capture_lineage() as events:
            result = cell(
                shell,
                "%%lineage --job load --input s3://b/in --output s3://b/out\n"
                "rows = [1, 2, 3]\nsum(rows)",
            )
        assert result.success
        assert result.result == 6
        assert shell.user_ns["rows"] == [1, 2, 3]
        assert states(events) == ["START", "COMPLETE"]
        assert (events[0]["job"]["namespace"], events[0]["job"]["name"]) == ("ol-nb", "load")
        assert events[0]["job"]["facets"]["jobType"]["jobType"] == "JOB"
        assert [d["name"] for d in events[1]["outputs"]] == ["out"]

    def test_exception_fails_the_cell_and_the_run(self, shell: Any, capsys: Any) -> None:
        """The cell raises: FAIL with the error, the traceback shows, the cell fails."""
        with capture_lineage() as events:
            result = cell(shell, "%%lineage --job load\nraise ValueError('bad row 7')")
        assert not result.success
        assert isinstance(result.error_in_exec, ValueError)
        assert states(events) == ["START", "FAIL"]
        assert events[1]["run"]["facets"]["errorMessage"]["message"] == "ValueError: bad row 7"
        assert "bad row 7" in capsys.readouterr().out

    def test_traceback_shows_the_users_own_lines(self, shell: Any, capsys: Any) -> None:
        """The traceback names one cell, the user's, with its source; neither the magic's
        line nor our frames show."""
        code = (
            "%%lineage --job load\nrows = 7\ndef f():\n    raise ValueError(f'bad row {rows}')\nf()"
        )
        shell.run_cell(code, store_history=True)
        number = shell.execution_count - 1
        out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
        assert "----> 3     raise ValueError(f'bad row {rows}')" in out
        assert set(re.findall(r"Cell In\[\d+\]", out)) == {f"Cell In[{number}]"}
        assert "run_cell_magic" not in out
        assert "Could not get source" not in out
        assert "<lineage cell>" not in out
        assert "notebook.py" not in out

    def test_syntax_error_is_fail(self, shell: Any) -> None:
        """A syntax error in the cell is a FAIL with the error in the facet."""
        with capture_lineage() as events:
            result = cell(shell, "%%lineage --job load\nx = (1,")
        assert not result.success
        assert states(events) == ["START", "FAIL"]
        assert "SyntaxError" in events[1]["run"]["facets"]["errorMessage"]["message"]

    def test_interrupt_is_abort(self, shell: Any) -> None:
        """An interrupted cell is ABORT."""
        with capture_lineage() as events:
            result = cell(shell, "%%lineage --job load\nraise KeyboardInterrupt")
        assert not result.success
        assert states(events) == ["START", "ABORT"]

    def test_nested_run_in_a_cell(self, shell: Any) -> None:
        """lineage_run inside a %%lineage cell is a child run of the cell's run."""
        shell.user_ns.update(lineage_run=lineage_run, Job=Job)
        with capture_lineage() as events:
            cell(shell, "%%lineage --job outer\nwith lineage_run(Job('ol-nb', 'inner')):\n    pass")
        assert_paired(events)
        inner = [e for e in events if e["job"]["name"] == "inner"]
        assert inner[0]["run"]["facets"]["parent"]["job"]["name"] == "outer"

    def test_needs_a_connection(self) -> None:
        """Without a connection anywhere, a usage error says how to set one; nothing runs."""
        config = Config()
        config.HistoryManager.enabled = False
        fresh = InteractiveShell.instance(config=config)
        try:
            fresh.run_cell("%load_ext atlan_ext", store_history=False)
            with capture_lineage() as events:
                result = fresh.run_cell("%%lineage --job j\nran = True", store_history=False)
            assert not result.success
            assert "ran" not in fresh.user_ns
            assert events == []
        finally:
            InteractiveShell.clear_instance()

    def test_bad_arguments(self, shell: Any) -> None:
        """A malformed dataset URI or a missing --job fails the cell before it runs."""
        with capture_lineage() as events:
            assert not cell(shell, "%%lineage --job j --input orders\nran = 1").success
            assert not cell(shell, "%%lineage\nran = 1").success
        assert "ran" not in shell.user_ns
        assert events == []

    def test_sends_with_the_notebooks_client(self, shell: Any) -> None:
        """%lineage config --client VAR sends with that sync AtlanClient (in the background
        by default); an AsyncAtlanClient is refused."""
        from atlan_ext.delivery import flush

        with MockAtlan() as tenant:
            shell.user_ns["client"] = tenant.client()
            shell.user_ns["aclient"] = tenant.async_client()
            assert cell(shell, "%lineage config --client client").success
            assert cell(shell, "%%lineage --job sent\n1 + 1").success
            assert flush(10)
            refused = cell(shell, "%lineage config --client aclient")
        assert not refused.success
        assert states(tenant.accepted) == ["START", "COMPLETE"]


class TestSummary:
    def test_shown_sending_then_updated_in_place(self, shell: Any) -> None:
        """Under a %%lineage cell, the summary first says it is sending (the tenant is down),
        then %lineage wait, once the tenant is back, updates that same display to
        "delivered"."""
        from IPython.core.displaypub import CapturingDisplayPublisher

        shell.display_pub = CapturingDisplayPublisher()
        with MockAtlan() as tenant:
            shell.user_ns["client"] = tenant.down().client()
            assert cell(shell, "%lineage config --client client").success
            assert cell(shell, "%%lineage --job load --output s3://b/out\n1").success
            (first,) = shell.display_pub.outputs
            assert first["update"] is False
            display_id = first["transient"]["display_id"]
            assert "sending\u2026 (should the kernel stop first" in first["data"]["text/plain"]
            assert "<svg" in first["data"]["text/html"]
            tenant.up()
            assert cell(shell, "%lineage wait 60").success
        last = shell.display_pub.outputs[-1]
        assert last["update"] is True
        assert last["transient"]["display_id"] == display_id
        assert last["data"]["text/plain"].endswith(": delivered")
        assert states(tenant.accepted) == ["START", "COMPLETE"]

    def test_a_terminal_gets_the_line_once(self, shell: Any, capsys: Any) -> None:
        """In a terminal (IPython's plain publisher), the summary is printed once, as text."""
        cell(shell, "%lineage config --local")
        cell(shell, "%%lineage --job load --input s3://b/in\npass")
        out = capsys.readouterr().out
        assert out.count("lineage: ol-nb/load COMPLETE") == 1
        assert "s3://b/in" not in out  # one line: counts, not the datasets
        assert "kept in the outbox (%lineage config --local)" in out


class TestLineMagic:
    def test_status_and_last(self, shell: Any) -> None:
        """%lineage status lists the notebook's runs; %lineage last is the last run."""
        cell(shell, "%%lineage --job first\npass")
        cell(shell, "%%lineage --job second\npass")
        status = cell(shell, "%lineage status").result
        assert "ol-nb/first" in repr(status)
        assert "START -> COMPLETE" in repr(status)
        assert "<table>" in status._repr_html_()
        last = cell(shell, "%lineage last").result
        assert last.job.name == "second"

    def test_unknown_command(self, shell: Any) -> None:
        """An unknown sub-command is a usage error listing the commands."""
        assert not cell(shell, "%lineage nonsense").success


class TestRunHtml:
    def test_run_renders_and_escapes(self, tmp_path: Path) -> None:
        """A run renders as HTML with job, id, events with delivery state, datasets; user
        strings are escaped and there is no script."""
        job = Job("ol-<b>nb</b>", "<script>alert(1)</script>")
        with lineage_run(job, inputs=["s3://b/<img src=x onerror=alert(1)>"]) as run:
            pass
        page = run._repr_html_()
        assert "<script>" not in page
        assert "&lt;script&gt;" in page
        assert "<img" not in page
        assert run.run_id in page
        assert re.search(r"START</span></td><td>\+[0-9.]+ s</td><td>pending", page)
        assert "COMPLETE" in page

    def test_a_failed_run_shows_its_state_error_and_uris(self) -> None:
        """FAIL in red with its error message; times for people; datasets as URIs."""
        with (
            pytest.raises(ValueError),
            lineage_run(
                Job("ol-nb", "load"), inputs=["file:///tmp/in.csv"], outputs=["s3://b/out"]
            ) as run,
        ):
            raise ValueError("bad row <7>")
        page = run._repr_html_()
        assert "background:#cf222e" in page  # FAIL's colour
        assert "ValueError: bad row &lt;7&gt;" in page
        assert "<code>file:///tmp/in.csv</code>" in page
        assert "<code>s3://b/out</code>" in page
        assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{6}", page)  # no microseconds
        assert re.search(r"started \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", page)


@pytest.fixture(scope="module")
def example(tmp_path_factory: Any) -> Any:
    """The example notebook, run once in a real kernel with nothing configured; and the
    outbox folder it used."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    home = tmp_path_factory.mktemp("example") / "kernel-home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATLAN_EXT_HOME", str(home))
        for name in ("ATLAN_BASE_URL", "ATLAN_API_KEY"):
            patch.delenv(name, raising=False)
        notebook = nbformat.read(str(EXAMPLE), as_version=4)
        nbclient.NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(EXAMPLE.parent)}},
        ).execute()
    return notebook, home


class TestRealKernel:
    def test_example_notebook_runs_top_to_bottom(self, example: Any) -> None:
        """The example notebook runs in a real kernel with nothing configured; its runs are
        in the outbox it used; the %%lineage cell's summary draws the run and says why its
        events are kept; %lineage wait says so too."""
        notebook, home = example
        from atlan_ext.outbox import Outbox

        stored = Outbox(home / "outbox.db").events()
        events = [item.event for item in stored]
        assert_paired(events)
        assert {e["job"]["name"] for e in events} >= {"daily_totals_notebook"}
        (magic,) = [c for c in notebook.cells if c.source.startswith("%%lineage")]
        (summary,) = [o for o in magic.outputs if o.output_type == "display_data"]
        page = summary.data["text/html"]
        assert "<svg" in page
        for name in ("orders.csv", "daily_totals_notebook.csv", "COMPLETE"):
            assert name in page
        assert "kept in the outbox (no Atlan tenant configured" in summary.data["text/plain"]
        (last,) = notebook.cells[-1].outputs
        assert last.text.startswith("lineage: 2 event(s) kept in the outbox (no Atlan tenant")

    def test_example_notebook_as_rendered(self, example: Any, tmp_path: Path) -> None:
        """Rendered by headless Chromium, the example notebook's outputs show the pictures:
        the COMPLETE job boxes (green) of the summary and of %lineage last, and the dataset
        boxes' outlines."""
        import pictures

        if pictures.chromium() is None:
            pytest.skip("headless Chromium (Debian package chromium) is not installed")
        notebook, _ = example
        shot = pictures.screenshot(
            pictures.notebook_page(notebook, "examples/lineage_notebook.ipynb"),
            tmp_path / "notebook-run.png",
        )
        width, height, rows = pictures.read_png(shot)
        assert (width, height) == (1200, 900)
        job_box = 240 * 42
        assert pictures.count(rows, "#1a7f37") > 1.5 * job_box  # two job boxes, and badges
        assert pictures.count(rows, "#8c959f", tolerance=20) > 1000  # outlines and arrows


def run_notebook(
    sources: List[str], home: Path, monkeypatch: Any, tenant: Optional[str] = None
) -> Any:
    """Run ``sources`` as a notebook's cells in a real kernel (nbclient); errors are kept as
    outputs. ``tenant``: the base URL the kernel's environment names (else none)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("ATLAN_EXT_HOME", str(home))
    for name in ("ATLAN_BASE_URL", "ATLAN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    if tenant is not None:
        monkeypatch.setenv("ATLAN_BASE_URL", tenant)
        monkeypatch.setenv("ATLAN_API_KEY", "notebook-test-key")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", allow_errors=True
    ).execute()
    return notebook


def outputs(notebook: Any, index: int, kind: str) -> List[Any]:
    return [o for o in notebook.cells[index].outputs if o.output_type == kind]


def printed(notebook: Any, index: int) -> str:
    """What a cell printed, and nothing on stderr. The kernel sends its stdout in pieces, one
    per flush (every 0.2 s): on a busy machine one print() can arrive as two outputs, its text
    and then its newline."""
    streams = outputs(notebook, index, "stream")
    assert [o.text for o in streams if o.name != "stdout"] == []
    return "".join(o.text for o in streams)


class TestSummaryInAKernel:
    def test_summary_under_each_cell_updated_after_delivery(
        self, tmp_path: Path, monkeypatch: Any
    ) -> None:
        """Each %%lineage cell shows a summary with the picture (every dataset named, the
        state, a FAIL's message), updated in place to "delivered" (the tenant is down until
        after the cells ran, so nothing was delivered when they were first shown); the
        failing cell's traceback names one cell, its own; %lineage wait says all arrived."""
        notebook = run_notebook(
            [
                "%load_ext atlan_ext",
                "from atlan_ext.testing import MockAtlan\n"
                "tenant = MockAtlan().__enter__().down()\n"
                "client = tenant.client()\n"
                "%lineage config --connection ol-nb --client client",
                "%%lineage --job load --input s3://b/orders.csv --output s3://b/<daily>&x\n"
                "sum([1, 2, 3])",
                "%%lineage --job broken --input s3://b/orders.csv\nraise ValueError('bad <row> 7')",
                "tenant.up();",
                "%lineage wait 60",
            ],
            tmp_path / "home",
            monkeypatch,
        )
        (result,) = outputs(notebook, 2, "execute_result")
        assert result.data["text/plain"] == "6"
        (ok,) = outputs(notebook, 2, "display_data")
        page = ok.data["text/html"]
        assert "<svg" in page
        assert "<script" not in page
        for name in ("orders.csv", "&lt;daily&gt;&amp;x", "load", "COMPLETE"):
            assert name in page
        assert ok.data["text/plain"].endswith(": delivered")
        assert "delivered" in ok.data["text/markdown"]

        (error,) = outputs(notebook, 3, "error")
        cells = {re.sub(r"\x1b\[[0-9;]*m", "", line).split(",")[0] for line in error.traceback}
        assert [c for c in cells if c.startswith("Cell In[")] == ["Cell In[4]"]
        (failed,) = outputs(notebook, 3, "display_data")
        assert "FAIL" in failed.data["text/html"]
        assert "bad &lt;row&gt; 7" in failed.data["text/html"]
        assert "ValueError: bad <row> 7" in failed.data["text/plain"]
        assert failed.data["text/plain"].splitlines()[0].endswith(": delivered")

        said = printed(notebook, 5)
        assert said == "lineage: every event of this notebook's 2 run(s) delivered\n"

    def test_summary_says_why_events_are_kept(self, tmp_path: Path, monkeypatch: Any) -> None:
        """With no tenant, the summary says the events are kept in the outbox and why; with
        --no-summary there is none."""
        notebook = run_notebook(
            [
                "%load_ext atlan_ext\n%lineage config --connection ol-nb",
                "%%lineage --job kept --output file:///tmp/out.csv\npass",
                "%lineage config --no-summary",
                "%%lineage --job quiet\npass",
                "%lineage wait 5",
            ],
            tmp_path / "home",
            monkeypatch,
        )
        (kept,) = outputs(notebook, 1, "display_data")
        assert "kept in the outbox (no Atlan tenant configured" in kept.data["text/plain"]
        assert "atlan-lineage replay" in kept.data["text/plain"]
        assert outputs(notebook, 3, "display_data") == []
        said = printed(notebook, 4)
        assert said.startswith("lineage: 4 event(s) kept in the outbox (no Atlan tenant")
        assert said.count("\n") == 1, said  # one line, said once


class TestConfig:
    def test_settings_persist_until_changed(self, shell: Any, monkeypatch: Any) -> None:
        """Each %lineage config changes only what it names: --local stays on until --no-local."""
        monkeypatch.setenv("ATLAN_BASE_URL", "https://tenant.atlan.test")
        monkeypatch.setenv("ATLAN_API_KEY", "key-from-env")
        with MockAtlan(home=os.environ["ATLAN_EXT_HOME"]) as tenant:
            assert cell(shell, "%lineage config --local").success
            assert cell(shell, "%lineage config --connector airflow").success
            assert cell(shell, "%%lineage --job kept\npass").success
            assert tenant.received == []  # still local, though the environment names a tenant
        from atlan_ext.delivery import default_outbox

        stored = default_outbox().events()
        assert [e.event_type for e in stored] == ["START", "COMPLETE"]
        assert {e.connector for e in stored} == {"airflow"}


def said_on(notebook: Any, index: int, stream: str) -> str:
    return "".join(o.text for o in outputs(notebook, index, "stream") if o.name == stream)


class TestBadMagicArgumentsInAKernel:
    def test_a_usage_error_that_names_the_value_and_the_fix(
        self, tmp_path: Path, monkeypatch: Any
    ) -> None:
        """A malformed dataset URI, an unknown connector and a --client that is not a client
        are usage errors with the library's own message, without a traceback; the cell body
        does not run, the settings stay as they were, and later cells run. An atlan-ext
        error raised by the user's own code in the cell stays theirs, traceback and all."""
        from atlan_ext import Dataset, InvalidDatasetError, UnsupportedConnectorError
        from atlan_ext.send import connector_value

        notebook = run_notebook(
            [
                "%load_ext atlan_ext\n%lineage config --connection ol-nb",
                "%%lineage --job bad --input orders.csv\nran = True",
                "%lineage config --connector bogus",
                "x = 5",
                "%lineage config --connector airflow --client x",
                "%lineage config",
                "%%lineage --job after\nafter = True",
                "%%lineage --job mine\nfrom atlan_ext import Job, lineage_run\n"
                "lineage_run(Job('ol-nb', 'inner'), inputs=['orders.csv'])",
                "print(sorted(name for name in ('ran', 'after') if name in globals()))",
            ],
            tmp_path / "home",
            monkeypatch,
        )
        with pytest.raises(InvalidDatasetError) as uri:
            Dataset.parse("orders.csv")
        with pytest.raises(UnsupportedConnectorError) as connector:
            connector_value("bogus")
        expected = {
            1: f"UsageError: {uri.value}\n",
            2: f"UsageError: {connector.value}\n",
            4: "UsageError: --client x: client must be a pyatlan AtlanClient, AsyncAtlanClient, "
            "atlan_ext Tenant, None or 'local', got int\n",
        }
        for index, message in expected.items():
            assert outputs(notebook, index, "error") == [], notebook.cells[index].source
            assert said_on(notebook, index, "stderr") == message
        assert "connector spark, sending to ATLAN_BASE_URL" in printed(notebook, 5)
        assert outputs(notebook, 6, "error") == []

        (mine,) = outputs(notebook, 7, "error")
        assert mine.ename == "InvalidDatasetError"
        assert mine.evalue == str(uri.value)
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in mine.traceback]
        assert [line.split(",")[0] for line in lines if line.startswith("Cell In[")] == [
            "Cell In[8]"
        ]
        assert printed(notebook, 8) == "['after']\n"


# pyatlan imported first (seconds): the kernel's first send then comes at once, not after
# the wait.
_PYATLAN_LOADED = (
    "import pyatlan.client.atlan\n%load_ext atlan_ext\n%lineage config --connection ol-nb"
)


def _kept_after_wait(
    tmp_path: Path, monkeypatch: Any, tenant: Any, status: int, wait: int
) -> Tuple[str, str]:
    """One %%lineage cell against a tenant that always answers ``status``, then
    ``%lineage wait``: what the wait printed and the cell's summary."""
    tenant.script = [status] * 1000
    notebook = run_notebook(
        [_PYATLAN_LOADED, "%%lineage --job held\npass", f"%lineage wait {wait}"],
        tmp_path / "home",
        monkeypatch,
        tenant=tenant.base_url,
    )
    (summary,) = outputs(notebook, 1, "display_data")
    return said_on(notebook, 2, "stdout"), summary.data["text/plain"]


class TestWaitSaysWhoSends:
    @pytest.mark.slow  # waits on real processes for long: run by .ci/run
    def test_a_tenant_that_does_not_answer_is_left_to_a_courier(
        self, tmp_path: Path, monkeypatch: Any, loopback_tenant: Any
    ) -> None:
        """With a tenant configured that answers 503, %lineage wait and the summary say the
        events are sent again when Atlan answers, by the kernel or after it by a courier
        process, and how to watch them: never to replay them."""
        monkeypatch.delenv("ATLAN_EXT_COURIER", raising=False)
        said, summary = _kept_after_wait(tmp_path, monkeypatch, loopback_tenant, 503, 5)
        assert said.startswith("lineage: 2 event(s) kept in the outbox (Atlan answered HTTP 503"), (
            said
        )
        for text in (said, summary):
            assert (
                "sent again when Atlan answers (by this process, or after it exits by a "
                "courier process); atlan-lineage status shows them" in text
            ), text
            assert "replay" not in text

    def test_a_refused_key_is_for_a_replay_once_fixed(
        self, tmp_path: Path, monkeypatch: Any, loopback_tenant: Any
    ) -> None:
        """When the tenant refuses the key (an answer only a fixed setting changes), nothing
        more is tried: %lineage wait and the summary say to fix it and then replay, and no
        courier is promised."""
        said, summary = _kept_after_wait(tmp_path, monkeypatch, loopback_tenant, 401, 30)
        assert said.startswith("lineage: 2 event(s) kept in the outbox ("), said
        for text in (said, summary):
            assert "401" in text, text
            assert (
                "nothing more is sent to it until that is fixed: then send it with: "
                "atlan-lineage replay" in text
            ), text
            assert "courier" not in text, text
