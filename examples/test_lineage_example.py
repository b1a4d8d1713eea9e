"""How to test your own job's lineage with atlan-ext's pytest fixtures (installed with the
package; MockAtlan needs `pip install 'atlan-ext[testing]'`). Run: python3 -m pytest examples"""

from __future__ import annotations

from typing import Any, Dict, List

from atlan_ext import Job, lineage_run
from atlan_ext.testing import MockAtlan, assert_paired, datasets_of

JOB = Job("ol-demo", "nightly_orders_load")


def nightly_load(client: Any = None) -> int:
    """The job under test: a unit of work that reports its lineage."""
    with lineage_run(JOB, client=client, inputs=["snowflake://acct/RAW.PUBLIC.ORDERS"]) as run:
        rows = 42
        run.add_output("snowflake://acct/ANALYTICS.PUBLIC.ORDERS")
    return rows


def test_reports_its_lineage(atlan_lineage_capture: List[Dict[str, Any]]) -> None:
    """Nothing is sent: the events are captured for assertions."""
    assert nightly_load() == 42
    assert_paired(atlan_lineage_capture)
    run_id = atlan_lineage_capture[0]["run"]["runId"]
    assert datasets_of(atlan_lineage_capture, run_id) == (
        ["snowflake://acct/RAW.PUBLIC.ORDERS"],
        ["snowflake://acct/ANALYTICS.PUBLIC.ORDERS"],
    )


def test_survives_a_flaky_tenant(atlan_mock_tenant: MockAtlan) -> None:
    """Two 503s, then Atlan accepts: pyatlan's retries deliver, exactly once."""
    atlan_mock_tenant.script(503, 503, 202)
    assert nightly_load(client=atlan_mock_tenant.client()) == 42
    assert [e["eventType"] for e in atlan_mock_tenant.accepted] == ["START", "COMPLETE"]


def test_keeps_lineage_when_atlan_is_down(
    atlan_mock_tenant: MockAtlan, atlan_lineage_outbox: Any
) -> None:
    """Atlan down: the job still succeeds and its events wait in the outbox."""
    atlan_mock_tenant.down()
    assert nightly_load(client=atlan_mock_tenant.client()) == 42
    assert [e.event_type for e in atlan_lineage_outbox.events(pending_only=True)] == [
        "START",
        "COMPLETE",
    ]
