"""`atlan-lineage wrap` then `atlan-lineage verify`, end to end over loopback HTTP against the
Atlan stand-in (integration/standin.py), which answers pyatlan's search and builds the job,
process and assets from the events a moment after they arrive, as Atlan does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from atlan_ext import Dataset, Job, cli

STANDIN = Path(__file__).resolve().parent.parent / "integration" / "standin.py"
RUN_ID = "0f9a4c62-5f0e-4d3b-9a57-1c2d3e4f5a6b"
OL = "default/spark/1700000000"


def entity(type_name: str, qualified_name: str, **attributes: Any) -> Dict[str, Any]:
    return {
        "typeName": type_name,
        "guid": qualified_name,
        "status": "ACTIVE",
        "attributes": {
            "qualifiedName": qualified_name,
            "name": qualified_name.rsplit("/", 1)[-1],
            **attributes,
        },
    }


def connection(qualified_name: str, name: str, **attributes: Any) -> Dict[str, Any]:
    connector = qualified_name.split("/")[1]
    return entity("Connection", qualified_name, name=name, connectorName=connector, **attributes)


def table(connection_qn: str, database: str, schema: str, name: str) -> Dict[str, Any]:
    return entity(
        "Table",
        f"{connection_qn}/{database}/{schema}/{name}",
        connectorName=connection_qn.split("/")[1],
        connectionQualifiedName=connection_qn,
        databaseName=database,
        schemaName=schema,
    )


CONNECTIONS = [
    connection(OL, "ol-demo"),
    connection("default/snowflake/1", "sf", host="myorg-acct.snowflakecomputing.com", port=443),
    connection("default/postgres/2", "pg", host="db.internal", port=5432),
    connection("default/bigquery/3", "bq"),
    connection("default/s3/4", "lake"),
    connection("default/kafka/5", "events", host="broker.internal:9092"),
]
ASSETS = [
    table("default/snowflake/1", "SALES", "PUBLIC", "ORDERS"),
    table("default/postgres/2", "shop", "public", "customers"),
    table("default/bigquery/3", "my-project", "marts", "daily"),
    entity(
        "S3Object",
        "default/s3/4/arn:aws:s3:::lake/raw/payments.parquet",
        name="payments.parquet",
        connectorName="s3",
        connectionQualifiedName="default/s3/4",
        s3BucketName="lake",
        s3ObjectKey="raw/payments.parquet",
    ),
    entity(
        "KafkaTopic",
        "default/kafka/5/refunds",
        connectorName="kafka",
        connectionQualifiedName="default/kafka/5",
    ),
]
#: (source, the spec name Dataset.from_asset gives the crawled asset, or a name of our own)
SOURCES: List[Tuple[str, str]] = [
    ("Snowflake", "snowflake://myorg-acct/SALES.PUBLIC.ORDERS"),
    ("Postgres", "postgres://db.internal:5432/shop.public.customers"),
    ("BigQuery", "bigquery:my-project.marts.daily"),
    ("S3", "s3://lake/raw/payments.parquet"),
    ("Kafka", "kafka://broker.internal:9092/refunds"),
]
MISNAMED = "postgres://db.internal/shop.public.customers"  # no port
LOCAL_FILE = "file:///tmp/report.csv"


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stand-in with the catalog above, building assets 1 s after the events arrive."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"connections": CONNECTIONS, "assets": ASSETS}))
    server = subprocess.Popen(
        [
            sys.executable,
            str(STANDIN),
            str(tmp_path / "record.jsonl"),
            "--catalog",
            str(catalog),
            "--delay",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(STANDIN.parent.parent)},
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.isdigit(), "the stand-in did not start"
        monkeypatch.setenv("ATLAN_BASE_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("ATLAN_API_KEY", "standin-key-0123456789")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=60)


class TestFromAssetMatchesTheTable:
    """The names in the table are what Dataset.from_asset gives the catalog's assets."""

    def test_spec_names(self) -> None:
        """Each crawled asset, parsed by pyatlan, names itself as the table says."""
        from pyatlan.model.assets import Asset
        from pydantic.v1 import parse_obj_as

        hosts = {c["attributes"]["qualifiedName"]: parse_obj_as(Asset, c) for c in CONNECTIONS}
        for (_, uri), raw in zip(SOURCES, ASSETS):
            asset = parse_obj_as(Asset, raw)
            owner = hosts[raw["attributes"]["connectionQualifiedName"]]
            assert Dataset.from_asset(asset, owner).uri == uri


class TestVerifyAgainstStandin:
    """wrap a command with lineage, then verify says what landed, per source."""

    def test_wrap_then_verify(self, standin: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Crawled sources named by the spec link; a misnamed one and a local file are
        partial, each with its hint; exit 1. JSON gives the same findings."""
        inputs = [arg for _, uri in SOURCES[:3] for arg in ("--input", uri)]
        inputs += ["--input", MISNAMED]
        outputs = [arg for _, uri in SOURCES[3:] for arg in ("--output", uri)]
        outputs += ["--output", LOCAL_FILE]
        command = [sys.executable, "-c", "pass"]
        status = cli.main(
            [
                "wrap",
                "--connection",
                "ol-demo",
                "--job",
                "daily_orders",
                "--run-id",
                RUN_ID,
                *inputs,
                *outputs,
                "--",
                *command,
            ]
        )
        assert status == 0
        capsys.readouterr()
        assert cli.main(["verify", RUN_ID, "--wait", "2m", "--format", "json"]) == 1
        receipt = json.loads(capsys.readouterr().out)
        by_subject = {f["subject"]: f for f in receipt["findings"]}
        for _, uri in SOURCES:
            assert by_subject[uri]["status"] == "linked", by_subject[uri]
        assert by_subject["'daily_orders' (SparkJob)"]["status"] == "found"
        assert by_subject[MISNAMED]["status"] == "partial"
        assert "has no port" in by_subject[MISNAMED]["hint"]
        assert by_subject[LOCAL_FILE]["status"] == "partial"
        assert "Atlan crawls no local files" in by_subject[LOCAL_FILE]["hint"]
        assert cli.main(["verify", RUN_ID, "--wait", "0s"]) == 1
        out = capsys.readouterr().out
        assert f"input {SOURCES[0][1]}: linked [default/snowflake/1/SALES/PUBLIC/ORDERS]" in out
        assert "lineage landed in part" in out

    def test_python_api(self, standin: str) -> None:
        """From Python, a table named by from_asset links; verify(run_id) says so."""
        from atlan_ext import Job, lineage_run, verify
        from atlan_ext.send import client_from_env

        client = client_from_env()
        with lineage_run(
            Job("ol-demo", "bq_job"),
            client=client,
            inputs=[Dataset("bigquery", "my-project.marts.daily")],
        ) as run:
            pass
        receipt = verify(str(run.run_id), client=client, wait=120)
        assert receipt.exit_status == 0, [str(f) for f in receipt.findings]
        expected = "input bigquery:my-project.marts.daily: linked"
        assert (
            str(receipt.findings[-1]) == f"{expected} [default/bigquery/3/my-project/marts/daily]"
        )

    def test_doctor(self, standin: str, capsys: pytest.CaptureFixture[str]) -> None:
        """doctor finds the stand-in's connection through pyatlan's own lookup, and lists
        the connector's connections for a misspelt name."""
        assert cli.main(["doctor", "--connection", "ol-demo"]) == 0, capsys.readouterr().out
        assert "spark connection 'ol-demo' exists" in capsys.readouterr().out
        assert cli.main(["doctor", "--connection", "ol-dmeo"]) == 1
        assert "the spark connections you can see: 'ol-demo'" in capsys.readouterr().out

    def test_lint_with_tenant(
        self, standin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """lint says which crawled asset a name links to, and the right name of one that
        does not (an S3 key with a leading slash)."""
        from atlan_ext import RunId
        from atlan_ext.events import build_event

        event = build_event(
            "START",
            Job("ol-demo", "j"),
            RunId.new(),
            inputs=[SOURCES[0][1], "s3://lake//raw/payments.parquet"],
        )
        events = tmp_path / "events.json"
        events.write_text(json.dumps(event))
        assert cli.main(["lint", str(events)]) == 1
        out = capsys.readouterr().out
        assert "links to the crawled asset default/snowflake/1/SALES/PUBLIC/ORDERS" in out
        assert "crawled s3 assets named 'payments.parquet': s3://lake/raw/payments.parquet" in out

    def test_nothing_for_an_unknown_connection(
        self, standin: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Lineage for a connection the tenant does not have builds nothing: exit 2."""
        status = cli.main(
            [
                "wrap",
                "--connection",
                "ol-nope",
                "--job",
                "j",
                "--run-id",
                RUN_ID,
                "--",
                sys.executable,
                "-c",
                "pass",
            ]
        )
        assert status == 0
        capsys.readouterr()
        assert cli.main(["verify", RUN_ID, "--wait", "0s"]) == 2
        out = capsys.readouterr().out
        assert "connection 'ol-nope': not found" in out
        assert "atlan-lineage doctor --connection ol-nope" in out
