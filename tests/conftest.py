"""Shared fixtures: every test gets an outbox of its own and no tenant from the environment;
``validate_event`` checks events against the official OpenLineage schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest

from atlan_ext import testing

SPEC_VARIABLE = "OPENLINEAGE_SPEC_DIR"
FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "pyatlan-fixtures"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's tenant or outbox; and every event a test leaves in its
    outbox must validate against the official schema (when the schema folder is known)."""
    for name in ("ATLAN_BASE_URL", "ATLAN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with testing.isolated_outbox(tmp_path / "home") as outbox:
        yield
        folder = os.environ.get(SPEC_VARIABLE)
        if folder:
            validator = _validator(Path(folder))
            for stored in outbox.iter_events():
                validator(stored.event)


class SchemaValidator:
    """Validates events, and each facet in them, against the schema files in a folder."""

    def __init__(self, folder: Path) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        resources = []
        for path in [folder / "OpenLineage.json", *sorted((folder / "facets").glob("*.json"))]:
            schema = json.loads(path.read_text())
            resources.append((schema["$id"], Resource.from_contents(schema)))
        self.registry = Registry().with_resources(resources)
        self.ids = {uri for uri, _ in resources}
        self._cls = Draft202012Validator

    def _validate(self, instance: Any, ref: str) -> None:
        validator = self._cls(
            {"$ref": ref},
            registry=self.registry,
            format_checker=self._cls.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            raise AssertionError("; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))

    def facet(self, facet: Dict[str, Any]) -> None:
        url = facet["_schemaURL"]
        document = url.split("#")[0]
        assert document in self.ids, f"no schema file for {url}"
        self._validate(facet, url)

    def __call__(self, event: Dict[str, Any]) -> Dict[str, Any]:
        self._validate(event, "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")
        groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
        for dataset in event.get("inputs", []) + event.get("outputs", []):
            groups.append(dataset.get("facets", {}))
        for group in groups:
            for facet in group.values():
                if "/spec/facets/" in facet.get("_schemaURL", ""):
                    self.facet(facet)
        return event


_validators: Dict[Path, SchemaValidator] = {}


def _validator(folder: Path) -> SchemaValidator:
    if folder not in _validators:
        _validators[folder] = SchemaValidator(folder)
    return _validators[folder]


@pytest.fixture(scope="session")
def schema() -> SchemaValidator:
    """The official OpenLineage schema, from $OPENLINEAGE_SPEC_DIR; skips when unset."""
    folder = os.environ.get(SPEC_VARIABLE)
    if not folder:
        pytest.skip(
            f"conformance not checked: set {SPEC_VARIABLE} to the folder holding "
            "OpenLineage.json and facets/ (e.g. ../shared/openlineage-spec)"
        )
    return _validator(Path(folder))


@pytest.fixture
def validate_event(schema: SchemaValidator) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    return schema


@pytest.fixture(scope="session")
def pyatlan_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"pyatlan's fixtures are not at {FIXTURES}")
    return FIXTURES
