"""Conversions keep every field: per-side dataset facets, raw events holding text or lists,
pyatlan's two model families, a pyatlan job's producer; check_event normalises what it can."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from atlan_ext import (
    InvalidEventError,
    Job,
    RunId,
    as_event,
    check_event,
    lineage_run,
)
from atlan_ext.events import as_dataset, as_events, as_job, build_event
from atlan_ext.testing import capture_lineage

QUALITY_IN = {"_producer": "https://x.io", "_schemaURL": "https://x.io/s", "rowCount": 100}
QUALITY_DS = {"_producer": "https://x.io", "_schemaURL": "https://x.io/s", "rowCount": 7}


class TestPerSideFacets:
    def test_pyatlan_input_dataset_keeps_both_sides(self) -> None:
        """A facet name on both sides keeps both values (rowCount 100 stays 100)."""
        from pyatlan.model.open_lineage.input_dataset import OpenLineageInputDataset

        pyatlan_dataset = OpenLineageInputDataset(
            namespace="s3://b",
            name="orders",
            facets={"dataQualityMetrics": QUALITY_DS},
            input_facets={"dataQualityMetrics": QUALITY_IN},
        )
        data = as_dataset(pyatlan_dataset).to_dict()
        assert data["facets"]["dataQualityMetrics"]["rowCount"] == 7
        assert data["inputFacets"]["dataQualityMetrics"]["rowCount"] == 100

    def test_openlineage_python_output_dataset_through_a_run(self) -> None:
        """openlineage-python's outputFacets reach the events of a run as outputFacets."""
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset

        stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=5)
        dataset = OutputDataset("s3://b", "out", outputFacets={"outputStatistics": stats})
        with capture_lineage() as events, lineage_run(Job("c", "j"), outputs=[dataset]):
            pass
        assert events[-1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 5
        assert events[-1]["outputs"][0]["facets"] == {}

    def test_dataset_reads_as_its_uri(self) -> None:
        assert str(as_dataset("file:///tmp/x.csv")) == "file:///tmp/x.csv"
        assert str(as_dataset("s3://b/k")) == "s3://b/k"


class TestRawEvents:
    def test_raw_event_holding_text(self, pyatlan_fixtures: Path) -> None:
        """A raw event that holds JSON text reads as that event."""
        from pyatlan.model.open_lineage.event import OpenLineageRawEvent

        text = (pyatlan_fixtures / "event_start.json").read_text()
        assert as_event(OpenLineageRawEvent.parse_obj(text)) == as_event(text)

    def test_raw_event_holding_a_list(self, pyatlan_fixtures: Path) -> None:
        """pyatlan's raw_events_list: as_event says to use as_events, which reads them all."""
        from pyatlan.model.open_lineage.event import OpenLineageRawEvent

        data = json.loads((pyatlan_fixtures / "raw_events_list.json").read_text())
        raw = OpenLineageRawEvent.parse_obj(data)
        with pytest.raises(InvalidEventError, match="use as_events"):
            as_event(raw)
        assert as_events(raw) == [as_event(item) for item in data]
        assert as_events(json.dumps(data)) == as_events(data)


class TestPyatlanV9:
    def test_v9_event_dataset_and_job(self) -> None:
        """pyatlan 11's pyatlan_v9 models (same class names) are read like the others."""
        v9 = pytest.importorskip("pyatlan_v9.model.open_lineage.event")
        from pyatlan_v9.model.open_lineage.input_dataset import OpenLineageInputDataset
        from pyatlan_v9.model.open_lineage.job import OpenLineageJob

        job = OpenLineageJob(namespace="ol-demo", name="v9", producer="https://me.io/p")
        assert as_job(job).producer == "https://me.io/p"
        dataset = OpenLineageInputDataset(
            namespace="s3://b", name="k", input_facets={"dataQualityMetrics": QUALITY_IN}
        )
        assert as_dataset(dataset).input_facets["dataQualityMetrics"]["rowCount"] == 100
        raw = v9.OpenLineageRawEvent(
            data=json.dumps(build_event("START", Job("c", "j"), RunId.new()))
        )
        assert as_event(raw)["eventType"] == "START"


class TestProducer:
    def test_pyatlan_job_producer_is_kept(self) -> None:
        from pyatlan.model.open_lineage.job import OpenLineageJob

        job = OpenLineageJob(namespace="ol-demo", name="j", producer="https://me.io/p")
        assert build_event("START", job, RunId.new())["producer"] == "https://me.io/p"
        assert build_event("START", Job("c", "j"), RunId.new())["producer"].startswith(
            "https://pypi.org/project/atlan-ext/"
        )


class TestNormalise:
    def test_event_type_and_run_id(self, validate_event: Any) -> None:
        """check_event returns what the schema accepts: COMPLETE, a canonical UUID."""
        run_id = RunId.new()
        event: Dict[str, Any] = build_event("COMPLETE", Job("c", "j"), run_id)
        event["eventType"] = " complete "
        event["run"]["runId"] = "{" + run_id.upper() + "}"
        checked = check_event(event)
        assert checked["eventType"] == "COMPLETE"
        assert checked["run"]["runId"] == run_id
        validate_event(checked)


class TestFromKeyTimes:
    def test_zoneless_date_time_is_refused(self) -> None:
        from datetime import datetime

        from atlan_ext import InvalidTimeError, RunId

        for part in ("2026-11-25T00:00:00", datetime(2026, 11, 25)):
            with pytest.raises(InvalidTimeError, match="without a zone"):
                RunId.from_key("load", part)

    def test_aware_time_sets_the_time_bits(self) -> None:
        import uuid

        from atlan_ext import RunId

        made = uuid.UUID(RunId.from_key("load", "2026-11-25T00:00:00Z"))
        assert made.int >> 80 == 1_795_564_800_000  # ms since the epoch
        assert RunId.from_key("load", "2026-11-25") == RunId.from_key("load", "2026-11-25")
