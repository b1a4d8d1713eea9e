"""Jobs, datasets, run ids and events: built checked, schema-valid, and converted without loss."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from openlineage.client.uuid import generate_static_uuid

from atlan_ext import (
    AtlanExtError,
    Dataset,
    InvalidDatasetError,
    InvalidEventError,
    InvalidFacetError,
    InvalidJobError,
    InvalidRunIdError,
    InvalidTimeError,
    Job,
    RunId,
    RunState,
    UnknownRunStateError,
    as_event,
    facets,
)
from atlan_ext.events import PRODUCER, as_dataset, as_job, build_event
from atlan_ext.validate import SchemaValidator

Validate = Callable[[Dict[str, Any]], Dict[str, Any]]
JOB = Job("ol-spark", "nightly_orders_load")
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def every_kind_of_event() -> Dict[str, Dict[str, Any]]:
    """One event of each state, carrying every facet atlan-ext builds."""
    run_id = RunId.new()
    job = Job(
        "ol-spark",
        "orders",
        job_type="DAG",
        description="Loads orders",
        sql="INSERT INTO a SELECT * FROM b",
        source_code_url="https://git.example.com/jobs/orders.py",
    )
    out = Dataset(
        "snowflake://acct",
        "ANALYTICS.PUBLIC.ORDERS",
        facets={
            "columnLineage": facets.column_lineage(
                {"total": [("snowflake://acct", "RAW.PUBLIC.ORDERS", "amount")]}
            )
        },
    )
    run_facets = {
        "parent": facets.parent(
            RunId.new(), "ol-airflow", "dag", root=(RunId.new(), "ol-airflow", "root")
        ),
        "nominalTime": facets.nominal_time(NOW, NOW + timedelta(hours=1)),
        "processing_engine": facets.processing_engine("3.5.0", name="spark", adapter_version="1.0"),
    }
    events = {}
    for state in RunState:
        extra = dict(run_facets)
        if state in (RunState.FAIL, RunState.ABORT):
            extra["errorMessage"] = facets.error_message("boom", stack_trace="Traceback ...")
        events[state.value] = build_event(
            state,
            job,
            run_id,
            inputs=["snowflake://acct/RAW.PUBLIC.ORDERS"],
            outputs=[out],
            run_facets=extra,
            event_time=NOW,
        )
    return events


class TestConformance:
    @pytest.mark.parametrize("state", [s.value for s in RunState])
    def test_every_event_and_facet_validates(self, state: str, schema: SchemaValidator) -> None:
        """Each kind of event, with every facet we build, validates against the 2-0-2 schema
        and the facet schemas, with formats (date-time, uri, uuid) checked."""
        event = every_kind_of_event()[state]
        assert schema.event_problems(event) == []
        facet_count = sum(len(group) for group in (event["run"]["facets"], event["job"]["facets"]))
        assert facet_count >= 7

    def test_validator_is_not_hollow(self, schema: SchemaValidator) -> None:
        """The validator really rejects a bad uuid, a bad time and a bad facet."""
        event = every_kind_of_event()["START"]
        for path, bad in [(("run", "runId"), "not-a-uuid"), (("eventTime",), "yesterday")]:
            broken = json.loads(json.dumps(event))
            target = broken
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = bad
            assert schema.event_problems(broken), f"{path} = {bad!r} passed the schema"
        broken = json.loads(json.dumps(event))
        del broken["job"]["facets"]["sql"]["query"]
        assert any("query" in problem.message for problem in schema.event_problems(broken))


class TestDataset:
    @pytest.mark.parametrize(
        ("uri", "namespace", "name"),
        [
            (
                "snowflake://acct.snowflakecomputing.com/DB.SCHEMA.TABLE",
                "snowflake://acct.snowflakecomputing.com",
                "DB.SCHEMA.TABLE",
            ),
            ("s3://bucket/path/file", "s3://bucket", "path/file"),
            (
                "postgres://db.host:5432/mydb.public.orders",
                "postgres://db.host:5432",
                "mydb.public.orders",
            ),
            ("file:///tmp/out.csv", "file", "/tmp/out.csv"),
            ("  gs://b/x  ", "gs://b", "x"),
            ("kafka://broker:9092/topic", "kafka://broker:9092", "topic"),
            ("s3://u:p@h:5/k?x=1#f", "s3://u:p@h:5", "k?x=1#f"),
            ("s3://[::1]/k", "s3://[::1]", "k"),
            ("s3://b//k", "s3://b", "/k"),
            ("s3://b/ x", "s3://b", " x"),
            ("s3://h%20/k", "s3://h%20", "k"),
            ("a+b.c-d://x/y", "a+b.c-d://x", "y"),
            ("bigquery:proj-1.sales.orders", "bigquery", "proj-1.sales.orders"),
            ("bigquery:p.d.таблица", "bigquery", "p.d.таблица"),
        ],
    )
    def test_parse(self, uri: str, namespace: str, name: str) -> None:
        """A URI splits at the first / after the authority, and uri gives it back."""
        dataset = Dataset.parse(uri)
        assert (dataset.namespace, dataset.name) == (namespace, name)
        assert Dataset.parse(dataset.uri) == dataset

    @pytest.mark.parametrize(
        "uri",
        [
            "",
            "orders",
            "snowflake:acct/x",
            "s3://bucket",
            "s3://bucket/",
            "://x/y",
            "s3:///x",
            "S3://b/k",
            "s3://[::1/k",
            "1s://x/y",
            "s3://b/ ",
            42,
            None,
        ],
    )
    def test_bad_uri(self, uri: Any) -> None:
        """A URI without scheme, authority or name raises InvalidDatasetError naming it."""
        with pytest.raises(InvalidDatasetError) as caught:
            Dataset.parse(uri)
        assert repr(uri) in str(caught.value)


BAD_INPUT = [
    ("empty job connection", lambda: Job("", "x"), InvalidJobError, "''"),
    ("blank job name", lambda: Job("ol", "  "), InvalidJobError, "'  '"),
    ("empty dataset namespace", lambda: Dataset("", "t"), InvalidDatasetError, "''"),
    ("run id not a UUID", lambda: build_event("START", JOB, "run-1"), InvalidRunIdError, "'run-1'"),
    (
        "naive time",
        lambda: build_event("START", JOB, RunId.new(), event_time=datetime(2026, 1, 1)),
        InvalidTimeError,
        "2026-01-01T00:00:00",
    ),
    (
        "facet not serialisable",
        lambda: build_event("START", JOB, RunId.new(), run_facets={"x": {"v": object()}}),
        InvalidFacetError,
        "'x'",
    ),
    (
        "facet NaN",
        lambda: build_event("START", JOB, RunId.new(), run_facets={"x": {"v": float("nan")}}),
        InvalidFacetError,
        "'x'",
    ),
    (
        "facet not a dict",
        lambda: build_event("START", JOB, RunId.new(), run_facets={"x": 3}),
        InvalidFacetError,
        "'x'",
    ),
    (
        "invalid dataset URI",
        lambda: build_event("START", JOB, RunId.new(), inputs=["orders"]),
        InvalidDatasetError,
        "'orders'",
    ),
    (
        "unknown state",
        lambda: build_event("DONE", JOB, RunId.new()),
        UnknownRunStateError,
        "'DONE'",
    ),
    (
        "producer not a URI",
        lambda: build_event("START", JOB, RunId.new(), producer="me"),
        InvalidEventError,
        "'me'",
    ),
    (
        "source code url not a URI",
        lambda: Job("ol", "x", source_code_url="repo"),
        InvalidJobError,
        "'repo'",
    ),
    ("blank sql", lambda: Job("ol", "x", sql=""), InvalidJobError, "''"),
    (
        "job is not a Job",
        lambda: build_event("START", "job", RunId.new()),
        InvalidJobError,
        "'job'",
    ),
]


class TestBadInput:
    @pytest.mark.parametrize(
        ("case", "make", "error", "shown"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
    )
    def test_typed_error_naming_the_value(
        self, case: str, make: Callable[[], Any], error: type, shown: str
    ) -> None:
        """Bad input raises a typed AtlanExtError and ValueError that names the value."""
        with pytest.raises(error) as caught:
            make()
        assert isinstance(caught.value, AtlanExtError)
        assert isinstance(caught.value, ValueError)
        assert shown in str(caught.value)

    def test_facets_are_detached(self) -> None:
        """A caller changing its facet dict after building does not change the event."""
        mine = {"x": {"_producer": PRODUCER, "_schemaURL": "https://e.com/s.json", "v": 1}}
        event = build_event("START", JOB, RunId.new(), run_facets=mine)
        mine["x"]["v"] = 2
        assert event["run"]["facets"]["x"]["v"] == 1


class TestEvent:
    def test_shape(self) -> None:
        """Times are aware UTC, run ids UUIDv7, the producer this package's URI."""
        event = build_event("start", JOB, RunId.new())
        assert event["eventType"] == "START"
        assert event["producer"] == PRODUCER
        assert PRODUCER.startswith("https://")
        assert event["schemaURL"].endswith("/2-0-2/OpenLineage.json#/$defs/RunEvent")
        assert datetime.fromisoformat(event["eventTime"]).utcoffset() == timedelta(0)
        assert uuid.UUID(event["run"]["runId"]).version == 7
        assert event["job"]["namespace"] == "ol-spark"
        assert event["job"]["name"] == "nightly_orders_load"
        assert list(event["job"]["facets"]) == ["jobType"]

    @pytest.mark.parametrize(
        "when",
        [
            datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc),
            datetime(2028, 2, 29, 23, 59, 59, 999999, tzinfo=timezone.utc),
            datetime(2029, 3, 1, 0, 0, 0, 0, tzinfo=timezone.utc),
            datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
            datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc),
            datetime(2096, 12, 31, 9, 10, 0, 500000, tzinfo=timezone.utc),
        ],
    )
    def test_now_is_written_as_datetime_writes_it(self, when: datetime, monkeypatch: Any) -> None:
        """The default eventTime and a new run id (its text, and its time bits), at a given
        instant (padding, midnight, a leap day, before 1970), one microsecond later (the
        next day, for the last microsecond of one) and a day later."""
        if when.year < 1970 and sys.platform == "win32":
            pytest.skip("time.gmtime takes no time before 1970 on Windows")
        for step in (timedelta(0), timedelta(microseconds=1), timedelta(days=1)):
            moment = when + step
            us = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
            monkeypatch.setattr(time, "time_ns", lambda us=us: us * 1000)
            event = build_event("START", JOB, RunId.new())
            assert event["eventTime"] == moment.isoformat(timespec="microseconds")
            run_id = RunId.new()
            assert str(uuid.UUID(run_id)) == run_id
            assert uuid.UUID(run_id).int >> 80 == (us // 1000) & 0xFFFFFFFFFFFF

    def test_time_converted_to_utc(self) -> None:
        """An aware time in another zone is written in UTC."""
        tokyo = datetime(2026, 11, 25, 18, 0, tzinfo=timezone(timedelta(hours=9)))
        event = build_event("START", JOB, RunId.new(), event_time=tokyo)
        assert event["eventTime"] == "2026-11-25T09:00:00.000000+00:00"

    def test_job_facets(self) -> None:
        """Job keyword arguments become the standard facets, with their fields."""
        job = Job("ol", "dag", job_type="DAG", sql="select 1", description="d")
        assert job.facets["jobType"]["jobType"] == "DAG"
        assert job.facets["jobType"]["processingType"] == "BATCH"
        assert job.facets["sql"]["query"] == "select 1"
        assert job.facets["documentation"]["description"] == "d"


class TestJobTypeFacet:
    @pytest.mark.parametrize(
        ("job", "expected"),
        [
            (Job("ol", "load"), ("JOB", "BATCH", "ATLAN_EXT")),
            (Job("ol", "dag", job_type="DAG"), ("DAG", "BATCH", "ATLAN_EXT")),
            (
                Job("ol", "t", job_type="TASK", processing_type="STREAMING", integration="AIRFLOW"),
                ("TASK", "STREAMING", "AIRFLOW"),
            ),
        ],
        ids=["default", "job_type", "all three"],
    )
    def test_sent_by_default_and_overridable(
        self, job: Job, expected: Any, validate_event: Validate
    ) -> None:
        """Every job sends jobType (JOB, BATCH, ATLAN_EXT unless told), valid by the schema."""
        facet = job.facets["jobType"]
        assert (facet["jobType"], facet["processingType"], facet["integration"]) == expected
        validate_event(build_event("START", job, RunId.new()))

    def test_none_and_own_facet(self) -> None:
        """job_type=None sends no jobType; a jobType in facets replaces ours."""
        assert "jobType" not in Job("ol", "load", job_type=None).facets
        own = facets.job_type("MODEL", integration="DBT")
        assert Job("ol", "m", facets={"jobType": own}).facets["jobType"]["integration"] == "DBT"

    def test_foreign_jobs_are_not_given_ours(self) -> None:
        """A job from another producer keeps its own facets: no jobType is invented."""
        pytest.importorskip("openlineage.client")
        from openlineage.client import event_v2

        assert "jobType" not in as_job(event_v2.Job(namespace="ns", name="j")).facets


class TestRunId:
    def test_new_is_unique_and_v7(self) -> None:
        """Fresh ids are distinct UUIDv7s, ordered by time."""
        ids = [RunId.new() for _ in range(1000)]
        assert len(set(ids)) == 1000
        assert all(uuid.UUID(value).version == 7 for value in ids)
        # Canonical text (lowercase, hyphens where uuid puts them) with RFC 4122's variant:
        # the id is formatted directly, not through uuid.UUID.
        assert all(str(uuid.UUID(value)) == value for value in ids)
        assert all(uuid.UUID(value).variant == uuid.RFC_4122 for value in ids)

    def test_from_key_is_deterministic(self) -> None:
        """The same key gives the same UUID; another key another one."""
        key = ("dag", "task", "2026-11-25T00:00Z", 1)
        assert RunId.from_key(*key) == RunId.from_key(*key)
        assert RunId.from_key(*key) != RunId.from_key("dag", "task", "2026-11-25T00:00Z", 2)

    def test_from_key_carries_the_keys_time(self) -> None:
        """The key's time is in the UUIDv7 time bits, as openlineage-python does it."""
        value = uuid.UUID(RunId.from_key("dag", "task", "2026-11-25T00:00Z", 1))
        assert value.version == 7
        assert value.int >> 80 == int(
            datetime(2026, 11, 25, tzinfo=timezone.utc).timestamp() * 1000
        )

    def test_from_key_matches_openlineage_python(self) -> None:
        """With the same instant and data, our UUID is generate_static_uuid's."""
        at = datetime(2026, 11, 25, tzinfo=timezone.utc)
        data = json.dumps(["dag", "task"]).encode()
        assert RunId.from_key("dag", "task", at=at) == str(generate_static_uuid(at, data))

    @pytest.mark.parametrize("value", ["x", "", 5, None, "0000"])
    def test_check_refuses(self, value: Any) -> None:
        """check() refuses anything but a UUID, naming it."""
        with pytest.raises(InvalidRunIdError, match="is not a run id"):
            RunId.check(value)

    def test_check_normalises(self) -> None:
        """check() gives the canonical lowercase form."""
        value = uuid.uuid4()
        assert RunId.check(str(value).upper()) == str(value)
        assert RunId.check(value) == str(value)


class TestConversion:
    def test_pyatlan_event_built_as_users_do(self, validate_event: Validate) -> None:
        """A pyatlan OpenLineageEvent converts to exactly what pyatlan would send."""
        from pyatlan.model.enums import OpenLineageEventType
        from pyatlan.model.open_lineage import OpenLineageEvent, OpenLineageJob, OpenLineageRun

        job = OpenLineageJob.creator(
            connection_name="ol-spark",
            job_name="dag_123",
            producer="https://your.orchestrator/unique/id/123",
        )
        run = OpenLineageRun.creator(job=job)
        start = OpenLineageEvent.creator(run=run, event_type=OpenLineageEventType.START)
        start.inputs = [
            job.create_input(namespace="snowflake://abc", asset_name="OPS.DEFAULT.RUN_STATS")
        ]
        start.outputs = [
            job.create_output(namespace="snowflake://abc", asset_name="OPS.DEFAULT.FINAL")
        ]
        converted = as_event(start)
        assert converted == json.loads(start.json(by_alias=True, exclude_unset=True))
        assert converted["run"]["runId"] == str(run.run_id)
        validate_event(converted)

    def test_captured_wire_event_keeps_every_field(self, pyatlan_fixtures: Path) -> None:
        """The START event pyatlan 11.6.0 put on the wire converts to itself."""
        from pyatlan.model.open_lineage import OpenLineageEvent

        wire = json.loads(
            (pyatlan_fixtures / "captured_start_event_pyatlan_11.6.0.json").read_text()
        )
        assert as_event(OpenLineageEvent.parse_obj(wire)) == wire
        assert as_event(wire) == wire
        assert as_event(json.dumps(wire)) == wire

    @pytest.mark.parametrize(
        "name",
        ["event_start.json", "event_complete.json", "single_event.json", "raw_events_list.json"],
    )
    def test_raw_fixtures_keep_every_field(self, name: str, pyatlan_fixtures: Path) -> None:
        """pyatlan's raw events (including custom facets pyatlan's models would drop) convert
        without losing a field."""
        from pyatlan.model.open_lineage.event import OpenLineageRawEvent

        data = json.loads((pyatlan_fixtures / name).read_text())
        for item in data if isinstance(data, list) else [data]:
            assert as_event(OpenLineageRawEvent.parse_obj(item)) == item
            assert as_event(item) == item

    @pytest.mark.parametrize("name", ["minimal_event.json", "multiple_events.json"])
    def test_fixtures_with_bad_run_ids_are_refused(self, name: str, pyatlan_fixtures: Path) -> None:
        """Fixtures whose runId is not a UUID are refused with the reason."""
        data = json.loads((pyatlan_fixtures / name).read_text())
        for item in data if isinstance(data, list) else [data]:
            with pytest.raises(InvalidEventError, match="is not a UUID"):
                as_event(item)

    def test_openlineage_python_event(self, validate_event: Validate) -> None:
        """An openlineage-python event_v2.RunEvent converts with its facets intact."""
        from openlineage.client.event_v2 import (
            InputDataset,
            Run,
            RunEvent,
        )
        from openlineage.client.event_v2 import (
            Job as OLJob,
        )
        from openlineage.client.event_v2 import (
            RunState as OLState,
        )
        from openlineage.client.facet_v2 import sql_job
        from openlineage.client.uuid import generate_new_uuid

        ol_event = RunEvent(
            eventType=OLState.START,
            eventTime=NOW.isoformat(),
            producer="https://example.com/p",
            run=Run(runId=str(generate_new_uuid())),
            job=OLJob(
                namespace="ol-spark",
                name="j",
                facets={"sql": sql_job.SQLJobFacet(query="select 1")},
            ),
            inputs=[InputDataset(namespace="s3://b", name="k")],
        )
        converted = as_event(ol_event)
        assert converted["job"]["facets"]["sql"]["query"] == "select 1"
        assert converted["inputs"][0]["name"] == "k"
        assert converted["eventType"] == "START"
        validate_event(converted)

    def test_unknown_object(self) -> None:
        """Something that is not an event is refused, saying what is accepted."""
        with pytest.raises(InvalidEventError, match="cannot read an event from int"):
            as_event(5)
        with pytest.raises(InvalidEventError, match="not a JSON event"):
            as_event("{")


class TestForeignJobsAndDatasets:
    def test_pyatlan_job_and_datasets(self, validate_event: Validate) -> None:
        """pyatlan's OpenLineageJob and datasets are accepted where ours are, fields kept."""
        from pyatlan.model.open_lineage import OpenLineageJob

        job = OpenLineageJob.creator(
            connection_name="ol-spark", job_name="dag_123", producer="https://example.com/p"
        )
        source = job.create_input(namespace="snowflake://abc", asset_name="OPS.DEFAULT.RUN_STATS")
        target = job.create_output(namespace="snowflake://abc", asset_name="OPS.DEFAULT.FINAL")
        event = build_event("START", job, RunId.new(), inputs=[source], outputs=[target])
        assert event["job"]["namespace"] == "ol-spark"
        assert event["job"]["name"] == "dag_123"
        assert event["inputs"][0] == {
            "namespace": "snowflake://abc",
            "name": "OPS.DEFAULT.RUN_STATS",
            "facets": {},
        }
        assert event["outputs"][0]["name"] == "OPS.DEFAULT.FINAL"
        validate_event(event)

    def test_openlineage_python_job_and_datasets(self, validate_event: Validate) -> None:
        """openlineage-python's Job and datasets convert with their facets."""
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.event_v2 import Job as OLJob
        from openlineage.client.facet_v2 import documentation_job, schema_dataset

        job = OLJob(
            namespace="ol-spark",
            name="j",
            facets={"documentation": documentation_job.DocumentationJobFacet(description="d")},
        )
        schema = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="INT")]
        )
        source = InputDataset(namespace="s3://b", name="in", facets={"schema": schema})
        target = OutputDataset(namespace="s3://b", name="out")
        event = build_event("START", as_job(job), RunId.new(), inputs=[source], outputs=[target])
        assert event["job"]["facets"]["documentation"]["description"] == "d"
        fields = event["inputs"][0]["facets"]["schema"]["fields"]
        assert [(f["name"], f["type"]) for f in fields] == [("id", "INT")]
        validate_event(event)

    def test_something_else_is_refused(self) -> None:
        """Neither a job nor a dataset: a clear error naming it."""
        with pytest.raises(InvalidJobError, match="is not a job"):
            as_job({"namespace": "ol", "name": "j"})
        with pytest.raises(InvalidDatasetError, match="is not a dataset"):
            as_dataset(42)


class TestTopLevel:
    def test_import_atlan_ext_loads_no_module_of_its_own(self) -> None:
        """``import atlan_ext`` alone loads none of its modules (each loads on first use)."""
        done = subprocess.run(
            [sys.executable, "-c", "import atlan_ext, sys; print(sorted(sys.modules))"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert [m for m in ast.literal_eval(done.stdout) if m.startswith("atlan_ext.")] == []

    def test_a_moved_name_still_works_with_a_warning(self) -> None:
        """Names that left the top level still resolve, and say where they live now."""
        import atlan_ext
        from atlan_ext import events

        with pytest.warns(DeprecationWarning, match=r"atlan_ext\.events\.build_event"):
            moved = atlan_ext.build_event
        assert moved is events.build_event

    def test_every_public_name_resolves(self) -> None:
        """Each name in ``__all__`` resolves, and there are at most 40 of them."""
        import atlan_ext

        assert len(atlan_ext.__all__) <= 40
        for name in atlan_ext.__all__:
            assert getattr(atlan_ext, name) is not None

    @pytest.mark.parametrize("module", ["atlan_ext.run", "atlan_ext.events"])
    def test_split_modules_keep_their_public_names(self, module: str) -> None:
        """Every name a public module lists is importable from it, and a lazy top-level name
        is the very object that module holds."""
        import importlib
        import warnings

        import atlan_ext

        public = importlib.import_module(module)
        for name in public.__all__:
            assert getattr(public, name) is not None, name
        homes = {**atlan_ext._LAZY, **atlan_ext._MOVED}
        named = [name for name, home in homes.items() if home == module]
        assert named
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for name in named:
                assert getattr(atlan_ext, name) is getattr(public, name), name

    def test_importing_runs_and_events_loads_no_pyatlan(self) -> None:
        """``import atlan_ext.run`` (and events) stays cheap: pyatlan loads only to send."""
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import atlan_ext.run, atlan_ext.events, sys; print(sorted(sys.modules))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        loaded = ast.literal_eval(done.stdout)
        assert [m for m in loaded if m.split(".")[0] in ("pyatlan", "pyatlan_v9")] == []
