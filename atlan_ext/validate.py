"""Checking event files: atlan-ext's own rules, the run cycle, and the official JSON schema.

Our own rules (UUID run ids, timezone-aware times, a URI producer, required fields) and the run
cycle (each run: START first, exactly one terminal event, nothing after it) are always checked.
The full OpenLineage JSON schema is checked too when a folder of schema files is given
(``OPENLINEAGE_SPEC_DIR``): every ``$ref`` is resolved from that folder, never the network,
with the format checker on, so ``date-time``, ``uri`` and ``uuid`` are checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from atlan_ext.events import event_problems
from atlan_ext.exceptions import AtlanExtError, InvalidEventError, MissingDependencyError
from atlan_ext.states import RunState, check_transition

__all__ = ["SchemaValidator", "read_events", "validate_events"]

RUN_EVENT_REF = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


class SchemaValidator:
    """Validates events, and every standard facet in them, against a folder of the official
    OpenLineage schema files (``OpenLineage.json`` and ``facets/*.json``)."""

    def __init__(self, folder: Path | str) -> None:
        try:
            from jsonschema import Draft202012Validator
            from referencing import Registry, Resource
        except ImportError as error:
            raise MissingDependencyError(
                "schema validation needs jsonschema: pip install 'atlan-ext[test]'"
            ) from error
        root = Path(folder)
        files = [root / "OpenLineage.json", *sorted((root / "facets").glob("*.json"))]
        if not files[0].is_file():
            raise AtlanExtError(f"{root} holds no OpenLineage.json; point it at the schema folder")
        resources = []
        for path in files:
            schema = json.loads(path.read_text(encoding="utf-8"))
            resources.append((schema["$id"], Resource.from_contents(schema)))
        self._registry = Registry().with_resources(resources)
        self._documents = {uri for uri, _ in resources}
        self._cls: Any = Draft202012Validator

    def problems(self, instance: Any, ref: str = RUN_EVENT_REF) -> List[str]:
        """What the schema at ``ref`` finds wrong with ``instance`` (empty when valid)."""
        validator = self._cls(
            {"$ref": ref}, registry=self._registry, format_checker=self._cls.FORMAT_CHECKER
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(event)'}: {error.message}"
            for error in errors
        ]

    def event_problems(self, event: Any) -> List[str]:
        """Schema problems of an event and of each standard facet it carries."""
        found = self.problems(event)
        if found or not isinstance(event, dict):
            return found
        for where, facet in _facets_of(event):
            url = facet.get("_schemaURL", "")
            if "/spec/facets/" in url:
                if url.split("#")[0] not in self._documents:
                    found.append(f"{where}: no schema file for {url}")
                else:
                    found.extend(f"{where}/{p}" for p in self.problems(facet, url))
        return found

    def __call__(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """Return ``event`` if valid, else raise :class:`InvalidEventError` with the problems."""
        found = self.event_problems(event)
        if found:
            raise InvalidEventError("; ".join(found[:10]))
        return event


def _facets_of(event: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    groups = [
        ("run/facets", event.get("run", {}).get("facets", {})),
        ("job/facets", event.get("job", {}).get("facets", {})),
    ]
    for side in ("inputs", "outputs"):
        for index, dataset in enumerate(event.get(side, [])):
            groups.append((f"{side}/{index}/facets", dataset.get("facets", {})))
    for where, group in groups:
        if isinstance(group, dict):
            for name, facet in group.items():
                if isinstance(facet, dict):
                    yield f"{where}/{name}", facet


def read_events(path: Path | str) -> List[Any]:
    """The events in a JSON file (one event or an array) or a JSONL file (one per line)."""
    text = Path(path).read_text(encoding="utf-8")
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


def validate_events(events: Sequence[Any], schema: Optional[SchemaValidator] = None) -> List[str]:
    """Every problem in ``events``: per event (our rules, the schema when given) and across
    them (the run cycle, in the order given). Each line says which event."""
    problems: List[str] = []
    lifecycle: Dict[str, Optional[RunState]] = {}
    for index, event in enumerate(events):
        label = f"event {index + 1}"
        own = event_problems(event)
        problems.extend(f"{label}: {problem}" for problem in own)
        if schema is not None:
            problems.extend(
                f"{label}: schema: {problem}" for problem in schema.event_problems(event)
            )
        if own:
            continue
        run_id = event["run"]["runId"]
        label = f"{label} (run {run_id})"
        try:
            state = check_transition(lifecycle.get(run_id), event["eventType"])
        except AtlanExtError as error:
            problems.append(f"{label}: {error}")
            continue
        if state is not RunState.OTHER:
            lifecycle[run_id] = state
    for run_id, last in lifecycle.items():
        if last is not None and not last.is_terminal:
            problems.append(
                f"run {run_id}: no terminal event (COMPLETE, FAIL or ABORT) after {last.value}"
            )
    return problems
