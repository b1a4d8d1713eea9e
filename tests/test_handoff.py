"""The job thread's hand-off: a run's events made from values checked once, and their JSON
made from fragments encoded once, are the same events and the same bytes as before."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List

import pytest

from atlan_ext import Dataset, Job, Parent, RunId, facets, lineage_run
from atlan_ext._event_build import event_text, facets_text, head_text, parts_text
from atlan_ext.delivery import default_outbox, flush
from atlan_ext.events import PRODUCER, as_dataset, build_event
from atlan_ext.testing import MockAtlan

NOMINAL = datetime(2026, 12, 3, tzinfo=timezone.utc)
Validate = Callable[[Dict[str, Any]], Dict[str, Any]]


def compact(event: Dict[str, Any]) -> str:
    """The event encoded whole, as the journal and the outbox encode it."""
    return json.dumps(event, separators=(",", ":"))


JOBS = [
    Job("ol-spark", "plain"),
    Job("ol-spark", "described", description="d\u00e9j\u00e0 vu \u2028", sql="SELECT '\"'"),
    Job("ol-spark", "no_type", job_type=None, facets={"x": {"n": [1, 2.5, None, True]}}),
    Job("ol-spark", "produced", producer="https://github.com/atlanhq/atlan-python"),
]
DATASETS = [
    [],
    [Dataset.parse("snowflake://acct/DB.S.T")],
    [
        Dataset("s3://bucket", "k\u00fcy/part \U0001f600", {"schema": {"fields": []}}),
        Dataset(
            "file",
            "/tmp/x.csv",
            input_facets={"i": {"rows": 3}},
            output_facets={"o": {"note": "tab\there"}},
        ),
    ],
]


def _spec_shape(
    event: Dict[str, Any], job: Job, inputs: List[Dataset], outputs: List[Dataset]
) -> Dict[str, Any]:
    """The RunEvent the 2-0-2 spec describes, written out here by hand from the event's own
    time, type, run id, facets and producer and the job's and datasets' dicts, in the order
    the outbox and the journal encode it."""
    run = event["run"]
    return {
        "eventTime": event["eventTime"],
        "producer": job.producer or PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "eventType": event["eventType"],
        "run": {"runId": run["runId"], "facets": run["facets"]},
        "job": job.to_dict(),
        "inputs": [dataset.to_dict() for dataset in inputs],
        "outputs": [dataset.to_dict() for dataset in outputs],
    }


def _text_of(event: Dict[str, Any], job: Job, inputs: List[Dataset], outputs: List[Dataset]) -> str:
    """The text a run makes for ``event``, from the same values (as a run's _prepare does)."""
    run = event["run"]
    return event_text(
        event["eventType"],
        event["eventTime"],
        run["runId"],
        facets_text(run["facets"]),
        head_text(job),
        parts_text(job, inputs, outputs),
    )


class TestEventText:
    @pytest.mark.parametrize("job", JOBS, ids=lambda job: job.name)
    @pytest.mark.parametrize("datasets", DATASETS, ids=["none", "one", "facets"])
    @pytest.mark.parametrize(
        "run_facets", [None, {"errorMessage": {"message": 'a "quoted"\nline \u00e9'}}]
    )
    def test_same_bytes_as_the_whole_event_encoded(
        self, job: Job, datasets: List[Dataset], run_facets: Any
    ) -> None:
        """The text made from the job's and datasets' JSON equals the event encoded whole."""
        event = build_event(
            "FAIL",
            job,
            RunId.new(),
            inputs=datasets,
            outputs=datasets[::-1],
            run_facets=run_facets,
        )
        text = _text_of(event, job, datasets, datasets[::-1])
        expected = _spec_shape(event, job, datasets, datasets[::-1])
        assert text == compact(expected)
        assert event == expected
        assert text.isascii()

    def test_a_job_encoded_once_is_encoded_the_same_every_time(self) -> None:
        """Two events of one job, with the job's JSON kept from the first, still match."""
        job = Job("ol-spark", "twice", description="kept")
        first = build_event("START", job, RunId.new())
        second = build_event("COMPLETE", job, RunId.new())
        assert _text_of(first, job, [], []) == compact(_spec_shape(first, job, [], []))
        assert _text_of(second, job, [], []) == compact(_spec_shape(second, job, [], []))


class TestParsedOnce:
    def test_one_uri_gives_one_equal_dataset(self) -> None:
        """A URI named by every run is parsed once; the dataset is the one parse gives."""
        uri = "snowflake://acct/RAW.PUBLIC.ORDERS_ONCE"
        assert as_dataset(uri) is as_dataset(uri)
        assert as_dataset(uri) == Dataset.parse(uri)


class TestHandedOver:
    def test_the_outbox_keeps_what_atlan_received(self, validate_event: Validate) -> None:
        """Background and sync runs with datasets, facets and a parent: each event stored
        in the outbox is the event Atlan received, and each validates."""
        job = Job("ol-spark", "handoff", description="hand-off")
        parent = Parent(RunId.new(), "ol-airflow", "dag.task")
        inputs = ["snowflake://acct/RAW.PUBLIC.ORDERS", Dataset("s3://b", "in/k")]
        outputs = [Dataset("s3://b", "out/k")]
        with MockAtlan(home=os.environ["ATLAN_EXT_HOME"]) as tenant:
            client = tenant.client()
            for background in (True, False):
                with lineage_run(
                    job,
                    client=client,
                    inputs=inputs,
                    outputs=outputs,
                    parent=parent,
                    background=background,
                    run_facets={"nominalTime": facets.nominal_time(NOMINAL)},
                ) as run:
                    run.add_input("snowflake://acct/RAW.PUBLIC.CUSTOMERS")
            with pytest.raises(ZeroDivisionError), lineage_run(job, client=client):
                1 / 0  # noqa: B018 (a FAIL, with its errorMessage facet)
            assert flush(60)
        assert len(tenant.accepted) == 6
        stored = {item.event["eventTime"]: item.event for item in default_outbox().events()}
        assert len(stored) == 6
        for event in tenant.accepted:
            validate_event(event)
            assert stored[event["eventTime"]] == event
        fail = tenant.accepted[-1]
        assert fail["eventType"] == "FAIL"
        assert "ZeroDivisionError" in fail["run"]["facets"]["errorMessage"]["message"]
        assert tenant.accepted[1]["inputs"][-1]["name"] == "RAW.PUBLIC.CUSTOMERS"
        assert tenant.accepted[0]["run"]["facets"]["parent"]["job"]["name"] == "dag.task"
