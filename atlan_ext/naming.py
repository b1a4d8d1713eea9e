"""Dataset names that link: the OpenLineage naming spec, per source, both ways.

Atlan links an OpenLineage dataset to a crawled asset only when its namespace and name are the
ones the OpenLineage naming spec gives that asset's source (https://openlineage.io/docs/spec/naming);
any other name becomes a *partial* asset under the OpenLineage connection (a dotted border in
the UI). :func:`name_of_asset` gives the spec's name for a crawled pyatlan asset (what
``Dataset.from_asset`` returns); :func:`lint_dataset` says what in a name breaks the spec for
its scheme, and whether Atlan can link it at all.

No pyatlan import: assets are read by their attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from atlan_ext.exceptions import InvalidDatasetError

__all__ = ["SOURCES", "NameFinding", "Source", "lint_dataset", "lint_events", "name_of_asset"]


@dataclass(frozen=True)
class Source:
    """How the naming spec names one kind of source: its scheme, the Atlan connector that
    crawls it, the port its namespace must carry (``None``: no port), and the dotted parts of
    a name (``0``: a path or key, not dotted)."""

    scheme: str
    connector: str
    port: Optional[int]
    parts: Tuple[str, ...]

    @property
    def example(self) -> str:
        """The spec's form, e.g. ``postgres://{host}:{port}/{database}.{schema}.{table}``."""
        return _EXAMPLES.get(self.scheme) or (
            f"{self.scheme}://{{host}}:{{port}}/{'.'.join(f'{{{p}}}' for p in self.parts)}"
        )


_TABLE = ("database", "schema", "table")
#: The sources Atlan crawls that OpenLineage names, by scheme.
SOURCES: Dict[str, Source] = {
    source.scheme: source
    for source in (
        Source("snowflake", "snowflake", None, _TABLE),
        Source("postgres", "postgres", 5432, _TABLE),
        Source("redshift", "redshift", 5439, _TABLE),
        Source("mssql", "mssql", 1433, _TABLE),
        Source("trino", "trino", 8080, ("catalog", "schema", "table")),
        Source("oracle", "oracle", 1521, ("service", "schema", "table")),
        Source("mysql", "mysql", 3306, ("database", "table")),
        Source("bigquery", "bigquery", None, ("project", "dataset", "table")),
        Source("awsathena", "athena", None, ("catalog", "database", "table")),
        Source("s3", "s3", None, ()),
        Source("gs", "gcs", None, ()),
        Source("abfss", "adls", None, ()),
        Source("kafka", "kafka", 9092, ("topic",)),
    )
}
_EXAMPLES = {
    "snowflake": "snowflake://{org}-{account}/{database}.{schema}.{table}",
    "redshift": "redshift://{cluster}.{region}:5439/{database}.{schema}.{table}",
    "bigquery": "bigquery/{project}.{dataset}.{table}",
    "awsathena": "awsathena://athena.{region}.amazonaws.com/{catalog}.{database}.{table}",
    "s3": "s3://{bucket}/{key}",
    "gs": "gs://{bucket}/{key}",
    "abfss": "abfss://{container}@{account}.dfs.core.windows.net/{path}",
    "kafka": "kafka://{bootstrap host}:{port}/{topic}",
}
#: Schemes the spec names but that no Atlan crawler crawls: always partial.
_NOT_CRAWLED = {"file", "hdfs", "dbfs", "gcs", "wasbs", "hive", "teradata", "cassandra"}
#: Other spellings some tools write, and the scheme the spec uses.
_RESPELL = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "postgresql": "postgres", "sqlserver": "mssql"}


# -- from a crawled asset ----------------------------------------------------------------------


def name_of_asset(asset: Any, connection: Any = None) -> Tuple[str, str]:
    """The OpenLineage ``(namespace, name)``, by the naming spec, of a crawled pyatlan
    asset: a ``Table``, ``View``, ``MaterialisedView`` (or another SQL asset) of Snowflake,
    Postgres, Redshift, SQL Server, Trino, Oracle, MySQL, BigQuery or Athena; an
    ``S3Object``, ``GCSObject`` or ``ADLSObject``; a ``KafkaTopic``.

    Sources whose namespace holds a host (all but BigQuery and the object stores) need the
    asset's ``connection`` (pyatlan's ``Connection``, for its ``host`` and ``port``).
    Raises :class:`InvalidDatasetError` naming what is missing."""
    kind = type(asset).__name__
    connector = _connector_of(asset)
    label = f"{kind} {getattr(asset, 'qualified_name', None) or getattr(asset, 'name', '?')!r}"
    if kind == "S3Object":
        bucket = _required(asset, "s3_bucket_name", label)
        key = getattr(asset, "s3_object_key", None) or _arn_key(asset, bucket)
        return (f"s3://{bucket}", _key(key, label))
    if kind == "GCSObject":
        bucket = _required(asset, "gcs_bucket_name", label)
        return (f"gs://{bucket}", _key(_required(asset, "gcs_object_key", label), label))
    if kind == "ADLSObject":
        return _adls(asset, label)
    if kind == "KafkaTopic":
        host = _host_port(connection, 9092, label, "kafka")
        return (f"kafka://{host}", _required(asset, "name", label))
    source = next((s for s in SOURCES.values() if s.connector == connector), None)
    if source is None or not source.parts or source.scheme == "kafka":
        raise InvalidDatasetError(
            f"{label}: no OpenLineage naming rule for connector {connector!r}; supported: "
            f"{', '.join(sorted(s.connector for s in SOURCES.values()))}"
        )
    database = getattr(asset, "database_name", None)
    schema = getattr(asset, "schema_name", None)
    name = _required(asset, "name", label)
    if not schema:
        raise InvalidDatasetError(f"{label} has no schema_name: is it a table or view?")
    if source.scheme == "mysql":  # Atlan's MySQL schema is MySQL's database
        return (f"mysql://{_host_port(connection, 3306, label, 'mysql')}", f"{schema}.{name}")
    if not database:
        raise InvalidDatasetError(f"{label} has no database_name: is it a table or view?")
    dotted = f"{database}.{schema}.{name}"
    if source.scheme == "bigquery":
        return ("bigquery", dotted)
    if source.scheme == "snowflake":
        return (f"snowflake://{_snowflake_account(connection, label)}", dotted)
    if source.scheme == "awsathena":
        region = _athena_region(connection, label)
        return (f"awsathena://athena.{region}.amazonaws.com", dotted)
    if source.scheme == "redshift":
        return (f"redshift://{_redshift_authority(connection, label)}", dotted)
    host = _host_port(connection, source.port or 0, label, source.scheme)
    return (f"{source.scheme}://{host}", dotted)


def _connector_of(asset: Any) -> str:
    connector = getattr(asset, "connector_name", None)
    if not connector:
        parts = str(getattr(asset, "qualified_name", "") or "").split("/")
        connector = parts[1] if len(parts) > 2 else ""
    return str(getattr(connector, "value", connector) or "").lower()


def _required(asset: Any, attribute: str, label: str) -> str:
    value = getattr(asset, attribute, None)
    if not isinstance(value, str) or not value.strip():
        raise InvalidDatasetError(
            f"{label} has no {attribute}: search it with include_on_results for that attribute"
        )
    return value


def _key(key: str, label: str) -> str:
    """An object key as the spec names it: no leading slash."""
    key = key.lstrip("/")
    if not key:
        raise InvalidDatasetError(f"{label} has an empty object key")
    return key


def _arn_key(asset: Any, bucket: str) -> str:
    arn = str(getattr(asset, "aws_arn", None) or "")
    prefix = f"arn:aws:s3:::{bucket}/"
    return arn[len(prefix) :] if arn.startswith(prefix) else ""


def _adls(asset: Any, label: str) -> Tuple[str, str]:
    container = _required(asset, "adls_container_name", label)
    url = urlsplit(str(getattr(asset, "adls_object_url", None) or ""))
    account = (url.hostname or "").split(".")[0]
    if not account:
        account = str(getattr(asset, "adls_account_qualified_name", None) or "").rsplit("/", 1)[-1]
    if not account:
        raise InvalidDatasetError(f"{label} has neither adls_object_url nor its account's name")
    key = getattr(asset, "adls_object_key", None) or url.path.split(f"/{container}/", 1)[-1]
    return (f"abfss://{container}@{account}.dfs.core.windows.net", _key(str(key or ""), label))


def _connection_host(connection: Any, label: str, scheme: str) -> Tuple[str, Optional[int]]:
    host = getattr(connection, "host", None) if connection is not None else None
    if not isinstance(host, str) or not host.strip():
        raise InvalidDatasetError(
            f"{label}: a {scheme} namespace holds the source's host: pass connection= (pyatlan's "
            "Connection of the asset, with its host and port), e.g. client.asset."
            "get_by_qualified_name(asset.connection_qualified_name, Connection)"
        )
    first = re.split(r"[,\s]+", host.strip())[0]  # Kafka: a list of bootstrap servers
    first = re.sub(r"^[a-z]+://", "", first).rstrip("/")
    port = getattr(connection, "port", None)
    if ":" in first:
        first, _, given = first.rpartition(":")
        port = int(given) if given.isdigit() else port
    return first.lower(), port if isinstance(port, int) and port > 0 else None


def _host_port(connection: Any, default: int, label: str, scheme: str) -> str:
    host, port = _connection_host(connection, label, scheme)
    return f"{host}:{port or default}"


def _snowflake_account(connection: Any, label: str) -> str:
    host, _ = _connection_host(connection, label, "snowflake")
    return host.split(".snowflakecomputing.com")[0].replace(".privatelink", "")


def _redshift_authority(connection: Any, label: str) -> str:
    host, port = _connection_host(connection, label, "redshift")
    parts = host.split(".")
    # cluster.abc123.region.redshift.amazonaws.com -> cluster.region
    region = parts[2] if len(parts) > 3 and "redshift" in parts[3] else ""
    return f"{parts[0]}.{region}:{port or 5439}" if region else f"{host}:{port or 5439}"


def _athena_region(connection: Any, label: str) -> str:
    host, _ = _connection_host(connection, label, "awsathena")
    match = re.search(r"athena\.([a-z0-9-]+)\.amazonaws\.com", host)
    if match is None:
        raise InvalidDatasetError(f"{label}: cannot read the AWS region from host {host!r}")
    return match.group(1)


# -- the lint ----------------------------------------------------------------------------------


def _uri(namespace: str, name: str) -> str:
    """``events.dataset_uri`` (events imports this module, so it cannot be imported here)."""
    if namespace in ("file", "bigquery"):
        return f"file://{name}" if namespace == "file" else f"bigquery:{name}"
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class NameFinding:
    """What the lint says of one dataset: ``level`` ``error`` (breaks the spec) or ``note``;
    ``partial`` when Atlan will make it a partial asset whatever is crawled."""

    dataset: str
    level: str
    message: str
    fix: str = ""
    partial: bool = False

    def __str__(self) -> str:
        tail = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.dataset}: {self.message}{tail}"

    def to_dict(self) -> Dict[str, Any]:
        """The finding as JSON."""
        return {
            "dataset": self.dataset,
            "level": self.level,
            "message": self.message,
            "fix": self.fix,
            "partial": self.partial,
        }


def lint_dataset(namespace: str, name: str) -> List[NameFinding]:
    """What in ``namespace`` and ``name`` breaks the OpenLineage naming spec for the scheme,
    and whether Atlan will make the dataset partial (no crawled asset can ever match it).
    An empty list: the name follows the spec (it links if a crawled asset of that name exists)."""
    uri = _uri(namespace, name)
    scheme = namespace.split(":", 1)[0].lower()
    found: List[NameFinding] = []

    def say(message: str, fix: str = "", partial: bool = True, level: str = "error") -> None:
        found.append(NameFinding(uri, level, message, fix, partial))

    if scheme in _RESPELL:
        right = _RESPELL[scheme]
        say(f"the spec's scheme is {right}://, not {scheme}://", f"write {right}://...")
        scheme = right
    if scheme == "file":
        if not name.startswith("/"):
            say("a file's name must be its absolute path", f"file:///abs/path/{name}")
        say(
            "Atlan crawls no local files: it stays a partial asset",
            "fine for a file; for linked lineage write it where a crawler sees it (S3, ...)",
            level="note",
        )
        return found
    source = SOURCES.get(scheme)
    if source is None:
        level = "note"
        text = f"{scheme}:// is not a source Atlan crawls and links"
        say(text, "expected one of " + ", ".join(f"{s}://" for s in SOURCES), level=level)
        return found
    authority = namespace.split("://", 1)[1] if "://" in namespace else ""
    if scheme == "bigquery":
        if namespace != "bigquery":
            say(f"BigQuery's namespace is just 'bigquery', not {namespace!r}", "bigquery")
        _parts(say, source, name)
        return found
    if not authority:
        say(f"{namespace!r} has no authority", source.example)
        return found
    if source.port is not None and not re.search(r":\d+$", authority):
        say(
            f"{scheme}://{authority} has no port; the spec wants {{host}}:{{port}}",
            f"{scheme}://{authority}:{source.port}",
        )
    if scheme == "snowflake":
        _snowflake(say, authority)
    if scheme in ("s3", "gs", "abfss"):
        if name.startswith("/"):
            say("an object key has no leading slash", f"{namespace}/{name.lstrip('/')}")
        if scheme == "abfss" and not re.fullmatch(
            r"[^@]+@[^.]+\.dfs\.core\.windows\.net", authority
        ):
            say(
                f"abfss://{authority} is not {{container}}@{{account}}.dfs.core.windows.net",
                source.example,
            )
    elif source.parts:
        _parts(say, source, name)
    if authority != authority.lower() and scheme not in ("s3", "gs", "abfss"):
        say("host names are lower case in the spec", namespace.lower(), partial=False, level="note")
    return found


def _parts(say: Any, source: Source, name: str) -> None:
    parts = name.split(".")
    if len(parts) != len(source.parts) or not all(parts):
        wanted = ".".join(f"{{{p}}}" for p in source.parts)
        say(f"a {source.scheme} name is {wanted}, not {name!r}", source.example)


def _snowflake(say: Any, account: str) -> None:
    if "snowflakecomputing.com" in account or account.startswith(("http", "www.")):
        short = account.split(".snowflakecomputing.com")[0]
        say(
            "a Snowflake namespace is the account identifier, not the host name",
            f"snowflake://{short}",
        )
    elif ":" in account or "/" in account:
        say("a Snowflake namespace has no port or path", "snowflake://{org}-{account}")
    elif "_" in account and "-" not in account and "." not in account:
        # Neither {org}-{account} nor {locator}.{region}: an org_account written with '_'.
        say(
            f"{account!r} is neither {{org}}-{{account}} nor {{locator}}.{{region}}",
            f"snowflake://{account.replace('_', '-', 1)}",
        )


def lint_events(events: Iterable[Any]) -> List[Tuple[str, List[NameFinding]]]:
    """Each distinct dataset of ``events`` (inputs and outputs), in order, with its findings."""
    seen: Dict[str, List[NameFinding]] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        for side in ("inputs", "outputs"):
            for item in event.get(side) or []:
                namespace, name = (item or {}).get("namespace"), (item or {}).get("name")
                if isinstance(namespace, str) and isinstance(name, str):
                    uri = _uri(namespace, name)
                    if uri not in seen:
                        seen[uri] = lint_dataset(namespace, name) if namespace and name else []
    return list(seen.items())
