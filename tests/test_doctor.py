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
