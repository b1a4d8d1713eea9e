"""The testing kit never touches the real outbox: events of a test cannot reach a real
tenant through a later replay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atlan_ext import Dataset, Job, lineage_run
from atlan_ext.outbox import Outbox
from atlan_ext.testing import MockAtlan, capture_lineage, datasets_of


class TestMockAtlanOutbox:
    def test_undelivered_test_events_stay_out_of_the_real_outbox(self) -> None:
        """After 503s inside MockAtlan, the outbox ATLAN_EXT_HOME names holds nothing."""
        real = Path(os.environ["ATLAN_EXT_HOME"]) / "outbox.db"
        with MockAtlan() as tenant:
            tenant.script(*[503] * 12)
            with lineage_run(Job("ol-demo", "TEST_ONLY"), client=tenant.client()):
                pass
            assert tenant.outbox is not None
            assert tenant.outbox.counts()[0] == 2  # kept, in the tenant's own outbox
            assert Path(tenant.outbox.path).parent != real.parent
        assert not real.exists() or Outbox(real).counts() == (0, 0)
        assert os.environ["ATLAN_EXT_HOME"] == str(real.parent)

    def test_a_strict_job_is_captured_without_a_tenant(self) -> None:
        """capture_lineage is for tests without a tenant: a strict run inside it runs and is
        captured (strict=True raises TenantSettingsError only where events would go out)."""
        with capture_lineage() as events, lineage_run(Job("ol-demo", "strict"), strict=True):
            pass
        assert [event["eventType"] for event in events] == ["START", "COMPLETE"]

    def test_a_given_home_is_used(self, tmp_path: Path) -> None:
        with MockAtlan(home=tmp_path) as tenant:
            with lineage_run(Job("ol-demo", "kept"), client=tenant.client()):
                pass
        assert Outbox(tmp_path / "outbox.db").counts() == (0, 2)


class TestDatasetsOf:
    @pytest.mark.parametrize(
        "uri",
        ["file:///tmp/out.csv", "bigquery:proj.sales.orders", "s3://b/k", "postgres://h:5/d.s.t"],
    )
    def test_uris_as_written(self, uri: str) -> None:
        """datasets_of gives each dataset back as the URI it was given (file:///path, not
        file//path; bigquery:table), as Dataset.uri writes it."""
        with capture_lineage() as events, lineage_run(Job("c", "j"), inputs=[uri]) as run:
            pass
        assert datasets_of(events, run.run_id) == ([uri], [])
        assert Dataset.parse(uri).uri == uri
