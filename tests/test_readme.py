"""Every Python snippet and notebook cell in the README runs as written, with nothing
configured (no tenant, an outbox of the test's own), each in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
PLAIN = [block for block in BLOCKS if not re.search(r"^%", block, re.M)]
# Notebook cells: the magic blocks with the plain cells between them, in README order.
FIRST_MAGIC = next(i for i, block in enumerate(BLOCKS) if re.search(r"^%", block, re.M))
CELLS = [block for block in BLOCKS[FIRST_MAGIC:] if not block.startswith("from atlan_ext.")]


def environment(home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLAN_")}
    env["ATLAN_EXT_HOME"] = str(home)
    return env


def run(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_has_snippets() -> None:
    assert len(PLAIN) >= 5
    assert any("%%lineage" in cell for cell in CELLS)


@pytest.mark.parametrize("block", PLAIN, ids=[f"block{i}" for i in range(len(PLAIN))])
def test_python_snippet_runs(block: str, tmp_path: Path) -> None:
    """The block runs; the test functions it defines (the testing-kit example) pass."""
    tests: List[str] = re.findall(r"^def (test_\w+)\(", block, re.M)
    code = block + "".join(f"\n{name}()" for name in tests)
    done = run(code, tmp_path)
    assert done.returncode == 0, f"{block}\n--- stderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr


NOTEBOOK = """
import sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
for cell in {cells!r}:
    result = shell.run_cell(cell)
    if not result.success:
        print("cell failed:", cell, result.error_before_exec or result.error_in_exec)
        sys.exit(1)
"""


def test_notebook_cells_run_in_order(tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    done = run(textwrap.dedent(NOTEBOOK.format(cells=CELLS)), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    from atlan_ext.outbox import Outbox

    events = Outbox(tmp_path / "outbox.db").events()
    assert [e.event_type for e in events] == ["START", "COMPLETE"]
    assert events[0].event["inputs"][0]["name"] == "/tmp/orders.csv"
