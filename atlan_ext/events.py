"""Jobs, datasets, run ids, and OpenLineage run events as plain JSON dicts.

Every event is checked while it is built: a bad value raises a typed error that names it, and
no half-built event is ever returned. Events are plain dicts, sent through pyatlan's raw-event
path, because pyatlan's models lose facet fields, send ``"producer": ""`` and accept naive
times. :func:`as_event` also takes what users already have (pyatlan and openlineage-python
events) and turns it into the same checked dict.

This module builds events; what users already have is read in :mod:`atlan_ext._foreign`, and
the rules an event must follow live in :mod:`atlan_ext._event_checks`. Their public names are
imported from here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union
from urllib.parse import urlsplit

from atlan_ext import facets as _facets
from atlan_ext._event_build import RUN_EVENT_SCHEMA_URL, check_facets, made_event, now_text
from atlan_ext._event_checks import Event, check_event, event_problems
from atlan_ext._foreign import FOREIGN_DATASETS, FOREIGN_JOBS, as_event, as_events, foreign_dict
from atlan_ext._values import RunId, check_text, check_uri, format_time
from atlan_ext._version import PRODUCER
from atlan_ext.exceptions import (
    InvalidDatasetError,
    InvalidEventError,
    InvalidFacetError,
    InvalidJobError,
)
from atlan_ext.naming import name_of_asset
from atlan_ext.states import RunState

__all__ = [
    "PRODUCER",
    "RUN_EVENT_SCHEMA_URL",
    "Dataset",
    "DatasetLike",
    "Job",
    "RunId",
    "as_dataset",
    "as_event",
    "as_events",
    "as_job",
    "build_event",
    "check_event",
    "dataset_uri",
    "event_problems",
    "format_time",
]


# scheme://authority/name in its plainest form (what urlsplit would split the same way, with
# nothing to refuse): Dataset.parse takes it apart without urlsplit's many steps.
# Namespaces that OpenLineage's naming spec gives no authority: the URI is scheme:name.
_NO_AUTHORITY = re.compile(r"(bigquery):(?!//)(\S.*)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_PLAIN_URI = re.compile(r"([a-z][a-z0-9+.\-]*://[A-Za-z0-9._~%!$&'()*+,;=:@\-]+)/(.*\S.*)")


@dataclass(frozen=True)
class Dataset:
    """A dataset: ``namespace`` (where it lives, e.g. ``snowflake://acct``) and ``name``."""

    namespace: str
    name: str
    facets: Mapping[str, Any] = field(default_factory=dict)
    #: Facets of the dataset as an input (``inputFacets``) or output (``outputFacets``) of
    #: a run, kept apart from ``facets``: a name may stand on both sides.
    input_facets: Mapping[str, Any] = field(default_factory=dict)
    output_facets: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_text(self.namespace, "Dataset namespace", InvalidDatasetError)
        check_text(self.name, "Dataset name", InvalidDatasetError)
        where = f"dataset {self.name!r}"
        object.__setattr__(self, "facets", check_facets(self.facets, where))
        object.__setattr__(self, "input_facets", check_facets(self.input_facets, where))
        object.__setattr__(self, "output_facets", check_facets(self.output_facets, where))

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, uri: str, facets: Optional[Mapping[str, Any]] = None) -> Dataset:
        """Split a dataset URI at the first ``/`` after the authority::

        Dataset.parse("snowflake://acct/DB.SCHEMA.TABLE")  # snowflake://acct, DB.SCHEMA.TABLE
        Dataset.parse("s3://bucket/path/file")             # s3://bucket, path/file
        Dataset.parse("file:///tmp/out.csv")               # file, /tmp/out.csv
        Dataset.parse("bigquery:proj.dataset.table")       # bigquery, proj.dataset.table
        """
        if not isinstance(uri, str):
            raise InvalidDatasetError(f"a dataset URI must be a string, got {uri!r}")
        text = uri.strip()
        bare = _NO_AUTHORITY.fullmatch(text)
        if bare is not None:  # bigquery:project.dataset.table (OpenLineage's naming spec)
            return cls(bare.group(1), bare.group(2), facets or {})
        plain = _PLAIN_URI.fullmatch(text)
        if plain is not None:
            return cls(plain.group(1), plain.group(2), facets or {})
        hint = "expected scheme://authority/name, e.g. snowflake://acct/DB.SCHEMA.TABLE"
        if text and "://" not in text and not _SCHEME.match(text):
            # A local path (orders.csv, ./out/x.parquet, /tmp/x): the URI it most likely means.
            absolute = os.path.abspath(Path(text).expanduser())  # noqa: PTH100 (no resolve)
            hint += f"; for a local file, file://{absolute}"
        try:
            parts = urlsplit(text)
        except ValueError:
            raise InvalidDatasetError(f"{uri!r} is not a dataset URI; {hint}") from None
        if parts.scheme == "file" and text.startswith("file:///") and len(text) > 8:
            return cls("file", text[len("file://") :], facets or {})
        if (
            not parts.scheme[:1].isalpha()  # RFC 3986 (Python 3.9's urlsplit takes "1s:")
            or not text.startswith(f"{parts.scheme}://")
            or not parts.netloc
        ):
            raise InvalidDatasetError(f"{uri!r} is not a dataset URI; {hint}")
        start = len(parts.scheme) + 3 + len(parts.netloc)
        name = text[start + 1 :]
        if text[start : start + 1] != "/" or not name.strip():
            raise InvalidDatasetError(f"{uri!r} has no dataset name after the authority; {hint}")
        return cls(text[:start], name, facets or {})

    @classmethod
    def from_asset(cls, asset: Any, connection: Any = None) -> Dataset:
        """The dataset a crawled pyatlan asset is, named by the OpenLineage naming spec, so
        lineage to it links instead of making a partial asset::

            Dataset.from_asset(table, connection)  # snowflake://myorg-acct, DB.SCHEMA.TABLE
            Dataset.from_asset(s3_object)          # s3://bucket, path/key.parquet

        ``connection``: the asset's pyatlan ``Connection``, for the sources whose namespace
        holds a host (not BigQuery, S3, GCS or ADLS). See :mod:`atlan_ext.naming`."""
        namespace, name = name_of_asset(asset, connection)
        return cls(namespace, name)

    @property
    def uri(self) -> str:
        """The dataset as one URI, the inverse of :meth:`parse`."""
        return dataset_uri(self.namespace, self.name)

    def to_dict(self) -> Event:
        """The dataset as it appears in an event's ``inputs`` or ``outputs``."""
        data: Event = {"namespace": self.namespace, "name": self.name, "facets": dict(self.facets)}
        if self.input_facets:
            data["inputFacets"] = dict(self.input_facets)
        if self.output_facets:
            data["outputFacets"] = dict(self.output_facets)
        return data


_PARSED: Dict[str, Dataset] = {}  # URI -> its Dataset (see as_dataset)
_PARSED_LIMIT = 1024


def dataset_uri(namespace: str, name: str) -> str:
    """A dataset's namespace and name as one URI (OpenLineage's naming spec): ``file://``
    plus the path, ``bigquery:`` plus the table, else ``namespace/name``."""
    if namespace == "file":
        return f"file://{name}"
    if namespace == "bigquery":
        return f"bigquery:{name}"
    return f"{namespace}/{name}"


#: A dataset as users have it: ours, a URI, or a pyatlan / openlineage-python dataset object.
DatasetLike = Union[Dataset, str, Any]


def as_dataset(value: DatasetLike) -> Dataset:
    """A :class:`Dataset` from ours, a URI string, or a pyatlan or openlineage-python dataset
    (input, output or plain), facets included."""
    if isinstance(value, Dataset):
        return value
    if isinstance(value, str):
        parsed = _PARSED.get(value)
        if parsed is None:
            # A job names the same few datasets run after run: each URI is parsed once (a
            # Dataset is frozen, so one instance serves every run that names it).
            if len(_PARSED) >= _PARSED_LIMIT:
                _PARSED.clear()
            parsed = _PARSED[value] = Dataset.parse(value)
        return parsed
    data = foreign_dict(value, FOREIGN_DATASETS)
    if data is None:
        raise InvalidDatasetError(
            f"{value!r} is not a dataset; pass a Dataset, a URI such as "
            "snowflake://acct/DB.SCHEMA.TABLE, or a pyatlan / openlineage-python dataset"
        )
    return Dataset(
        data.get("namespace", ""),
        data.get("name", ""),
        data.get("facets") or {},
        input_facets=data.get("inputFacets") or {},
        output_facets=data.get("outputFacets") or {},
    )


def as_job(value: object) -> Job:
    """A :class:`Job` from ours, or a pyatlan ``OpenLineageJob`` or openlineage-python ``Job``
    (its namespace is the Atlan connection), facets included."""
    if isinstance(value, Job):
        return value
    data = foreign_dict(value, FOREIGN_JOBS)
    if data is None:
        raise InvalidJobError(
            f"{value!r} is not a job; pass atlan_ext.Job(connection='ol-spark', "
            "name='nightly_load') or a pyatlan / openlineage-python job"
        )
    producer = getattr(value, "producer", None)  # pyatlan keeps it off the job's JSON
    return Job(
        data.get("namespace", ""),
        data.get("name", ""),
        job_type=None,  # another producer's job: its own jobType facet or none, not ours
        facets=data.get("facets") or {},
        producer=producer if isinstance(producer, str) and producer else None,
    )


@dataclass(frozen=True)
class Job:
    """A job. Its OpenLineage namespace is the name of the Atlan OpenLineage connection.

    The keyword arguments build the standard job facets: ``job_type``, ``processing_type``
    and ``integration`` the ``jobType`` facet, sent by default as JOB, BATCH, ATLAN_EXT (Atlan
    reads it for its parent/child view; its Generic OpenLineage connector wants DAG or
    APPLICATION on parent jobs; ``job_type=None`` sends none); ``description``, ``sql``,
    ``source_code_url``; ``facets`` adds any others (a ``jobType`` there replaces ours).
    """

    connection: str
    name: str
    job_type: Optional[str] = "JOB"
    processing_type: str = "BATCH"
    description: Optional[str] = None
    sql: Optional[str] = None
    source_code_url: Optional[str] = None
    facets: Mapping[str, Any] = field(default_factory=dict)
    #: The ``producer`` of this job's events, when it is not atlan-ext (a pyatlan job's).
    producer: Optional[str] = None
    #: The ``integration`` of the ``jobType`` facet (OpenLineage's examples: SPARK, DBT,
    #: AIRFLOW): what emits the job's events.
    integration: str = "ATLAN_EXT"

    def __post_init__(self) -> None:
        if self.producer is not None:
            check_uri(self.producer, "Job producer", InvalidJobError)
        check_text(
            self.connection, "Job connection (the Atlan OpenLineage connection)", InvalidJobError
        )
        check_text(self.name, "Job name", InvalidJobError)
        built: Dict[str, Any] = {}
        try:
            if self.job_type is not None:
                built["jobType"] = _facets.job_type(
                    self.job_type,
                    processing_type=self.processing_type,
                    integration=self.integration,
                )
            if self.description is not None:
                built["documentation"] = _facets.documentation(self.description)
            if self.sql is not None:
                built["sql"] = _facets.sql(self.sql)
            if self.source_code_url is not None:
                built["sourceCodeLocation"] = _facets.source_code_location(self.source_code_url)
        except InvalidFacetError as error:
            raise InvalidJobError(f"job {self.name!r}: {error}") from None
        built.update(check_facets(self.facets, f"job {self.name!r}"))
        object.__setattr__(self, "facets", built)

    @property
    def namespace(self) -> str:
        """The OpenLineage job namespace: the Atlan connection's name."""
        return self.connection

    def to_dict(self) -> Event:
        """The job as it appears in an event."""
        return {"namespace": self.connection, "name": self.name, "facets": dict(self.facets)}


def build_event(
    state: object,
    job: Any,
    run_id: object,
    *,
    inputs: Iterable[DatasetLike] = (),
    outputs: Iterable[DatasetLike] = (),
    run_facets: Optional[Mapping[str, Any]] = None,
    event_time: Optional[datetime] = None,
    producer: Optional[str] = None,
) -> Event:
    """One OpenLineage ``RunEvent`` as a plain dict, valid against the 2-0-2 schema.

    Every argument is checked first; a bad one raises a typed :class:`AtlanExtError` naming it.
    ``producer`` defaults to the job's own (a pyatlan job's) and else to atlan-ext's.
    """
    event_type = RunState.coerce(state)
    job = as_job(job)
    checked_run_id = RunId.check(run_id)
    when = format_time(event_time) if event_time is not None else now_text()
    checked_producer = check_uri(
        producer or job.producer or PRODUCER, "producer", InvalidEventError
    )
    return made_event(
        event_type,
        job,
        checked_run_id,
        inputs=[as_dataset(item) for item in inputs],
        outputs=[as_dataset(item) for item in outputs],
        run_facets=check_facets(run_facets, "run"),
        when=when,
        producer=checked_producer,
    )
