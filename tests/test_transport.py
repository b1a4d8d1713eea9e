"""atlan_ext.transport.AtlanTransport under openlineage-python's own client: configured by
the environment or by openlineage.yml, against respx answers under pyatlan's real client, and
in a process that leaves with os._exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest

pytest.importorskip("openlineage.client")

from openlineage.client import OpenLineageClient
from openlineage.client import event_v2 as v2
from openlineage.client import run as v1
from openlineage.client.uuid import generate_new_uuid

from atlan_ext import InvalidOptionError, LineageDeliveryError
from atlan_ext.outbox import Outbox
from atlan_ext.testing import MockAtlan, assert_paired
from atlan_ext.transport import AtlanConfig, AtlanTransport

KEY = "transport-key-0123456789"
TYPE = "atlan_ext.transport.AtlanTransport"


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def events_v2(run_id: str) -> List[Any]:
    job = v2.Job(namespace="ol-dbt", name="model.orders")
    run = v2.Run(runId=run_id)
    inputs = [v2.InputDataset(namespace="duckdb://db", name="main.raw_orders")]
    return [
        v2.RunEvent(
            eventType=state, eventTime=now(), run=run, job=job, producer="https://x.io/p",
            inputs=inputs,
        )
        for state in (v2.RunState.START, v2.RunState.COMPLETE)
    ]  # fmt: skip


@pytest.fixture
def env_transport(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Dict[str, str]:
    """openlineage-python configured by the environment only (no yml anywhere it looks)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    values = {
        "OPENLINEAGE__TRANSPORT__TYPE": TYPE,
        "OPENLINEAGE__TRANSPORT__CONNECTOR": "generic-openlineage",
        "OPENLINEAGE__TRANSPORT__TIMEOUT": "60",  # pyatlan's first import, on a busy machine
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


class TestConfig:
    def test_key_spellings_fold_alike(self) -> None:
        for spelling in ("baseUrl", "base_url", "baseurl", "BASE_URL"):
            config = AtlanConfig.from_dict({"type": TYPE, spelling: "https://t.atlan.test"})
            assert config.base_url == "https://t.atlan.test"
        config = AtlanConfig.from_dict({"timeout": "2.5", "background": "true"})
        assert config.timeout == 2.5
        assert config.background is True

    @pytest.mark.parametrize(
        ("params", "shown", "kept"),
        [
            ({"endpoint": "/api/v1/lineage"}, "'endpoint'", {}),
            ({"bogus": "1"}, "OPENLINEAGE__TRANSPORT__BOGUS", {}),
            ({"timeout": "abc"}, "timeout must be a finite positive number", {"timeout": 10.0}),
            ({"timeout": "nan"}, "got 'nan'", {"timeout": 10.0}),
            ({"timeout": "-1"}, "got '-1'", {"timeout": 10.0}),
            ({"background": "maybe"}, "background must be true or false", {"background": False}),
            ({"strict": "sure"}, "strict must be true or false", {"strict": False}),
            ({"connector": "airflw"}, "'airflw'", {"connector": "spark"}),
        ],
        ids=repr,
    )
    def test_bad_settings_are_named_and_left_out(
        self, params: Dict[str, str], shown: str, kept: Dict[str, Any]
    ) -> None:
        """from_dict (what openlineage-python calls) never raises for a setting: it names
        it, with where it is set, and uses the default."""
        config = AtlanConfig.from_dict({"type": TYPE, **params})
        assert len(config.problems) == 1
        assert shown in config.problems[0]
        for name, value in kept.items():
            assert getattr(config, name) == value

    @pytest.mark.parametrize(
        "params", [{"timeout": "soon"}, {"timeout": float("nan")}, {"background": "maybe"}]
    )
    def test_bad_values_given_directly(self, params: Dict[str, Any]) -> None:
        """The constructor, called by hand, refuses a bad value with a typed error."""
        with pytest.raises(InvalidOptionError):
            AtlanConfig(**params)

    def test_the_key_never_shows(self) -> None:
        config = AtlanConfig.from_dict({"apiKey": KEY, "baseUrl": "https://t.atlan.test"})
        assert KEY not in repr(config)
        assert KEY not in repr(AtlanTransport(config))


class TestThroughOpenLineageClient:
    def test_configured_by_environment(
        self, env_transport: Dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with MockAtlan() as tenant:
            monkeypatch.setenv("ATLAN_BASE_URL", tenant.base_url)
            monkeypatch.setenv("ATLAN_API_KEY", KEY)
            client = OpenLineageClient()
            assert isinstance(client.transport, AtlanTransport)
            for event in events_v2(str(generate_new_uuid())):
                client.emit(event)
            assert client.transport.close(10)
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert {r.connector for r in tenant.received} == {"generic-openlineage"}
        assert_paired(tenant.accepted)

    def test_configured_by_openlineage_yml(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with MockAtlan() as tenant:
            config = tmp_path / "openlineage.yml"
            config.write_text(
                textwrap.dedent(
                    f"""\
                    transport:
                      type: {TYPE}
                      connector: airflow
                      baseUrl: {tenant.base_url}
                      apiKey: {KEY}
                      timeout: 60
                    """
                )
            )
            monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
            client = OpenLineageClient()
            run_id = str(generate_new_uuid())
            for state in (v1.RunState.START, v1.RunState.COMPLETE):  # the legacy classes
                client.emit(
                    v1.RunEvent(
                        eventType=state,
                        eventTime=now(),
                        run=v1.Run(runId=run_id),
                        job=v1.Job(namespace="ol-airflow", name="dag.task"),
                        producer="https://x.io/p",
                    )
                )
            assert client.transport.close(10)
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]
        assert {r.connector for r in tenant.received} == {"airflow"}

    def test_kept_when_atlan_is_down_and_dataset_events_skipped(
        self, env_transport: Dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with MockAtlan() as tenant:
            tenant.down()
            monkeypatch.setenv("ATLAN_BASE_URL", tenant.base_url)
            monkeypatch.setenv("ATLAN_API_KEY", KEY)
            client = OpenLineageClient()
            for event in events_v2(str(generate_new_uuid())):
                client.emit(event)  # never raises
            client.emit(
                v2.DatasetEvent(
                    eventTime=now(),
                    producer="https://x.io/p",
                    dataset=v2.StaticDataset(namespace="duckdb://db", name="main.orders"),
                )
            )
            assert client.transport.close(1) is False
            pending = [e.event_type for e in tenant.outbox.events(pending_only=True)]
        assert pending == ["START", "COMPLETE"]


class TestBadSettingsUnderOpenLineageClient:
    @pytest.mark.parametrize(
        ("name", "value", "shown"),
        [
            ("OPENLINEAGE__TRANSPORT__BOGUS", "1", "OPENLINEAGE__TRANSPORT__BOGUS"),
            ("OPENLINEAGE__TRANSPORT__TIMEOUT", "abc", "OPENLINEAGE__TRANSPORT__TIMEOUT"),
            ("OPENLINEAGE__TRANSPORT__API_KEY_FILE", "/nonexistent/key", "api_key_file"),
        ],
    )
    def test_one_error_line_and_events_go_on(
        self,
        name: str,
        value: str,
        shown: str,
        env_transport: Dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """OpenLineageClient() builds the transport; the bad setting is one error line naming
        it, and the run's events are still delivered (or, without a key, kept)."""
        with MockAtlan() as tenant:
            monkeypatch.setenv("ATLAN_BASE_URL", tenant.base_url)
            monkeypatch.setenv("ATLAN_API_KEY", KEY)
            monkeypatch.setenv(name, value)
            with caplog.at_level("ERROR", logger="atlan_ext"):
                client = OpenLineageClient()
            for event in events_v2(str(generate_new_uuid())):
                client.emit(event)
            client.transport.close(10)
            accepted = [e["eventType"] for e in tenant.accepted]
            kept = [e.event_type for e in tenant.outbox.events()]
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1
        assert shown in errors[0]
        assert "\n" not in errors[0]
        assert KEY not in errors[0]
        if "API_KEY_FILE" in name:  # no usable key: kept for later
            assert kept == ["START", "COMPLETE"]
        else:
            assert accepted == ["START", "COMPLETE"]

    @pytest.mark.parametrize("strict", [False, True])
    def test_an_unexpected_error_never_reaches_the_integration_untyped(
        self, strict: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An event whose reading fails with something not ours (here a mapping that raises
        RuntimeError, with the key in its text): emit raises nothing and says so once,
        without the key; with strict it raises LineageDeliveryError, also without it."""

        class Broken(Dict[str, Any]):
            def __getitem__(self, name: str) -> Any:
                raise RuntimeError(f"cannot read {name} with {KEY}")

            def items(self) -> Any:
                raise RuntimeError(f"cannot read with {KEY}")

        config = AtlanConfig.from_dict(
            {"api_key": KEY, "base_url": "http://127.0.0.1:9", "strict": strict}
        )
        transport = AtlanTransport(config)
        if strict:
            with pytest.raises(LineageDeliveryError) as caught:
                transport.emit(Broken(eventType="START"))
            assert KEY not in str(caught.value)
            assert "RuntimeError" in str(caught.value)
        else:
            transport.emit(Broken(eventType="START"))
            transport.emit(Broken(eventType="START"))
            said = [r.getMessage() for r in caplog.records if r.name == "atlan_ext"]
            assert len([m for m in said if "RuntimeError" in m]) == 1, said
            assert KEY not in " ".join(said)

    def test_strict_raises(self, env_transport: Dict[str, str], monkeypatch: Any) -> None:
        """With strict, the bad setting raises when the transport is built, naming it."""
        monkeypatch.setenv("OPENLINEAGE__TRANSPORT__STRICT", "true")
        monkeypatch.setenv("OPENLINEAGE__TRANSPORT__BOGUS", "1")
        with pytest.raises(InvalidOptionError, match="OPENLINEAGE__TRANSPORT__BOGUS"):
            OpenLineageClient()


OS_EXIT = """
import os
from datetime import datetime, timezone
from openlineage.client import OpenLineageClient
from openlineage.client import event_v2 as v2
client = OpenLineageClient()
when = datetime.now(timezone.utc).isoformat()
client.emit(v2.RunEvent(eventType=v2.RunState.START, eventTime=when,
    run=v2.Run(runId="01a21311-0000-7000-8000-000000000001"),
    job=v2.Job(namespace="ol-airflow", name="dag.task"), producer="https://x.io/p"))
os._exit(0)  # what Airflow's forked task runner does
"""


def test_emit_is_in_the_outbox_before_the_network(tmp_path: Path) -> None:
    """A task that leaves with os._exit right after emit, against a tenant that never
    answers: the event is in the outbox."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ATLAN_", "OPENLINEAGE"))}
        env.update(
            ATLAN_EXT_HOME=str(tmp_path),
            ATLAN_BASE_URL=f"http://127.0.0.1:{server.getsockname()[1]}",
            ATLAN_API_KEY=KEY,
            OPENLINEAGE__TRANSPORT__TYPE=TYPE,
            OPENLINEAGE__TRANSPORT__BACKGROUND="true",
        )
        done = subprocess.run(
            [sys.executable, "-c", OS_EXIT], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    stored = Outbox(tmp_path / "outbox.db").events()
    assert [e.event_type for e in stored] == ["START"]
