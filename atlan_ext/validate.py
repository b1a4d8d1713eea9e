"""Judging events, ours and everyone else's, with two judges that each say who speaks.

- **openlineage**: the official schema, as OpenLineage's own tools judge an event. With a
  folder of the official schema files (``OPENLINEAGE_SPEC_DIR``): the core 2-0-2 schema (a
  ``RunEvent``, ``DatasetEvent`` or ``JobEvent``; ``eventType`` is optional in a run event),
  then every facet whose **key** is a standard facet name against that facet's schema, in run
  and job facets, dataset ``facets``, ``inputFacets`` and ``outputFacets``.
- **atlan**: atlan-ext's stricter rules for what it sends to Atlan and pairs (run events with
  an ``eventType``, UUID run ids, times with a zone, a URI producer), and the run cycle as an
  error over all events given.

``rules="openlineage"`` gives the official verdict alone (the run cycle, which the spec asks
for but no schema checks, only as notes); ``rules="atlan"`` (the default) gives both judges'
findings, each labelled. A facet whose ``_schemaURL`` names another version of it (Spark writes
jobType 2-0-3, parent 1-0-1) is checked against the version held here, with a note, not an
error; a key that is no standard name is a custom facet, which the core schema already holds
to ``_producer`` and ``_schemaURL``. Across events: the run cycle, over all of them together,
by event time. Every ``$ref`` resolves from the folder, never the network; formats
(``date-time``, ``uri``, ``uuid``) are asserted unless ``formats=False``.

Each problem is reported once, with its JSON path, as an error or as a note.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from atlan_ext._values import parse_time
from atlan_ext.events import event_problems
from atlan_ext.exceptions import (
    AtlanExtError,
    InvalidEventError,
    InvalidOptionError,
    MissingDependencyError,
)
from atlan_ext.states import run_cycle_problems

__all__ = [
    "RULES",
    "Problem",
    "SchemaValidator",
    "check_events",
    "read_events",
    "read_paths",
    "validate_events",
]

RUN_EVENT_REF = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
#: The two judges: ``rules=`` of :func:`check_events` and ``atlan-lineage validate --rules``.
RULES = ("atlan", "openlineage")
_KINDS = ("RunEvent", "DatasetEvent", "JobEvent")

# Where facets stand in an event, and which kind of facet each place holds.
_BASES = {
    "RunFacet": "run",
    "JobFacet": "job",
    "DatasetFacet": "dataset",
    "InputDatasetFacet": "input",
    "OutputDatasetFacet": "output",
}


@dataclass(frozen=True)
class Problem:
    """One finding: ``level`` is ``"error"`` or ``"note"``; ``source`` says which event
    (``file:index`` or ``event N``); ``path`` is the JSON path inside it (``""``: the event
    itself, or the run as a whole); ``judge`` says whose rule it is: ``"openlineage"`` (the
    official schema) or ``"atlan"`` (atlan-ext's stricter rules for Atlan); ``"input"``: no
    event could be read there (a missing file, text that is not JSON)."""

    level: str
    source: str
    path: str
    message: str
    judge: str = "openlineage"

    def __str__(self) -> str:
        where = f"{self.source} {self.path}".strip()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> Dict[str, str]:
        """The problem as JSON (``atlan-lineage validate --format json``)."""
        return {
            "level": self.level,
            "judge": self.judge,
            "source": self.source,
            "path": self.path,
            "message": self.message,
        }


class SchemaValidator:
    """The official OpenLineage schema files of one folder (``OpenLineage.json`` and
    ``facets/*.json``), and which facet each standard key names in each place."""

    def __init__(self, folder: Path | str, *, formats: bool = True) -> None:
        try:
            from jsonschema import Draft202012Validator
            from referencing import Registry, Resource
        except ImportError as error:
            raise MissingDependencyError(
                "schema validation needs jsonschema: pip install 'atlan-ext[test]'"
            ) from error
        root = Path(folder)
        core = root / "OpenLineage.json"
        if not core.is_file():
            raise AtlanExtError(f"{root} holds no OpenLineage.json; point it at the schema folder")
        resources = []
        #: (place, key) -> (the facet's $ref here, its file name without version)
        self.standard: Dict[Tuple[str, str], Tuple[str, str]] = {}
        #: facet file name without version (``ParentRunFacet``) -> its ``$id``
        self.files: Dict[str, str] = {}
        for path in [core, *sorted((root / "facets").glob("*.json"))]:
            schema = json.loads(path.read_text(encoding="utf-8"))
            resources.append((schema["$id"], Resource.from_contents(schema)))
            self.files[path.stem] = schema["$id"]
            for key, spec in schema.get("properties", {}).items():
                # One facet, or one per place (LineageFacet: anyOf a dataset and a job facet).
                for choice in spec.get("anyOf", [spec]):
                    name = str(choice.get("$ref", "")).rpartition("/")[2]
                    definition = schema.get("$defs", {}).get(name, {})
                    for part in definition.get("allOf", []):
                        base = str(part.get("$ref", "")).rpartition("/")[2]
                        if base in _BASES:
                            ref = f"{schema['$id']}#/$defs/{name}"
                            self.standard[(_BASES[base], key)] = (ref, path.stem)
        #: the core schema's ``$id``: its ``oneOf`` is the official verdict on a whole event
        self.core = self.files["OpenLineage"]
        self._registry = Registry().with_resources(resources)
        self._cls: Any = Draft202012Validator
        self._formats = formats
        self._validators: Dict[str, Any] = {}

    def problems(self, instance: Any, ref: str = RUN_EVENT_REF) -> List[Tuple[str, str]]:
        """``(JSON path, message)`` for what the schema at ``ref`` finds wrong."""
        validator = self._validators.get(ref)
        if validator is None:
            checker = self._cls.FORMAT_CHECKER if self._formats else None
            validator = self._cls({"$ref": ref}, registry=self._registry, format_checker=checker)
            self._validators[ref] = validator
        found = []
        for error in validator.iter_errors(instance):
            found.append(("/".join(str(part) for part in error.absolute_path), error.message))
        return sorted(set(found))

    def core_problems(self, event: Any) -> List[Tuple[str, str]]:
        """``(JSON path, message)`` for what the core schema finds wrong with ``event``: it
        must be exactly one of a ``RunEvent``, ``DatasetEvent`` or ``JobEvent`` (the schema's
        ``oneOf``). The messages are those of the kind the event's keys say it means
        (``run``: a run event; else ``dataset``; else ``job``), not the ``oneOf``'s one line."""
        if not self.problems(event, self.core):
            return []
        kind = _KINDS[0]
        if isinstance(event, dict) and "run" not in event:
            kind = _KINDS[1] if "dataset" in event else _KINDS[2] if "job" in event else kind
        found = self.problems(event, f"{self.core}#/$defs/{kind}")
        if found:
            return found
        matches = [k for k in _KINDS if not self.problems(event, f"{self.core}#/$defs/{k}")]
        return [("", f"the event is valid as more than one kind ({', '.join(matches)})")]

    def event_problems(self, event: Any) -> List[Problem]:
        """Schema errors and notes of one event: the core schema, then each standard facet."""
        found = [Problem("error", "", path, text) for path, text in self.core_problems(event)]
        if not isinstance(event, dict):
            return found
        core_paths = {problem.path for problem in found}
        for place, where, key, facet in _facets_of(event):
            standard = self.standard.get((place, key))
            if standard is None or not isinstance(facet, dict):
                continue  # custom: the core schema holds it to _producer and _schemaURL
            ref, name = standard
            for path, text in self.problems(facet, ref):
                full = f"{where}/{key}" + (f"/{path}" if path else "")
                if full not in core_paths:
                    found.append(Problem("error", "", full, f"{name}: {text}"))
            url = facet.get("_schemaURL")
            held = ref.split("#")[0]
            if isinstance(url, str) and url.split("#")[0] != held:
                version = held.rpartition("/facets/")[2]
                text = f"_schemaURL names {url!r}; checked against {version}"
                found.append(Problem("note", "", f"{where}/{key}", text))
        return found

    def __call__(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """Return ``event`` if it is a ``RunEvent`` with no error, else raise
        :class:`InvalidEventError` (what atlan-ext emits must be a run event)."""
        errors = [str(p) for p in self.event_problems(event) if p.level == "error"]
        if not errors and self.problems(event):
            errors = ["a valid OpenLineage event, but not a RunEvent (run, job, eventType)"]
        if errors:
            raise InvalidEventError("; ".join(errors[:10]))
        return event


def _facets_of(event: Dict[str, Any]) -> Iterator[Tuple[str, str, str, Any]]:
    """``(place, JSON path of the facets object, key, facet)`` for every facet."""
    groups: List[Tuple[str, str, Any]] = [
        (place, f"{place}/facets", _get(event.get(place), "facets"))
        for place in ("run", "job", "dataset")  # "dataset": a DatasetEvent's static dataset
    ]
    for side, extra, place in (
        ("inputs", "inputFacets", "input"),
        ("outputs", "outputFacets", "output"),
    ):
        datasets = event.get(side)
        for index, dataset in enumerate(datasets if isinstance(datasets, list) else []):
            if isinstance(dataset, dict):
                groups.append(("dataset", f"{side}/{index}/facets", dataset.get("facets")))
                groups.append((place, f"{side}/{index}/{extra}", dataset.get(extra)))
    for place, where, group in groups:
        if isinstance(group, dict):
            for key, facet in group.items():
                yield place, where, key, facet


def _get(container: Any, key: str) -> Any:
    return container.get(key) if isinstance(container, dict) else None


# -- reading -----------------------------------------------------------------------------------


def read_events(path: Path | str) -> List[Any]:
    """The events in a JSON file (one event or an array) or a JSONL file (one per line);
    ``-`` reads standard input."""
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEventError(f"{path}: not a text file (UTF-8 JSON or JSONL)") from None
    try:
        data = json.loads(text)
    except ValueError:
        events = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except ValueError as error:
                    raise InvalidEventError(f"{path}:{number}: not JSON: {error}") from None
        return events
    return data if isinstance(data, list) else [data]


def read_paths(paths: Iterable[str]) -> Tuple[List[Tuple[str, Any]], List[Problem]]:
    """``(source, event)`` for every event in the files, folders (their ``*.json`` and
    ``*.jsonl``, recursively) and ``-`` given, and a problem for each that cannot be read."""
    found: List[Tuple[str, Any]] = []
    unreadable: List[Problem] = []
    for given in paths:
        files: List[str]
        if given != "-" and Path(given).is_dir():
            files = sorted(
                str(p) for p in Path(given).rglob("*") if p.suffix in (".json", ".jsonl")
            )
        else:
            files = [given]
        for name in files:
            try:
                events = read_events(name)
            except (OSError, AtlanExtError) as error:
                text = error.strerror if isinstance(error, OSError) else str(error)
                unreadable.append(Problem("error", name, "", text or str(error), "input"))
                continue
            single = len(events) == 1
            found.extend((name if single else f"{name}:{i + 1}", e) for i, e in enumerate(events))
    return found, unreadable


# -- judging -----------------------------------------------------------------------------------


def check_events(
    items: Sequence[Tuple[str, Any]],
    schema: Optional[SchemaValidator] = None,
    *,
    rules: str = "atlan",
) -> List[Problem]:
    """Every problem in ``(source, event)`` pairs, each labelled with its judge.

    ``rules="atlan"``: each event by the official schema (when ``schema`` is given) and by
    atlan-ext's rules, then the run cycle over all events together, by event time, as
    errors (one event given alone cannot show its run's other events: only noted).
    ``rules="openlineage"``: the official schema's verdict alone (``schema`` is required);
    the run cycle, which the spec asks for but no schema checks, is only noted.
    """
    if rules not in RULES:
        raise InvalidOptionError(f"rules={rules!r} is not a judge; expected one of {RULES}")
    if rules == "openlineage" and schema is None:
        raise InvalidOptionError(
            "rules='openlineage' is the official schema's verdict: pass a SchemaValidator of "
            "the schema folder (the CLI: set OPENLINEAGE_SPEC_DIR)"
        )
    problems: List[Problem] = []
    for source, event in items:
        if schema is not None:
            for found in schema.event_problems(event):
                problems.append(Problem(found.level, source, found.path, found.message))
        if rules == "atlan":
            for text in event_problems(event):
                problems.append(Problem("error", source, "", text, "atlan"))
    ordered = sorted(range(len(items)), key=lambda i: _time_of(items[i][1]))
    if rules == "openlineage":
        level, judge = "note", "openlineage"
        after = " (the spec asks each run for START and a terminal event; no schema checks it)"
    else:
        level, judge, after = "error", "atlan", ""
        if len(items) == 1:
            level, after = "note", " (one event given alone)"
    for index, text in run_cycle_problems([items[i][1] for i in ordered]):
        source = items[ordered[index]][0] if index >= 0 else ""
        problems.append(Problem(level, source, "", text + after, judge))
    return problems


def _time_of(event: Any) -> float:
    try:
        parsed = parse_time(event["eventTime"])
    except (KeyError, TypeError, AttributeError):
        parsed = None
    return parsed.timestamp() if parsed is not None else float("inf")


def validate_events(
    events: Sequence[Any], schema: Optional[SchemaValidator] = None, *, rules: str = "atlan"
) -> List[str]:
    """The errors in ``events`` (labelled ``event N``), as :func:`check_events` finds them."""
    items = [(f"event {index + 1}", event) for index, event in enumerate(events)]
    return [str(p) for p in check_events(items, schema, rules=rules) if p.level == "error"]
