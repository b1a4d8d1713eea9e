"""show_lineage and %lineage show: an asset's lineage read back from Atlan through pyatlan's
real client (respx answers in the lineage-list and index-search shapes), drawn as a run is."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest
import respx

from atlan_ext import Dataset, show_lineage
from atlan_ext.exceptions import InvalidClientError, InvalidOptionError, LineageReadError
from atlan_ext.testing import fast_retry

BASE = "https://tenant.atlan.test"
ORDERS = "5f4f1b0e-1111-4c3a-9d5e-000000000001"  # upstream, partial
LOAD = "5f4f1b0e-2222-4c3a-9d5e-000000000002"  # the process that made the asset
DAILY = "5f4f1b0e-3333-4c3a-9d5e-000000000003"  # the asset asked about
REPORT = "5f4f1b0e-4444-4c3a-9d5e-000000000004"  # the process that reads it
SHEET = "5f4f1b0e-5555-4c3a-9d5e-000000000005"  # downstream, its name needs escaping
CUSTOMERS = "5f4f1b0e-6666-4c3a-9d5e-000000000006"  # upstream
QN = "default/snowflake/1700000000/ANALYTICS/PUBLIC/ORDERS_DAILY"


def entity(guid: str, type_name: str, name: str, depth: int, **extra: Any) -> Dict[str, Any]:
    qualified = f"default/snowflake/1700000000/ANALYTICS/PUBLIC/{name}"
    return {
        "typeName": type_name,
        "guid": guid,
        "status": "ACTIVE",
        "attributes": {
            "name": name,
            "qualifiedName": qualified,
            "isPartial": extra.pop("partial", False),
        },
        "depth": depth,
        **extra,
    }


def ref(guid: str, name: str) -> Dict[str, str]:
    return {"guid": guid, "name": name, "qualifiedName": f"qn/{name}"}


CENTRE = entity(DAILY, "Table", "ORDERS_DAILY", 0)
# Upstream comes in two pages (pyatlan pages on while hasMore is true); downstream in one.
UPSTREAM_PAGES = [
    [
        entity(
            LOAD,
            "Process",
            "daily_totals",
            1,
            immediateUpstream=[ref(ORDERS, "ORDERS"), ref(CUSTOMERS, "CUSTOMERS")],
            immediateDownstream=[ref(DAILY, "ORDERS_DAILY")],
        )
    ],
    [
        entity(
            ORDERS,
            "Table",
            "ORDERS",
            2,
            partial=True,
            immediateDownstream=[ref(LOAD, "daily_totals")],
        ),
        entity(CUSTOMERS, "Table", "CUSTOMERS", 2, immediateDownstream=[ref(LOAD, "daily_totals")]),
    ],
]
DOWNSTREAM = [
    entity(
        REPORT,
        "Process",
        "report",
        1,
        immediateUpstream=[ref(DAILY, "ORDERS_DAILY")],
        immediateDownstream=[ref(SHEET, "<sheet> & 'co'")],
    ),
    entity(SHEET, "Table", "<sheet> & 'co'", 2, immediateUpstream=[ref(REPORT, "report")]),
]


class Tenant:
    """Answers index search and lineage list as Atlan does, and keeps the request bodies."""

    def __init__(self, found: List[Dict[str, Any]]) -> None:
        self.found = found
        self.searches: List[Dict[str, Any]] = []
        self.lineage: List[Dict[str, Any]] = []

    def search(self, request: httpx.Request) -> httpx.Response:
        self.searches.append(json.loads(request.content))
        return httpx.Response(
            200, json={"approximateCount": len(self.found), "entities": self.found}
        )

    def lineage_list(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.lineage.append(body)
        if body["direction"] == "OUTPUT":
            return httpx.Response(200, json={"entities": DOWNSTREAM, "hasMore": False})
        page = body.get("from", 0) // body["size"]
        entities = UPSTREAM_PAGES[page] if page < len(UPSTREAM_PAGES) else []
        return httpx.Response(
            200, json={"entities": entities, "hasMore": page + 1 < len(UPSTREAM_PAGES)}
        )


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    answers = Tenant([CENTRE])
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/api/meta/search/indexsearch").mock(side_effect=answers.search)
        router.post("/api/meta/lineage/list").mock(side_effect=answers.lineage_list)
        yield answers


@pytest.fixture
def client() -> Any:
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(base_url=BASE, api_key="secret-key", retry=fast_retry())


class TestShowLineage:
    def test_reads_both_sides_and_pages_on(self, tenant: Tenant, client: Any) -> None:
        """Upstream and downstream are asked with immediate neighbours to the depth given;
        every page is read; the nodes sit at their signed depth, joined as Atlan says."""
        view = show_lineage(QN, client=client, depth=2)
        directions = [(body["direction"], body.get("from", 0)) for body in tenant.lineage]
        assert directions == [("INPUT", 0), ("INPUT", 50), ("OUTPUT", 0)]
        assert all(b["immediateNeighbours"] is True and b["depth"] == 2 for b in tenant.lineage)
        assert {n.name: n.depth for n in view.nodes} == {
            "ORDERS_DAILY": 0,
            "daily_totals": -1,
            "ORDERS": -2,
            "CUSTOMERS": -2,
            "report": 1,
            "<sheet> & 'co'": 2,
        }
        assert set(view.edges) == {
            (ORDERS, LOAD),
            (CUSTOMERS, LOAD),
            (LOAD, DAILY),
            (DAILY, REPORT),
            (REPORT, SHEET),
        }

    @pytest.mark.parametrize(
        ("asset", "field", "value"),
        [
            (QN, "qualifiedName", QN),
            (DAILY, "__guid", DAILY),
            ("snowflake://acct/ANALYTICS.PUBLIC.ORDERS_DAILY", "name.keyword", "ORDERS_DAILY"),
            (
                Dataset("snowflake://acct", "analytics.public.orders_daily"),
                "name.keyword",
                "orders_daily",
            ),
        ],
    )
    def test_finds_the_asset(
        self, tenant: Tenant, client: Any, asset: object, field: str, value: str
    ) -> None:
        """A qualifiedName, a GUID, a dataset URI or a Dataset (by its last name part, any
        case, then matched against the qualifiedName's end) each find the asset."""
        view = show_lineage(asset, client=client, direction="downstream", depth=1)
        assert view.asset.guid == DAILY
        query = json.dumps(tenant.searches[0]["dsl"]["query"])
        assert f'"{field}"' in query
        assert f'"{value}"' in query
        assert [b["direction"] for b in tenant.lineage] == ["OUTPUT"]

    def test_a_dataset_must_match_the_qualified_name(self, tenant: Tenant, client: Any) -> None:
        """A search hit whose qualifiedName does not end with the dataset's name is not it."""
        with pytest.raises(LineageReadError, match="give its qualifiedName or GUID"):
            show_lineage("snowflake://acct/OTHER_DB.PUBLIC.ORDERS_DAILY", client=client)

    def test_picture_dashes_partial_assets_links_and_escapes(
        self, tenant: Tenant, client: Any
    ) -> None:
        """The picture names every asset, dashes the partial one, links each box to the
        asset in Atlan, escapes names, and has no script."""
        page = show_lineage(QN, client=client)._repr_html_()
        assert "<svg" in page
        assert "<script" not in page
        assert "&lt;sheet&gt; &amp; &#x27;co&#x27;" in page
        assert "<sheet>" not in page
        for guid in (ORDERS, CUSTOMERS, LOAD, DAILY, REPORT, SHEET):
            assert f'href="{BASE}/assets/{guid}/overview"' in page
        orders_box = re.search(rf"{ORDERS}/overview.*?</a>", page, re.S)
        assert orders_box is not None
        assert "stroke-dasharray" in orders_box.group(0)
        daily_box = re.search(rf"{DAILY}/overview.*?</a>", page, re.S)
        assert daily_box is not None
        assert "stroke-dasharray" not in daily_box.group(0)

    def test_text_and_markdown(self, tenant: Tenant, client: Any) -> None:
        """Terminals and nbconvert get the same lineage as lists by distance."""
        view = show_lineage(QN, client=client)
        text = repr(view)
        assert "upstream 2: CUSTOMERS (Table), ORDERS (Table, partial)" in text
        assert "downstream 1: report (Process)" in text
        assert f"({BASE}/assets/{SHEET}/overview)" in view._repr_markdown_()

    def test_no_such_asset(self, client: Any) -> None:
        """An asset Atlan does not know is a LineageReadError naming it and the fix."""
        empty = Tenant([])
        with respx.mock(base_url=BASE) as router:
            router.post("/api/meta/search/indexsearch").mock(side_effect=empty.search)
            with pytest.raises(LineageReadError, match=r"no asset 'default/x' in Atlan: check"):
                show_lineage("default/x", client=client)

    def test_atlan_error(self, client: Any) -> None:
        """An error answer from Atlan is a LineageReadError, without the API token."""
        with respx.mock(base_url=BASE) as router:
            router.post("/api/meta/search/indexsearch").mock(
                return_value=httpx.Response(400, json={"errorMessage": "bad query"})
            )
            with pytest.raises(LineageReadError, match=r"could not give the lineage of") as info:
                show_lineage(QN, client=client)
        assert "secret-key" not in str(info.value)

    def test_no_answer(self, client: Any) -> None:
        """A tenant that cannot be reached is a LineageReadError saying so."""
        with respx.mock(base_url=BASE) as router:
            router.post("/api/meta/search/indexsearch").mock(
                side_effect=httpx.ConnectError("connection refused")
            )
            with pytest.raises(LineageReadError, match="could not give the lineage of") as info:
                show_lineage(QN, client=client)
        assert "secret-key" not in str(info.value)

    def test_an_async_client_is_refused(self) -> None:
        """show_lineage reads with a sync AtlanClient; an AsyncAtlanClient is refused."""
        from pyatlan.client.aio import AsyncAtlanClient

        with pytest.raises(InvalidClientError, match="sync pyatlan AtlanClient"):
            show_lineage(QN, client=AsyncAtlanClient(base_url=BASE, api_key="k"))

    def test_no_tenant(self, monkeypatch: Any) -> None:
        """With no client and nothing configured, the error says what to set."""
        monkeypatch.delenv("ATLAN_BASE_URL", raising=False)
        monkeypatch.delenv("ATLAN_API_KEY", raising=False)
        with pytest.raises(LineageReadError, match="ATLAN_BASE_URL and ATLAN_API_KEY"):
            show_lineage(QN)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"depth": 0}, "depth must be a whole number from 1 to 100, got 0"),
            ({"depth": True}, "depth must be a whole number"),
            ({"direction": "BOTH"}, "direction must be one of both, upstream, downstream"),
        ],
    )
    def test_bad_options(self, options: Dict[str, Any], message: str) -> None:
        """Bad options fail before anything is asked, naming the value."""
        with pytest.raises(InvalidOptionError, match=message):
            show_lineage(QN, **options)


class TestShowMagic:
    def test_lineage_show_draws_from_the_notebooks_client(
        self, tenant: Tenant, client: Any, monkeypatch: Any
    ) -> None:
        """%lineage show ASSET --client VAR returns the drawn lineage (ASSET may be a Dataset
        variable); what cannot work is a usage error that says what to do."""
        pytest.importorskip("IPython")
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        shell = InteractiveShell.instance(config=config)
        try:
            shell.run_cell("%load_ext atlan_ext", store_history=False)
            shell.user_ns["client"] = client
            result = shell.run_cell(f"%lineage show {QN} --client client --depth 2")
            assert result.success, result.error_in_exec
            assert "<svg" in result.result._repr_html_()
            assert "ORDERS_DAILY" in repr(result.result)
            shell.user_ns["daily"] = Dataset("snowflake://acct", "ANALYTICS.PUBLIC.ORDERS_DAILY")
            by_variable = shell.run_cell("%lineage show daily --client client --depth 1")
            assert by_variable.success, by_variable.error_in_exec
            assert by_variable.result.asset.guid == DAILY
            assert not shell.run_cell("%lineage show").success
            shell.user_ns.pop("client")
            monkeypatch.delenv("ATLAN_BASE_URL", raising=False)
            monkeypatch.delenv("ATLAN_API_KEY", raising=False)
            unconfigured = shell.run_cell(f"%lineage show {QN}")
            assert type(unconfigured.error_in_exec).__name__ == "UsageError"
            assert "ATLAN_BASE_URL" in str(unconfigured.error_in_exec)
        finally:
            InteractiveShell.clear_instance()


class TestShowRendered:
    def test_as_a_notebook_renders_it(self, tenant: Tenant, client: Any, tmp_path: Path) -> None:
        """Rendered by headless Chromium, %lineage show's picture has the asset's box (blue),
        the processes' boxes (light blue) and the outlines of the assets around them."""
        import pictures

        if pictures.chromium() is None:
            pytest.skip("headless Chromium (Debian package chromium) is not installed")
        view = show_lineage(QN, client=client)
        shot = pictures.screenshot(
            pictures.page(
                "<pre>%lineage show default/snowflake/1700000000/ANALYTICS/PUBLIC/ORDERS_DAILY"
                f"</pre>{view._repr_html_()}"
            ),
            tmp_path / "lineage-show.png",
            size=(1200, 200),
        )
        width, height, rows = pictures.read_png(shot)
        assert (width, height) == (1200, 200)
        box = 240 * 42 * 0.4  # a box shrunk to fit the window, less its text
        assert pictures.count(rows, "#0969da") > box  # the asset's box
        assert pictures.count(rows, "#ddf4ff") > 2 * box  # two processes
        assert pictures.count(rows, "#8c959f", tolerance=20) > 500
