"""End to end over real loopback HTTP: pyatlan's real AtlanClient, a small local server."""

from __future__ import annotations

from typing import Any

from conftest import Tenant

from atlan_ext import Job, lineage_run
from atlan_ext.testing import assert_paired, fast_retry

JOB = Job("ol-spark", "loopback_job", job_type="APPLICATION")


def client(base_url: str) -> Any:
    from pyatlan.client.atlan import AtlanClient

    return AtlanClient(base_url=base_url, api_key="loopback-key", retry=fast_retry())


class TestLoopback:
    def test_run_reaches_the_wire_as_made(
        self, loopback_tenant: Tenant, validate_event: Any
    ) -> None:
        """START and COMPLETE arrive at the lineage endpoint of the connector, as JSON equal
        to the events we made, with the token in the header only."""
        from atlan_ext.delivery import default_outbox

        tenant = loopback_tenant
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

    def test_503_forever_ends_in_the_outbox(self, loopback_tenant: Tenant) -> None:
        """pyatlan's silent loss on the wire: six 503s, and the event waits in the outbox."""
        from atlan_ext.delivery import default_outbox

        tenant = loopback_tenant
        tenant.script = [503] * 6
        with lineage_run(JOB, client=client(tenant.base_url)):
            pass
        assert [status for *_, status in tenant.received] == [503] * 6
        assert [e.event_type for e in default_outbox().events(pending_only=True)] == [
            "START",
            "COMPLETE",
        ]
