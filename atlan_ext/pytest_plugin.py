"""pytest fixtures for testing lineage (installed with atlan-ext; namespaced names).

- ``atlan_lineage_capture``: the list of events captured during the test (nothing is sent).
- ``atlan_mock_tenant``: a :class:`atlan_ext.testing.MockAtlan` (needs respx).
- ``atlan_lineage_outbox``: an outbox of the test's own, in ``tmp_path``.

Loading the plugin imports neither pyatlan's client nor respx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from atlan_ext import testing


@pytest.fixture
def atlan_lineage_capture() -> Iterator[List[Dict[str, Any]]]:
    """Every event atlan-ext makes during the test, captured instead of sent."""
    with testing.capture_lineage() as events:
        yield events


@pytest.fixture
def atlan_lineage_outbox(tmp_path: Path) -> Iterator[Any]:
    """The outbox, in a folder of the test's own (``ATLAN_EXT_HOME`` points there)."""
    with testing.isolated_outbox(tmp_path / "atlan-ext") as outbox:
        yield outbox


@pytest.fixture
def atlan_mock_tenant(atlan_lineage_outbox: Any) -> Iterator[testing.MockAtlan]:
    """A mocked Atlan tenant answering 202, storing into the test's own outbox
    (``atlan_lineage_outbox``); script it, and give ``.client()`` to your code."""
    with testing.MockAtlan(home=Path(atlan_lineage_outbox.path).parent) as tenant:
        yield tenant
