"""The standard OpenLineage facets atlan-ext builds, as plain JSON dicts.

Each function returns one facet with ``_producer`` and ``_schemaURL`` set, ready to put under
the key named in its docstring. Plain dicts, not model objects: pyatlan's facet models drop
the fields of facets they do not know (a ``sql`` facet loses ``query``), and openlineage-python's
facet objects cannot be serialised by pyatlan.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

from atlan_ext._values import RunId, check_uri, format_time
from atlan_ext._version import PRODUCER
from atlan_ext.exceptions import InvalidFacetError

__all__ = [
    "column_lineage",
    "documentation",
    "error_message",
    "job_type",
    "nominal_time",
    "parent",
    "processing_engine",
    "source_code_location",
    "sql",
]

Facet = Dict[str, Any]

_SPEC = "https://openlineage.io/spec/facets"
_SCHEMAS = {
    "ColumnLineageDatasetFacet": "1-2-0",
    "DocumentationJobFacet": "1-1-0",
    "ErrorMessageRunFacet": "1-0-1",
    "JobTypeJobFacet": "2-0-4",
    "NominalTimeRunFacet": "1-0-1",
    "ParentRunFacet": "1-2-0",
    "ProcessingEngineRunFacet": "1-1-1",
    "SQLJobFacet": "1-1-0",
    "SourceCodeLocationJobFacet": "1-1-0",
}


def _facet(kind: str, fields: Mapping[str, Any], producer: str) -> Facet:
    version = _SCHEMAS[kind]
    facet: Facet = {
        "_producer": producer,
        "_schemaURL": f"{_SPEC}/{version}/{kind}.json#/$defs/{kind}",
    }
    facet.update((key, value) for key, value in fields.items() if value is not None)
    return facet


def _text(kind: str, field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidFacetError(f"{kind}.{field} must be a non-empty string, got {value!r}")
    return value


def error_message(
    message: str,
    *,
    stack_trace: Optional[str] = None,
    programming_language: str = "python",
    producer: str = PRODUCER,
) -> Facet:
    """The ``errorMessage`` run facet: why a run failed or was aborted."""
    if not isinstance(message, str):
        raise InvalidFacetError(f"errorMessage.message must be a string, got {message!r}")
    return _facet(
        "ErrorMessageRunFacet",
        {
            "message": message,
            "programmingLanguage": _text(
                "errorMessage", "programmingLanguage", programming_language
            ),
            "stackTrace": stack_trace,
        },
        producer,
    )


def parent(
    run_id: str,
    job_namespace: str,
    job_name: str,
    *,
    root: Optional[Tuple[str, str, str]] = None,
    producer: str = PRODUCER,
) -> Facet:
    """The ``parent`` run facet: the run (and job) that started this one.

    ``root`` is ``(run_id, job_namespace, job_name)`` of the outermost run, when there is one.
    """
    fields: Dict[str, Any] = {
        "run": {"runId": RunId.check(run_id)},
        "job": {
            "namespace": _text("parent", "job.namespace", job_namespace),
            "name": _text("parent", "job.name", job_name),
        },
    }
    if root is not None:
        root_run, root_namespace, root_name = root
        fields["root"] = {
            "run": {"runId": RunId.check(root_run)},
            "job": {
                "namespace": _text("parent", "root.job.namespace", root_namespace),
                "name": _text("parent", "root.job.name", root_name),
            },
        }
    return _facet("ParentRunFacet", fields, producer)


def nominal_time(
    start: datetime, end: Optional[datetime] = None, *, producer: str = PRODUCER
) -> Facet:
    """The ``nominalTime`` run facet: the scheduled time (window) this run is for."""
    return _facet(
        "NominalTimeRunFacet",
        {
            "nominalStartTime": format_time(start),
            "nominalEndTime": format_time(end) if end is not None else None,
        },
        producer,
    )


def processing_engine(
    version: str,
    *,
    name: Optional[str] = None,
    adapter_version: Optional[str] = None,
    producer: str = PRODUCER,
) -> Facet:
    """The ``processing_engine`` run facet: what ran the job (e.g. Spark 3.5.0)."""
    return _facet(
        "ProcessingEngineRunFacet",
        {
            "version": _text("processing_engine", "version", version),
            "name": name,
            "openlineageAdapterVersion": adapter_version,
        },
        producer,
    )


def job_type(
    job_type: str,
    *,
    processing_type: str = "BATCH",
    integration: str = "ATLAN_EXT",
    producer: str = PRODUCER,
) -> Facet:
    """The ``jobType`` job facet. Atlan's Generic OpenLineage connector wants ``job_type``
    DAG or APPLICATION on parent jobs."""
    return _facet(
        "JobTypeJobFacet",
        {
            "processingType": _text("jobType", "processingType", processing_type),
            "integration": _text("jobType", "integration", integration),
            "jobType": _text("jobType", "jobType", job_type),
        },
        producer,
    )


def documentation(description: str, *, producer: str = PRODUCER) -> Facet:
    """The ``documentation`` job facet: what the job does, in prose."""
    return _facet(
        "DocumentationJobFacet",
        {"description": _text("documentation", "description", description)},
        producer,
    )


def sql(query: str, *, dialect: Optional[str] = None, producer: str = PRODUCER) -> Facet:
    """The ``sql`` job facet: the query the job runs."""
    return _facet(
        "SQLJobFacet", {"query": _text("sql", "query", query), "dialect": dialect}, producer
    )


def source_code_location(
    url: str,
    *,
    type: str = "git",
    repo_url: Optional[str] = None,
    path: Optional[str] = None,
    version: Optional[str] = None,
    branch: Optional[str] = None,
    producer: str = PRODUCER,
) -> Facet:
    """The ``sourceCodeLocation`` job facet: where the job's code lives."""
    return _facet(
        "SourceCodeLocationJobFacet",
        {
            "type": _text("sourceCodeLocation", "type", type),
            "url": check_uri(url, "sourceCodeLocation.url", InvalidFacetError),
            "repoUrl": repo_url,
            "path": path,
            "version": version,
            "branch": branch,
        },
        producer,
    )


def column_lineage(
    fields: Mapping[str, Iterable[Sequence[str]]], *, producer: str = PRODUCER
) -> Facet:
    """The ``columnLineage`` facet of an output dataset.

    ``fields`` maps each output column to the input columns it is computed from, each as
    ``(dataset namespace, dataset name, column)``::

        column_lineage({"total": [("snowflake://acct", "RAW.PUBLIC.ORDERS", "amount")]})
    """
    if not isinstance(fields, Mapping):
        raise InvalidFacetError(
            f"columnLineage fields must map output columns to input columns, got {fields!r}"
        )
    out: Dict[str, Any] = {}
    for column, inputs in fields.items():
        _text("columnLineage", "field", column)
        input_fields = []
        for item in inputs:
            if isinstance(item, str) or len(item) != 3:
                raise InvalidFacetError(
                    f"columnLineage input of {column!r} must be (namespace, name, field), "
                    f"got {item!r}"
                )
            namespace, name, field = item
            input_fields.append(
                {
                    "namespace": _text("columnLineage", "namespace", namespace),
                    "name": _text("columnLineage", "name", name),
                    "field": _text("columnLineage", "field", field),
                }
            )
        out[column] = {"inputFields": input_fields}
    return _facet("ColumnLineageDatasetFacet", {"fields": out}, producer)
