"""The validator agrees with the OpenLineage world: events other producers wrote (Spark,
Airflow, OpenLineage's own fixtures) get the verdicts OpenLineage's own tools give them, as
../shared/openlineage-corpus/README.md describes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

from atlan_ext import InvalidOptionError
from atlan_ext.validate import Problem, SchemaValidator, check_events, read_paths

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "openlineage-corpus"
SPEC = CORPUS.parent / "openlineage-spec"
SCENARIOS = sorted(p.name for p in (CORPUS / "compatibility-tests").glob("*") if p.is_dir())
# The lone COMPLETEs in otherwise complete scenarios, and simple_run_event: refused however
# formats are judged (README of the corpus).
ALWAYS_REFUSED = {
    "CLL/events/4.json",
    "spark_dataproc_simple_producer_test_complete/events/4.json",
    "spark_dataproc_simple_producer_test_complete/events/5.json",
    "simple_run_event/events/simple_run_event.json",
}

pytestmark = pytest.mark.skipif(
    not (CORPUS.is_dir() and SPEC.is_dir()), reason=f"no corpus at {CORPUS}"
)


def refused(problems: List[Problem]) -> Dict[str, List[Problem]]:
    by_source: Dict[str, List[Problem]] = {}
    for problem in problems:
        if problem.level == "error":
            key = problem.source.split("compatibility-tests/")[-1]
            by_source.setdefault(key, []).append(problem)
    return by_source


@pytest.fixture(scope="module")
def validators() -> Dict[bool, SchemaValidator]:
    return {formats: SchemaValidator(SPEC, formats=formats) for formats in (True, False)}


class TestCompatibilityCorpus:
    @pytest.mark.parametrize("scenario", SCENARIOS)
    def test_scenario_verdicts(
        self, scenario: str, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """Each scenario's events, judged together: without asserted formats only the lone
        COMPLETEs and simple_run_event are refused; with them, also Spark's dataSource.uri
        values ('file', 'bigquery'), for that reason alone."""
        items, unreadable = read_paths([str(CORPUS / "compatibility-tests" / scenario / "events")])
        assert items
        assert unreadable == []
        lenient = refused(check_events(items, validators[False]))
        strict = refused(check_events(items, validators[True]))
        expected = {name for name in ALWAYS_REFUSED if name.startswith(f"{scenario}/")}
        assert set(lenient) == expected
        assert set(strict) >= expected
        for source, problems in strict.items():
            if source not in expected:
                assert {p.path.rpartition("/facets/")[2] for p in problems} == {"dataSource/uri"}

    @pytest.mark.parametrize(("formats", "expected"), [(False, 70), (True, 58)])
    def test_totals(
        self, formats: bool, expected: int, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """74 real events: 70 accepted as the compatibility validator judges them, 58 with
        formats asserted (the README's table)."""
        accepted = 0
        total = 0
        for scenario in SCENARIOS:
            items, _ = read_paths([str(CORPUS / "compatibility-tests" / scenario / "events")])
            total += len(items)
            accepted += len(items) - len(refused(check_events(items, validators[formats])))
        assert (total, accepted) == (74, expected)

    def test_other_versions_are_notes(self, validators: Dict[bool, SchemaValidator]) -> None:
        """Spark writes jobType 2-0-3, parent 1-0-1, schema 1-1-1: checked against ours, noted."""
        items, _ = read_paths([str(CORPUS / "compatibility-tests" / "airflow" / "events")])
        problems = check_events(items, validators[True])
        assert [p for p in problems if p.level == "error"] == []
        assert any(p.level == "note" and "checked against" in p.message for p in problems)


class TestProxyEvents:
    @pytest.mark.parametrize(
        ("name", "facet"),
        [
            ("event_invalid_dataset_facet.json", "outputs/0/facets/ownership"),
            ("event_invalid_input_dataset_facet.json", "inputs/0/inputFacets/dataQualityMetrics"),
            ("event_invalid_job_facet.json", "job/facets/ownership"),
            ("event_invalid_output_dataset_facet.json", "outputs/0/outputFacets/outputStatistics"),
            ("event_invalid_run_facet.json", "run/facets/parent"),
        ],
    )
    def test_invalid_facets_are_refused_by_name(
        self, name: str, facet: str, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """Each invalid event of the proxy's set is refused, naming the broken facet."""
        items, _ = read_paths([str(CORPUS / "proxy-fluentd" / name)])
        errors = [p for p in check_events(items, validators[False]) if p.level == "error"]
        assert errors
        assert all(p.path.startswith(facet) for p in errors)

    def test_no_run_id_is_refused(self, validators: Dict[bool, SchemaValidator]) -> None:
        items, _ = read_paths([str(CORPUS / "proxy-fluentd" / "event_no_run_id.json")])
        assert any(p.level == "error" for p in check_events(items, validators[True]))

    def test_one_run_in_two_files(self, validators: Dict[bool, SchemaValidator]) -> None:
        """docker/test-start.json + test-complete.json: one run, valid together."""
        items, _ = read_paths([str(CORPUS / "proxy-fluentd" / "docker")])
        assert len(items) == 2
        assert [p for p in check_events(items, validators[True]) if p.level == "error"] == []

    def test_one_event_alone_notes_its_run_cycle(
        self, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """A lone COMPLETE given alone: valid, with a note that its START was not given."""
        items, _ = read_paths([str(CORPUS / "proxy-fluentd" / "event_simple.json")])
        problems = check_events(items, validators[True])
        assert [p.level for p in problems] == ["note"]
        assert "cannot come before START" in problems[0].message


class TestSpecFixtures:
    @pytest.mark.parametrize(
        "path",
        sorted(p for p in (CORPUS / "spec-tests").glob("*/*.json")),
        ids=lambda p: f"{p.parent.name}/{p.name}",
    )
    def test_facet_fixture(self, path: Path, validators: Dict[bool, SchemaValidator]) -> None:
        """The spec's own facet fixtures pass their facet's schema, formats asserted."""
        schema = validators[True]
        assert schema.problems(json.loads(path.read_text()), schema.files[path.parent.name]) == []

    def test_full_example(self, validators: Dict[bool, SchemaValidator]) -> None:
        items, _ = read_paths([str(CORPUS / "spec-tests" / "example_full_event.json")])
        assert [p for p in check_events(items, validators[True]) if p.level == "error"] == []


class TestCommand:
    def test_folders_stdin_and_json_output(self, tmp_path: Path) -> None:
        """validate takes folders and -, checks them together, and speaks JSON."""
        folder = CORPUS / "compatibility-tests" / "airflow" / "events"
        stdin = (CORPUS / "proxy-fluentd" / "docker" / "test-start.json").read_text()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "atlan_ext.cli",
                "validate",
                "--format",
                "json",
                str(folder),
                "-",
            ],
            input=stdin,
            capture_output=True,
            text=True,
            env={"OPENLINEAGE_SPEC_DIR": str(SPEC), "ATLAN_EXT_HOME": str(tmp_path), "PATH": ""},
            check=False,
        )
        report = json.loads(done.stdout)
        assert report["events"] == 33
        levels: Set[str] = {p["level"] for p in report["problems"]}
        assert "error" in levels  # the START from stdin never ends
        assert done.returncode == 1

    def test_binary_file(self, tmp_path: Path) -> None:
        """A binary file is one error line, never a traceback."""
        binary = tmp_path / "x.json"
        binary.write_bytes(b"\xff\xfe\x00\x81")
        done = subprocess.run(
            [sys.executable, "-m", "atlan_ext.cli", "validate", str(binary)],
            capture_output=True,
            text=True,
            env={"ATLAN_EXT_HOME": str(tmp_path), "PATH": ""},
            check=False,
        )
        assert done.returncode == 1
        assert "not a text file" in done.stdout
        assert "Traceback" not in done.stderr


# -- the openlineage judge agrees with the official schema ----------------------------------------

EVENT_FILES = sorted(
    [
        *(CORPUS / "compatibility-tests").glob("*/events/*.json"),
        *(CORPUS / "proxy-fluentd").glob("**/*.json"),
        CORPUS / "spec-tests" / "example_full_event.json",
    ]
)


def official_verdict(event: Any, formats: bool) -> bool:
    """True when the official schema accepts ``event``, judged here with jsonschema alone:
    the core OpenLineage.json (its oneOf of RunEvent, DatasetEvent, JobEvent), then each
    facet whose key a facet file defines, against that definition."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    files = [SPEC / "OpenLineage.json", *sorted((SPEC / "facets").glob("*.json"))]
    schemas = [json.loads(path.read_text()) for path in files]
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    checker = Draft202012Validator.FORMAT_CHECKER if formats else None

    def valid(instance: Any, ref: str) -> bool:
        validator = Draft202012Validator({"$ref": ref}, registry=registry, format_checker=checker)
        return bool(validator.is_valid(instance))

    if not valid(event, schemas[0]["$id"]):
        return False
    by_key: Dict[str, List[str]] = {}
    for schema in schemas[1:]:
        for key, spec in schema.get("properties", {}).items():
            for choice in spec.get("anyOf", [spec]):
                by_key.setdefault(key, []).append(schema["$id"] + choice["$ref"])
    places = [event.get("run", {}), event.get("job", {}), event.get("dataset", {})]
    for side in ("inputs", "outputs"):
        places += event.get(side, [])
    for place in places:
        for group in ("facets", "inputFacets", "outputFacets"):
            for key, facet in (place.get(group) or {}).items():
                # A key some facet file defines, in the group whose facets it belongs to.
                refs = [r for r in by_key.get(key, []) if _belongs(r, group, place, event)]
                if refs and not any(valid(facet, ref) for ref in refs):
                    return False
    return True


def _belongs(ref: str, group: str, place: Any, event: Dict[str, Any]) -> bool:
    name = ref.rpartition("/")[2]
    if group == "inputFacets":
        return name.endswith("InputDatasetFacet")
    if group == "outputFacets":
        return name.endswith("OutputDatasetFacet")
    if place is event.get("run"):
        return name.endswith("RunFacet")
    if place is event.get("job"):
        return name.endswith("JobFacet")
    return name.endswith("DatasetFacet") and not name.endswith(
        ("InputDatasetFacet", "OutputDatasetFacet")
    )


ANOTHER_KIND = [
    pytest.param(
        {
            "eventTime": "2026-12-03T10:00:00Z",
            "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "s3://b", "name": "orders", "facets": {}},
        },
        id="dataset event",
    ),
    pytest.param(
        {
            "eventTime": "2026-12-03T10:00:00Z",
            "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "ns", "name": "load", "facets": {}},
            "inputs": [{"namespace": "s3://b", "name": "orders"}],
        },
        id="job event",
    ),
    pytest.param(
        {
            "eventTime": "2026-12-03T10:00:00Z",
            "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "0192f5c2-7a1e-7d3c-8b4a-3f2e1d0c9b8a"},
            "job": {"namespace": "ns", "name": "load"},
        },
        id="run event without eventType",
    ),
]


class TestJudges:
    @pytest.mark.parametrize("formats", [True, False], ids=["formats", "no-formats"])
    def test_openlineage_verdict_is_the_schemas(
        self, formats: bool, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """rules='openlineage' refuses exactly the corpus events the official schema refuses
        (each event judged alone, as the schema judges it)."""
        assert len(EVENT_FILES) == 85  # 74 + 8 + 2 + 1
        disagree = []
        refused_count = 0
        for path in EVENT_FILES:
            items, _ = read_paths([str(path)])
            problems = check_events(items, validators[formats], rules="openlineage")
            ours = not any(p.level == "error" for p in problems)
            assert all(p.judge == "openlineage" for p in problems)
            refused_count += not ours
            if ours != official_verdict(items[0][1], formats):
                disagree.append(path.name)
        assert disagree == []
        assert refused_count > 0  # the proxy's invalid events, at least

    @pytest.mark.parametrize("event", ANOTHER_KIND)
    def test_other_kinds_are_openlineage_but_not_atlan(
        self, event: Dict[str, Any], validators: Dict[bool, SchemaValidator]
    ) -> None:
        """Dataset and job events and run events without eventType are valid OpenLineage;
        Atlan's rules refuse them, and say so as Atlan's."""
        assert official_verdict(event, True)
        items = [("e", event)]
        assert check_events(items, validators[True], rules="openlineage") == []
        errors = [p for p in check_events(items, validators[True]) if p.level == "error"]
        assert errors
        assert {p.judge for p in errors} == {"atlan"}

    def test_no_formats_leaves_atlan_rules_to_atlan(
        self, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """simple_run_event (producer 'producer', runId 'run_id'): valid OpenLineage without
        formats; refused by Atlan's rules only, labelled so."""
        items, _ = read_paths(
            [str(CORPUS / "compatibility-tests/simple_run_event/events/simple_run_event.json")]
        )
        ol = check_events(items, validators[False], rules="openlineage")
        assert [p.level for p in ol] == ["note"]  # a lone COMPLETE: its run cycle, noted
        errors = [p for p in check_events(items, validators[False]) if p.level == "error"]
        assert {p.judge for p in errors} == {"atlan"}
        assert any("not a UUID" in p.message for p in errors)

    def test_run_cycle_is_a_note_for_openlineage(
        self, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """A scenario's lone COMPLETE: an Atlan error, an OpenLineage note."""
        items, _ = read_paths([str(CORPUS / "compatibility-tests" / "CLL" / "events")])
        ol = check_events(items, validators[False], rules="openlineage")
        assert [p.level for p in ol if "START" in p.message] == ["note"]
        assert [p for p in ol if p.level == "error"] == []
        atlan = [p for p in check_events(items, validators[False]) if p.level == "error"]
        assert [p.judge for p in atlan] == ["atlan"]

    @pytest.mark.parametrize(
        ("rules", "schema", "match"),
        [
            ("openlineage", False, "pass a SchemaValidator"),
            ("strict", True, "'strict' is not a judge"),
            ("", True, "'' is not a judge"),
        ],
    )
    def test_bad_rules(
        self, rules: str, schema: bool, match: str, validators: Dict[bool, SchemaValidator]
    ) -> None:
        """A rules value that cannot judge is an InvalidOptionError naming it."""
        with pytest.raises(InvalidOptionError, match=match):
            check_events([], validators[True] if schema else None, rules=rules)

    @pytest.mark.parametrize(
        ("rules", "code", "judges"),
        [("atlan", 1, {"atlan", "openlineage"}), ("openlineage", 0, {"openlineage"})],
    )
    def test_command(self, rules: str, code: int, judges: Set[str], tmp_path: Path) -> None:
        """validate --rules: the exit status and the judges named follow the rules."""
        scenario = CORPUS / "compatibility-tests" / "simple_run_event" / "events"
        airflow = CORPUS / "compatibility-tests" / "airflow" / "events"
        command = [sys.executable, "-m", "atlan_ext.cli", "validate", "--rules", rules]
        done = subprocess.run(
            [*command, "--format", "json", "--no-formats", str(scenario), str(airflow)],
            capture_output=True,
            text=True,
            env={"OPENLINEAGE_SPEC_DIR": str(SPEC), "ATLAN_EXT_HOME": str(tmp_path), "PATH": ""},
            check=False,
        )
        report = json.loads(done.stdout)
        assert done.returncode == code, report
        assert report["rules"] == rules
        assert {p["judge"] for p in report["problems"]} == judges

    def test_openlineage_rules_need_the_schema(self, tmp_path: Path) -> None:
        """Without OPENLINEAGE_SPEC_DIR, --rules openlineage says what to set, no traceback."""
        done = subprocess.run(
            [sys.executable, "-m", "atlan_ext.cli", "validate", "--rules", "openlineage", "-"],
            input="{}",
            capture_output=True,
            text=True,
            env={"ATLAN_EXT_HOME": str(tmp_path), "PATH": ""},
            check=False,
        )
        assert done.returncode == 2
        assert "set OPENLINEAGE_SPEC_DIR" in done.stderr
        assert "Traceback" not in done.stderr
