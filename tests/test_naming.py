"""Dataset.from_asset and the naming lint, on pyatlan's own asset objects."""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import pytest

from atlan_ext import Dataset, InvalidDatasetError
from atlan_ext.naming import SOURCES, lint_dataset, lint_events


def _connection(host: str, port: Optional[int] = None, qualified_name: str = "") -> Any:
    from pyatlan.model.assets import Connection

    return Connection(
        attributes=Connection.Attributes(host=host, port=port, qualified_name=qualified_name)
    )


def _sql(kind: str, connector: str, database: str, schema: str, name: str) -> Any:
    from pyatlan.model import assets

    return getattr(assets, kind).creator(
        name=name, schema_qualified_name=f"default/{connector}/1700000000/{database}/{schema}"
    )


def _s3() -> Any:
    from pyatlan.model.assets import S3Object

    return S3Object.creator(
        name="part-0.parquet",
        connection_qualified_name="default/s3/1700000000",
        aws_arn="arn:aws:s3:::lake/raw/orders/part-0.parquet",
        s3_bucket_name="lake",
        s3_bucket_qualified_name="default/s3/1700000000/arn:aws:s3:::lake",
    )


def _gcs() -> Any:
    from pyatlan.model.assets import GCSObject

    asset = GCSObject.creator(
        name="orders.csv",
        gcs_bucket_name="exports",
        gcs_bucket_qualified_name="default/gcs/1700000000/exports",
    )
    asset.gcs_object_key = "daily/orders.csv"
    return asset


def _adls() -> Any:
    from pyatlan.model.assets import ADLSObject

    asset = ADLSObject.creator(
        name="orders.parquet",
        adls_container_name="bronze",
        adls_container_qualified_name="default/adls/1700000000/acmelake/bronze",
        adls_account_qualified_name="default/adls/1700000000/acmelake",
    )
    asset.adls_object_url = "https://acmelake.blob.core.windows.net/bronze/sales/orders.parquet"
    return asset


def _kafka() -> Any:
    from pyatlan.model.assets import KafkaTopic

    return KafkaTopic.creator(name="orders", connection_qualified_name="default/kafka/1700000000")


CASES: List[Any] = [
    # (source, asset, connection, namespace, name)
    (
        "Snowflake",
        lambda: _sql("Table", "snowflake", "SALES", "PUBLIC", "ORDERS"),
        lambda: _connection("myorg-acct.snowflakecomputing.com", 443),
        "snowflake://myorg-acct",
        "SALES.PUBLIC.ORDERS",
    ),
    (
        "Snowflake view, locator form",
        lambda: _sql("View", "snowflake", "SALES", "PUBLIC", "ORDERS_V"),
        lambda: _connection("xy12345.us-east-1.privatelink.snowflakecomputing.com"),
        "snowflake://xy12345.us-east-1",
        "SALES.PUBLIC.ORDERS_V",
    ),
    (
        "Postgres",
        lambda: _sql("Table", "postgres", "shop", "public", "orders"),
        lambda: _connection("DB.internal", 5433),
        "postgres://db.internal:5433",
        "shop.public.orders",
    ),
    (
        "Postgres, default port",
        lambda: _sql("MaterialisedView", "postgres", "shop", "public", "daily"),
        lambda: _connection("db.internal"),
        "postgres://db.internal:5432",
        "shop.public.daily",
    ),
    (
        "Redshift",
        lambda: _sql("Table", "redshift", "dev", "public", "sales"),
        lambda: _connection("analytics.abc123.eu-west-1.redshift.amazonaws.com", 5439),
        "redshift://analytics.eu-west-1:5439",
        "dev.public.sales",
    ),
    (
        "MySQL",
        lambda: _sql("Table", "mysql", "def", "shop", "orders"),
        lambda: _connection("mysql.internal", 3306),
        "mysql://mysql.internal:3306",
        "shop.orders",
    ),
    (
        "BigQuery",
        lambda: _sql("Table", "bigquery", "my-project", "sales", "orders"),
        lambda: None,
        "bigquery",
        "my-project.sales.orders",
    ),
    ("S3", _s3, lambda: None, "s3://lake", "raw/orders/part-0.parquet"),
    ("GCS", _gcs, lambda: None, "gs://exports", "daily/orders.csv"),
    (
        "ADLS",
        _adls,
        lambda: None,
        "abfss://bronze@acmelake.dfs.core.windows.net",
        "sales/orders.parquet",
    ),
    (
        "Kafka",
        _kafka,
        lambda: _connection("b1.kafka.internal:9093,b2.kafka.internal:9093"),
        "kafka://b1.kafka.internal:9093",
        "orders",
    ),
]


class TestFromAsset:
    """Dataset.from_asset names a crawled asset as the OpenLineage naming spec does."""

    @pytest.mark.parametrize(
        ("source", "asset", "connection", "namespace", "name"),
        CASES,
        ids=[case[0] for case in CASES],
    )
    def test_names(
        self,
        source: str,
        asset: Callable[[], Any],
        connection: Callable[[], Any],
        namespace: str,
        name: str,
    ) -> None:
        """Each source's asset gets the spec's namespace and name, which lint clean."""
        dataset = Dataset.from_asset(asset(), connection())
        assert (dataset.namespace, dataset.name) == (namespace, name)
        assert [f for f in lint_dataset(namespace, name) if f.level == "error"] == []

    def test_host_needed(self) -> None:
        """A source whose namespace holds a host says to pass the connection."""
        with pytest.raises(InvalidDatasetError, match=r"pass connection="):
            Dataset.from_asset(_sql("Table", "postgres", "shop", "public", "orders"))

    def test_unknown_connector(self) -> None:
        """A connector without a naming rule is named, with the supported ones."""
        with pytest.raises(InvalidDatasetError, match=r"no OpenLineage naming rule for .*tableau"):
            Dataset.from_asset(_sql("Table", "tableau", "a", "b", "c"), _connection("h"))


class TestLint:
    """The lint flags names that break the spec for their scheme, with the fix."""

    @pytest.mark.parametrize(
        ("namespace", "name", "said", "fix"),
        [
            (
                "postgres://db.internal",
                "shop.public.orders",
                "has no port",
                "postgres://db.internal:5432",
            ),
            ("postgresql://db:5432", "shop.public.orders", "scheme is postgres://", ""),
            ("postgres://db:5432", "public.orders", "name is {database}.{schema}.{table}", ""),
            (
                "snowflake://acct.snowflakecomputing.com",
                "DB.S.T",
                "not the host name",
                "snowflake://acct",
            ),
            (
                "snowflake://myorg_acct",
                "DB.S.T",
                "neither {org}-{account}",
                "snowflake://myorg-acct",
            ),
            ("s3://lake", "/raw/orders.csv", "no leading slash", "s3://lake/raw/orders.csv"),
            ("s3a://lake", "raw/orders.csv", "scheme is s3://", ""),
            ("bigquery://my-project", "my-project.sales.orders", "just 'bigquery'", ""),
            ("kafka://broker", "orders", "has no port", "kafka://broker:9092"),
            (
                "abfss://bronze@acme.blob.core.windows.net",
                "x.parquet",
                "{container}@{account}.dfs.core.windows.net",
                "",
            ),
            ("file", "out/orders.csv", "absolute path", ""),
        ],
    )
    def test_flags(self, namespace: str, name: str, said: str, fix: str) -> None:
        """The error names what is wrong and, where one exists, the right name."""
        errors = [f for f in lint_dataset(namespace, name) if f.level == "error"]
        assert errors, f"{namespace}/{name} was not flagged"
        finding = next(f for f in errors if said in f.message)
        assert fix in finding.fix
        assert finding.partial

    @pytest.mark.parametrize(
        ("namespace", "name"),
        [
            ("snowflake://myorg-acct", "SALES.PUBLIC.ORDERS"),
            ("snowflake://xy12345.us-east-1", "SALES.PUBLIC.ORDERS"),
            ("postgres://db.internal:5432", "shop.public.orders"),
            ("bigquery", "p.d.t"),
            ("s3://lake", "raw/orders.csv"),
            ("kafka://broker:9092", "orders"),
        ],
    )
    def test_clean(self, namespace: str, name: str) -> None:
        """A name that follows the spec gets no finding."""
        assert lint_dataset(namespace, name) == []

    @pytest.mark.parametrize(("namespace", "name"), [("file", "/tmp/x.csv"), ("ftp://h", "x")])
    def test_never_links(self, namespace: str, name: str) -> None:
        """Local files and sources Atlan does not crawl are predicted partial, as notes."""
        findings = lint_dataset(namespace, name)
        assert [f.level for f in findings] == ["note"]
        assert findings[0].partial

    def test_events(self) -> None:
        """Every distinct dataset of the events is linted once, in order."""
        event = {
            "inputs": [{"namespace": "postgres://db", "name": "a.b.c"}],
            "outputs": [{"namespace": "s3://lake", "name": "x.csv"}],
        }
        found = lint_events([event, event])
        assert [uri for uri, _ in found] == ["postgres://db/a.b.c", "s3://lake/x.csv"]
        assert found[0][1]
        assert not found[1][1]

    def test_every_source_has_an_example(self) -> None:
        """Each source's example starts with its scheme (the fixes quote them)."""
        for scheme, source in SOURCES.items():
            assert source.example.startswith(scheme)


def _events_file(tmp_path: Any, *uris: str) -> str:
    """A JSONL file of one START whose inputs are ``uris``, made by atlan-ext itself."""
    import json

    from atlan_ext import Job, RunId
    from atlan_ext.events import build_event

    event = build_event("START", Job("ol-demo", "j"), RunId.new(), inputs=list(uris))
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event) + "\n")
    return str(path)


class TestLintCommand:
    """atlan-lineage lint and validate --lint print one line per finding."""

    def test_file(self, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
        """A name breaking the spec fails with its fix; a good one is said to follow it."""
        from atlan_ext import cli

        path = _events_file(tmp_path, "postgres://db/shop.public.orders", "s3://lake/raw/x.csv")
        assert cli.main(["lint", path, "--offline"]) == 1
        out = capsys.readouterr().out
        assert "postgres://db/shop.public.orders: postgres://db has no port" in out
        assert "(fix: postgres://db:5432) (will be a partial asset)" in out
        assert "s3://lake/raw/x.csv: follows the naming spec" in out

    def test_run_id_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A run id lints the datasets the outbox holds for it."""
        import json

        from atlan_ext import Job, cli, lineage_run

        with lineage_run(Job("ol-demo", "j"), client="local", outputs=["s3://lake//x.csv"]) as run:
            pass
        assert cli.main(["lint", str(run.run_id), "--format", "json"]) == 1
        data = json.loads(capsys.readouterr().out)
        assert data["errors"] == 1
        assert data["datasets"][0]["findings"][0]["fix"] == "s3://lake/x.csv"

    def test_validate_lint(self, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
        """validate --lint adds the naming findings to a valid event's check."""
        from atlan_ext import cli

        path = _events_file(tmp_path, "snowflake://acct.snowflakecomputing.com/DB.S.T")
        assert cli.main(["validate", path]) == 0
        capsys.readouterr()
        assert cli.main(["validate", path, "--lint"]) == 1
        assert "not the host name" in capsys.readouterr().out

    def test_with_tenant(
        self,
        tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With a tenant, the crawled asset a name links to, or those of its name, are said."""
        import httpx
        import respx

        from atlan_ext import cli

        url = "https://tenant.atlan.test"
        monkeypatch.setenv("ATLAN_BASE_URL", url)
        monkeypatch.setenv("ATLAN_API_KEY", "lint-key-0123456789")
        table = {
            "typeName": "Table",
            "guid": "t1",
            "status": "ACTIVE",
            "attributes": {
                "qualifiedName": "default/postgres/1/shop/public/orders",
                "name": "orders",
                "connectorName": "postgres",
                "connectionQualifiedName": "default/postgres/1",
                "databaseName": "shop",
                "schemaName": "public",
            },
        }
        host = {
            "typeName": "Connection",
            "guid": "c1",
            "status": "ACTIVE",
            "attributes": {"qualifiedName": "default/postgres/1", "host": "db", "port": 5432},
        }

        def answer(request: httpx.Request) -> httpx.Response:
            page = [host] if b'"Connection"' in request.content else [table]
            return httpx.Response(200, json={"approximateCount": 1, "entities": page})

        path = _events_file(
            tmp_path,
            "postgres://db:5432/shop.public.orders",
            "postgres://db:5433/shop.public.orders",
        )
        with respx.mock(base_url=url) as router:
            router.post("/api/meta/search/indexsearch").mock(side_effect=answer)
            assert cli.main(["lint", path]) == 0
        out = capsys.readouterr().out
        assert "links to the crawled asset default/postgres/1/shop/public/orders" in out
        assert "matches no crawled asset; crawled postgres assets named 'orders': " in out
        assert "postgres://db:5432/shop.public.orders" in out
