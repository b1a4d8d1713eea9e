"""End to end over real loopback HTTP: pyatlan's real AtlanClient, a small local server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from atlan_ext import Job, lineage_run
from atlan_ext.testing import assert_paired, fast_retry

JOB = Job("ol-spark", "loopback_job", job_type="APPLICATION")


class Tenant(ThreadingHTTPServer):
    """A stand-in Atlan that records lineage POSTs and answers from a script (then 202)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: List[Tuple[str, Dict[str, str], Any, int]] = []
        self.script: List[int] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Tenant

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        status = self.server.script.pop(0) if self.server.script else 202
        self.server.received.append((self.path, dict(self.headers), json.loads(body), status))
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    server = Tenant()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client(base_url: str) -> Any:
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(base_url=base_url, api_key="loopback-key", retry=fast_retry())


class TestLoopback:
    def test_run_reaches_the_wire_as_made(self, tenant: Tenant, validate_event: Any) -> None:
        """START and COMPLETE arrive at the lineage endpoint of the connector, as JSON equal
        to the events we made, with the token in the header only."""
        from atlan_ext.delivery import default_outbox

        with lineage_run(
            JOB,
            client=client(tenant.base_url),
            connector_type="generic-openlineage",
            inputs=["snowflake://acct/RAW.PUBLIC.ORDERS"],
        ):
            pass
        paths = {path for path, _, _, _ in tenant.received}
        assert paths == {"/events/openlineage/generic-openlineage/api/v1/lineage"}
        bodies = [body for _, _, body, _ in tenant.received]
        stored = [e.event for e in default_outbox().events()]
        assert bodies == stored
        assert_paired(bodies)
        for body in bodies:
            validate_event(body)
        assert tenant.received[0][1]["authorization"] == "Bearer loopback-key"
        assert all(e.delivered is not None for e in default_outbox().events())

    def test_503_forever_ends_in_the_outbox(self, tenant: Tenant) -> None:
        """pyatlan's silent loss on the wire: six 503s, and the event waits in the outbox."""
        from atlan_ext.delivery import default_outbox

        tenant.script = [503] * 6
        with lineage_run(JOB, client=client(tenant.base_url)):
            pass
        assert [status for *_, status in tenant.received] == [503] * 6
        assert [e.event_type for e in default_outbox().events(pending_only=True)] == [
            "START",
            "COMPLETE",
        ]
