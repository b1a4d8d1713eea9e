"""`verify` and `atlan-lineage verify`, against respx answers to pyatlan's real search."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest
import respx

from atlan_ext import InvalidOptionError, InvalidRunIdError, Job, cli, lineage_run, verify
from atlan_ext._catalog import Catalog
from atlan_ext.testing import fast_retry

URL = "https://tenant.atlan.test"
KEY = "verify-key-0123456789abcdef"
SEARCH = "/api/meta/search/indexsearch"
OL = "default/spark/1700000000"
SF = "default/snowflake/1600000000"
JOB = Job("ol-demo", "daily_orders")
INPUT = "snowflake://myorg-acct/SALES.PUBLIC.ORDERS"
OUTPUT = "s3://lake/marts/daily.parquet"


def entity(type_name: str, qualified_name: str, **attributes: Any) -> Dict[str, Any]:
    """An asset as Atlan's index search returns it."""
    name = attributes.pop("name", qualified_name.rsplit("/", 1)[-1])
    return {
        "typeName": type_name,
        "guid": f"guid-{qualified_name}",
        "status": "ACTIVE",
        "attributes": {"qualifiedName": qualified_name, "name": name, **attributes},
    }


def related(type_name: str, qualified_name: str, partial: bool = False) -> Dict[str, Any]:
    """A process's input or output as search returns it with relation attributes."""
    return {
        "typeName": type_name,
        "guid": f"guid-{qualified_name}",
        "uniqueAttributes": {"qualifiedName": qualified_name},
        "attributes": {"name": qualified_name.rsplit("/", 1)[-1], "isPartial": partial},
    }


CONNECTION = entity("Connection", OL, name="ol-demo", connectorName="spark")
SPARK_JOB = entity("SparkJob", f"{OL}/daily_orders", connectionQualifiedName=OL)
LINKED_IN = related("Table", f"{SF}/SALES/PUBLIC/ORDERS")
PARTIAL_OUT = related("Table", f"{OL}/marts/daily/parquet", partial=True)


def process(inputs: List[Any], outputs: List[Any]) -> Dict[str, Any]:
    return entity(
        "Process",
        f"{OL}/daily_orders/process",
        connectionQualifiedName=OL,
        inputs=inputs,
        outputs=outputs,
    )


class Atlan:
    """Answers to pyatlan's searches by the asset types asked for: a script per kind
    (``connection``, ``job``, ``process``, ``crawled``, ``hosts``) of pages (lists of
    entities), the last one repeated; every answer is one page, as pyatlan pages."""

    def __init__(self) -> None:
        self.pages: Dict[str, List[List[Dict[str, Any]]]] = {
            "connection": [[CONNECTION]],
            "job": [[SPARK_JOB]],
            "process": [[process([LINKED_IN], [related("S3Object", f"default/s3/1/{OUTPUT}")])]],
            "crawled": [[]],
            "hosts": [[]],
        }
        self.asked: List[str] = []
        self.before: List[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.before:
            return self.before.pop(0)
        body = json.loads(request.content)
        text = json.dumps(body["dsl"]["query"])
        if '"Process"' in text:
            kind = "process"
        elif '"SparkJob"' in text:
            kind = "job"
        elif '"Connection"' in text:
            kind = "hosts" if '"terms": {"qualifiedName"' in text else "connection"
        else:
            kind = "crawled"
        self.asked.append(kind)
        script = self.pages[kind]
        page = script.pop(0) if len(script) > 1 else script[0]
        return httpx.Response(200, json={"approximateCount": len(page), "entities": page})


@pytest.fixture
def atlan() -> Iterator[Atlan]:
    answers = Atlan()
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.post(SEARCH).mock(side_effect=answers)
        yield answers


def client() -> Any:
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(base_url=URL, api_key=KEY, retry=fast_retry())


def run_once(inputs: Optional[List[str]] = None, outputs: Optional[List[str]] = None) -> str:
    """A run kept in the test's outbox (not sent): its id."""
    with lineage_run(
        JOB,
        client="local",
        inputs=[INPUT] if inputs is None else inputs,
        outputs=[OUTPUT] if outputs is None else outputs,
    ) as run:
        pass
    return str(run.run_id)


class TestVerify:
    """verify() says, per job, process and dataset, what Atlan made of the run."""

    def test_everything_linked(self, atlan: Atlan) -> None:
        """Job, process and both datasets found and linked: exit status 0."""
        receipt = verify(run_once(), client=client(), wait=30)
        lines = [str(f) for f in receipt.findings]
        assert receipt.exit_status == 0, lines
        assert [f.status for f in receipt.findings] == [
            "pending",
            "found",
            "found",
            "found",
            "linked",
            "linked",
        ]
        assert f"{SF}/SALES/PUBLIC/ORDERS" in lines[4]
        assert "Atlan can build nothing of this run before" in receipt.findings[0].hint
        assert atlan.asked == ["connection", "job", "process"]

    def test_not_yet_then_found(self, atlan: Atlan) -> None:
        """The job and process appear on a later poll; verify waits for them, no longer."""
        atlan.pages["job"] = [[], [SPARK_JOB]]
        atlan.pages["process"] = [[], atlan.pages["process"][0]]
        receipt = verify(run_once(), client=client(), wait=120)
        assert receipt.exit_status == 0, [str(f) for f in receipt.findings]
        assert atlan.asked.count("job") == 2
        assert receipt.waited < 60

    def test_partial_output_with_hint(self, atlan: Atlan) -> None:
        """A dataset Atlan made partial is said so, with the crawled asset's spec name."""
        atlan.pages["process"] = [[process([LINKED_IN], [PARTIAL_OUT])]]
        s3 = entity(
            "S3Object",
            "default/s3/1500000000/arn:aws:s3:::lake/marts/daily.parquet",
            name="daily.parquet",
            connectorName="s3",
            s3BucketName="lake",
            s3ObjectKey="/marts/daily.parquet",
        )
        atlan.pages["crawled"] = [[s3]]
        receipt = verify(run_once(outputs=["s3://lake//marts/daily.parquet"]), client=client())
        assert receipt.exit_status == 1
        partial = receipt.findings[-1]
        assert (partial.kind, partial.status) == ("output", "partial")
        assert "no leading slash" in partial.hint
        assert "s3://lake/marts/daily.parquet" in partial.hint

    def test_partial_hint_names_crawled_asset(self, atlan: Atlan) -> None:
        """A name that follows the spec but matches nothing: the crawled one's name is given."""
        atlan.pages["process"] = [
            [process([related("Table", f"{OL}/SALES/PUBLIC/ORDERS", partial=True)], [])]
        ]
        table = entity(
            "Table",
            f"{SF}/SALES/PUBLIC/ORDERS",
            connectorName="snowflake",
            connectionQualifiedName=SF,
            databaseName="SALES",
            schemaName="PUBLIC",
        )
        host = entity("Connection", SF, host="otherorg-acct.snowflakecomputing.com", port=443)
        atlan.pages["crawled"] = [[table]]
        atlan.pages["hosts"] = [[host]]
        receipt = verify(run_once(outputs=[]), client=client())
        finding = receipt.findings[-1]
        assert finding.status == "partial"
        assert "namespace snowflake://myorg-acct matched no crawled connection" in finding.hint
        assert "snowflake://otherorg-acct/SALES.PUBLIC.ORDERS" in finding.hint

    def test_missing_dataset(self, atlan: Atlan) -> None:
        """A dataset of the events that is not on the process is missing: exit status 1."""
        atlan.pages["process"] = [[process([LINKED_IN], [])]]
        receipt = verify(run_once(), client=client(), wait=0)
        assert receipt.exit_status == 1
        assert (receipt.findings[-1].status, receipt.findings[-1].kind) == ("missing", "output")

    def test_nothing_by_the_deadline_may_be_permissions(self, atlan: Atlan) -> None:
        """A search filtered by the token's permissions finds nothing: exit 2, and it says
        that "not found" may mean "not visible"."""
        atlan.pages["job"] = [[]]
        atlan.pages["process"] = [[]]
        receipt = verify(run_once(), client=client(), wait=0)
        assert receipt.exit_status == 2
        job = next(f for f in receipt.findings if f.kind == "job")
        assert job.status == "not found"
        assert "personas and purposes" in job.hint

    def test_no_connection(self, atlan: Atlan) -> None:
        """No visible connection: exit 2, and the doctor command that checks it."""
        atlan.pages["connection"] = [[]]
        receipt = verify(run_once(), client=client(), wait=0)
        assert receipt.exit_status == 2
        assert "atlan-lineage doctor --connection ol-demo" in receipt.findings[-1].hint

    def test_429_is_honoured(self, atlan: Atlan) -> None:
        """A 429 with Retry-After: 1 is waited out, then the answer is used."""
        atlan.before = [httpx.Response(429, headers={"Retry-After": "1"}, json={})]
        receipt = verify(run_once(), client=client(), wait=30)
        assert receipt.exit_status == 0
        assert atlan.asked[0] == "connection"

    def test_search_failing_is_said(self) -> None:
        """A search Atlan keeps failing is said as such, not only as "not found"."""
        atlan = Atlan()

        def failing(request: httpx.Request) -> httpx.Response:
            if b'"SparkJob"' in request.content:
                return httpx.Response(500, json={"errorCode": "500", "errorMessage": "boom"})
            return atlan(request)

        with respx.mock(base_url=URL, assert_all_called=False) as router:
            router.post(SEARCH).mock(side_effect=failing)
            receipt = verify(run_once(), client=client(), wait=0)
        assert atlan.asked == ["connection"]
        assert receipt.exit_status == 2
        assert str(receipt.findings[-1]).startswith("search request: failed (")
        assert "HTTP 500" in receipt.findings[-1].status

    def test_refused_key(self, atlan: Atlan) -> None:
        """A token that may not search ends at once, with exit 2 and the reason."""
        atlan.before = [httpx.Response(401, json={"errorCode": "401", "errorMessage": "no"})] * 9
        receipt = verify(run_once(), client=client(), wait=30)
        assert receipt.exit_status == 2
        assert receipt.findings[-1].status.startswith("refused")

    @pytest.mark.parametrize(
        ("options", "said"),
        [
            ({"wait": -1}, "wait=-1"),
            ({"wait": float("nan")}, "wait=nan"),
            ({"per_minute": 0}, "per_minute=0"),
        ],
    )
    def test_bad_options(self, options: Dict[str, Any], said: str) -> None:
        """A wait or budget that cannot be is a typed error naming it."""
        with pytest.raises(InvalidOptionError, match=said):
            verify(run_once(), client=client(), **options)

    def test_unknown_run(self) -> None:
        """A run id this outbox never saw is a typed error naming the outbox."""
        with pytest.raises(InvalidRunIdError, match="verify reads the outbox"):
            verify("6f1c3c8e-2c49-4a7b-9a0e-3f3b1d2c4e5f", client=object())


class TestBudget:
    """The search budget: at most per_minute requests in any 60 s."""

    def test_waits_for_the_window(self) -> None:
        """The fourth request of a budget of three waits until the first is a minute old."""
        now = [0.0]
        slept: List[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        catalog = Catalog(object(), per_minute=3, clock=lambda: now[0], sleep=sleep)
        for step in (0.0, 1.0, 1.0, 1.0):
            now[0] += step
            catalog._wait_for_budget()
        assert slept == [57.0]


class TestVerifyCommand:
    """atlan-lineage verify prints one line per finding and exits 0, 1 or 2."""

    def test_text_and_json(
        self,
        atlan: Atlan,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Lines with their hints, or JSON; the key is never printed."""
        monkeypatch.setenv("ATLAN_BASE_URL", URL)
        monkeypatch.setenv("ATLAN_API_KEY", KEY)
        run_id = run_once()
        assert cli.main(["verify", run_id, "--wait", "5s"]) == 0
        out = capsys.readouterr().out
        assert "job 'daily_orders' (SparkJob): found" in out
        assert f"input {INPUT}: linked" in out
        assert cli.main(["verify", run_id, "--wait", "0s", "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["exitStatus"] == 0
        assert data["runId"] == run_id
        assert KEY not in out

    def test_unknown_run_id(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A run id not in the outbox is said on stderr, with exit 2, no traceback."""
        status = cli.main(["verify", "6f1c3c8e-2c49-4a7b-9a0e-3f3b1d2c4e5f"])
        assert status == 2
        assert "unknown run id" in capsys.readouterr().err
