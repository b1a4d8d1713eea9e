"""`atlan-lineage doctor`, against respx answers under pyatlan's real client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest
import respx

from atlan_ext import cli

URL = "https://tenant.atlan.test"
KEY = "doctor-key-0123456789abcdef"
USER = "/api/service/users/current"
SEARCH = "/api/meta/search/indexsearch"
LINEAGE = "/events/openlineage/{}/api/v1/lineage"
NOT_CONFIGURED = "Unauthorized: url path not configured to receive data, urlPath: " + LINEAGE
CONNECTION = {
    "typeName": "Connection",
    "guid": "g1",
    "status": "ACTIVE",
    "attributes": {"name": "ol-demo", "qualifiedName": "default/spark/1", "connectorName": "spark"},
}


@pytest.fixture
def tenant(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    monkeypatch.setenv("ATLAN_BASE_URL", URL)
    monkeypatch.setenv("ATLAN_API_KEY", KEY)
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.get(USER).mock(return_value=httpx.Response(200, json={"username": "lineage-bot"}))
        router.post(SEARCH).mock(
            return_value=httpx.Response(200, json={"approximateCount": 1, "entities": [CONNECTION]})
        )
        router.post(path__regex=r"^/events/openlineage/[^/]+/api/v1/lineage$", name="lineage").mock(
            return_value=httpx.Response(202)
        )
        yield router


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> Dict[str, Any]:
    status = cli.main(["doctor", *args])
    out = capsys.readouterr().out
    lines: List[str] = out.strip().splitlines()
    return {"status": status, "lines": lines, "out": out}


class TestDoctor:
    def test_all_good(self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]) -> None:
        report = doctor(capsys, "--connection", "ol-demo")
        assert report["status"] == 0, report["out"]
        assert all(line.startswith(("✓", "ok")) for line in report["lines"]), report["out"]
        assert "lineage-bot" in report["out"]
        assert "spark connection 'ol-demo' exists" in report["out"]
        assert KEY not in report["out"]

    def test_missing_connection_names_the_fix(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        tenant.post(SEARCH).mock(
            return_value=httpx.Response(200, json={"approximateCount": 0, "entities": []})
        )
        report = doctor(capsys, "--connection", "ol-missing", "--connector", "generic-openlineage")
        assert report["status"] == 1
        last = report["lines"][-1]
        assert "no generic-openlineage connection named 'ol-missing'" in last
        assert "create_connection(name='ol-missing'" in last
        assert "AtlanConnectorType.GENERIC_OPENLINEAGE" in last

    @pytest.mark.parametrize("status", [401, 403])
    def test_refused_key(
        self, status: int, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        tenant.get(USER).mock(return_value=httpx.Response(status, json={"message": "no"}))
        report = doctor(capsys, "--connection", "ol-demo")
        assert report["status"] == 1
        assert f"refused the API key (HTTP {status})" in report["out"]
        assert "not looked up" in report["out"]
        assert KEY not in report["out"]

    def test_unreachable(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        tenant.get(USER).mock(side_effect=httpx.ConnectError("refused"))
        report = doctor(capsys)
        assert report["status"] == 1
        assert "cannot reach https://tenant.atlan.test (ConnectError" in report["out"]

    def test_settings_named_one_by_one(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ATLAN_BASE_URL", "htp:/x")
        report = doctor(capsys)
        assert report["status"] == 1
        assert "ATLAN_BASE_URL 'htp:/x' is not an http(s) URL" in report["out"]
        assert "ATLAN_API_KEY is not set" in report["out"]
        assert "the tenant was not asked" in report["out"]

    def test_outbox_folder_not_private(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        folder = Path(os.environ["ATLAN_EXT_HOME"])
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        report = doctor(capsys)
        assert report["status"] == 1
        assert f"chmod 700 {folder}" in report["out"]

    def test_damaged_outbox(
        self,
        tenant: respx.MockRouter,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        folder = tmp_path / "damaged"
        folder.mkdir(mode=0o700)
        monkeypatch.setenv("ATLAN_EXT_HOME", str(folder))
        (folder / "outbox.db").write_bytes(b"garbage" * 100)
        report = doctor(capsys)
        assert report["status"] == 1, report["out"]
        assert "is not an atlan-ext outbox" in report["out"]

    def test_unreadable_key_file_is_named(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A key file that cannot be read is said as such, not as a key that is not set."""
        report = doctor(capsys, "--api-key-file", str(tmp_path / "missing"))
        assert report["status"] == 1
        assert "cannot read --api-key-file" in report["out"]
        assert "is not set" not in report["out"]


def _connections(request: httpx.Request) -> httpx.Response:
    """Atlan's search: none named 'ol-typo', two other spark connections in the listing."""
    body = request.content.decode()
    if "ol-typo" in body:
        return httpx.Response(200, json={"approximateCount": 0, "entities": []})
    found = [
        {**CONNECTION, "guid": guid, "attributes": {**CONNECTION["attributes"], "name": name}}
        for guid, name in (("g1", "ol-prod"), ("g2", "ol-staging"))
    ]
    return httpx.Response(200, json={"approximateCount": len(found), "entities": found})


class TestDoctorTellsCausesApart:
    """A wrong address, a wrong key and a tenant that is down each get their own fix."""

    @pytest.mark.parametrize(
        ("answer", "said", "fix"),
        [
            (
                httpx.Response(404, text="<html>Not Found</html>"),
                "has no Atlan API (HTTP 404",
                "your tenant's own address",
            ),
            (
                httpx.Response(401, json={"errorCode": "401", "errorMessage": "no"}),
                "refused the API key (HTTP 401)",
                "check ATLAN_API_KEY",
            ),
            (
                httpx.Response(503, headers={"Retry-After": "1"}),
                "unavailable (HTTP 503)",
                "try again later",
            ),
            (
                httpx.Response(502, text="bad gateway"),
                "answered HTTP 502: the tenant is down",
                "try again later",
            ),
        ],
    )
    def test_each_cause(
        self,
        answer: httpx.Response,
        said: str,
        fix: str,
        tenant: respx.MockRouter,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The current-user call's answer decides what is said and which fix is given."""
        tenant.get(USER).mock(return_value=answer)
        report = doctor(capsys)
        assert report["status"] == 1
        line = next(line for line in report["lines"] if said in line)
        assert fix in line, line
        assert "lineage endpoint" not in report["out"]

    def test_unknown_host(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A host that does not resolve is a wrong address, not a tenant that is down."""
        tenant.get(USER).mock(
            side_effect=httpx.ConnectError("[Errno -2] Name or service not known")
        )
        report = doctor(capsys)
        assert "tenant.atlan.test is not a known host" in report["out"]
        assert "your tenant's own address" in report["out"]


class TestDoctorLineageEndpoint:
    """The connector's lineage endpoint is checked with an empty batch, which creates nothing."""

    def test_configured_endpoint(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 202 to the empty batch: configured; the batch really was empty."""
        report = doctor(capsys, "--connector", "airflow")
        assert report["status"] == 0, report["out"]
        assert "the airflow lineage endpoint is configured" in report["out"]
        sent = [c.request for c in tenant.calls if "/events/openlineage/" in c.request.url.path]
        assert [r.url.path for r in sent] == [LINEAGE.format("airflow")]
        assert sent[0].content == b"[]"

    def test_invalid_batch_refused_means_configured(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Atlan refusing the empty batch as invalid (400) still proves the endpoint is there."""
        tenant.routes["lineage"].mock(return_value=httpx.Response(400, text="no events"))
        report = doctor(capsys)
        assert report["status"] == 0, report["out"]
        assert "spark lineage endpoint is configured (empty batch refused)" in report["out"]

    def test_not_configured(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Atlan's "url path not configured" answer is said with the way to set it up."""
        tenant.routes["lineage"].mock(
            return_value=httpx.Response(401, text=NOT_CONFIGURED.format("generic-openlineage"))
        )
        report = doctor(capsys, "--connector", "generic-openlineage")
        assert report["status"] == 1
        line = next(x for x in report["lines"] if "lineage endpoint" in x)
        assert "generic-openlineage lineage endpoint is not configured" in line
        assert "AtlanConnectorType.GENERIC_OPENLINEAGE" in line

    def test_key_may_not_send(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A key that reads but may not send lineage is told apart from a wrong key."""
        tenant.routes["lineage"].mock(
            return_value=httpx.Response(403, json={"errorCode": "403", "errorMessage": "denied"})
        )
        report = doctor(capsys)
        assert report["status"] == 1
        assert "lineage endpoint refused the API key (HTTP 403)" in report["out"]
        assert "accepts the API key" in report["out"]


class TestDoctorConnectionList:
    """A wrong connection name lists the connector's connections that do exist."""

    def test_lists_existing_connections(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The names the token can see are listed, sorted, beside the fix."""
        tenant.post(SEARCH).mock(side_effect=_connections)
        report = doctor(capsys, "--connection", "ol-typo")
        assert report["status"] == 1
        last = report["lines"][-1]
        assert "no spark connection named 'ol-typo'" in last
        assert "'ol-prod', 'ol-staging'" in last
        assert "create_connection(name='ol-typo'" in last

    def test_none_visible_mentions_permissions(
        self, tenant: respx.MockRouter, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With no connection visible at all, the answer says search follows permissions."""
        tenant.post(SEARCH).mock(
            return_value=httpx.Response(200, json={"approximateCount": 0, "entities": []})
        )
        report = doctor(capsys, "--connection", "ol-demo")
        assert "personas and purposes" in report["lines"][-1]
