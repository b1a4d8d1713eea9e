"""Step commands return at once; a courier process delivers what they stored (real
processes, a real loopback tenant)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any, Dict, List

from conftest import Tenant
from test_cli import cli

from atlan_ext.outbox import Outbox


def couriers(home: Path) -> List[int]:
    """Process ids of the couriers working on ``home``'s outbox."""
    wanted = f"ATLAN_EXT_COURIER_OUTBOX={home / 'outbox.db'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def arrived(tenant: Tenant) -> List[Dict[str, Any]]:
    return [
        e for *_, body, _ in tenant.received for e in (body if isinstance(body, list) else [body])
    ]


def wait_until(check: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TestCourier:
    def test_steps_return_and_a_courier_delivers_in_order(
        self, tmp_path: Path, loopback_tenant: Tenant
    ) -> None:
        """start, running, complete: each stores and returns; one courier delivers all three,
        START first, then leaves once the outbox stayed empty."""
        url = loopback_tenant.base_url
        started = cli("start", "--connection", "c", "--job", "j", home=tmp_path, base_url=url)
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        for step in ("running", "complete"):
            done = cli(step, "--run-id", run_id, home=tmp_path, base_url=url)
            assert done.returncode == 0, done.stderr
        assert wait_until(lambda: len(arrived(loopback_tenant)) == 3)
        assert [e["eventType"] for e in arrived(loopback_tenant)] == [
            "START",
            "RUNNING",
            "COMPLETE",
        ]
        # Atlan had them before the courier's answer came back and it marked them delivered.
        assert wait_until(lambda: Outbox(tmp_path / "outbox.db").counts() == (0, 3))
        assert wait_until(lambda: not couriers(tmp_path), 20)  # it does not linger on

    def test_the_courier_holds_no_terminal(self, tmp_path: Path, loopback_tenant: Tenant) -> None:
        url = loopback_tenant.base_url
        cli("start", "--connection", "c", "--job", "j", home=tmp_path, base_url=url)
        found = couriers(tmp_path)
        assert found
        for pid in found:
            assert os.getsid(pid) == pid  # a session of its own: no terminal, no job control
            assert os.getsid(pid) != os.getsid(0)

    def test_killed_courier_loses_nothing(self, tmp_path: Path) -> None:
        """A courier killed while the tenant does not answer: the events stay in the outbox
        and `flush` delivers them once a tenant answers."""
        from conftest import serve

        port = free_port()
        down = f"http://127.0.0.1:{port}"
        for _ in range(3):
            cli("start", "--connection", "c", "--job", "k", home=tmp_path, base_url=down)
        assert wait_until(lambda: bool(couriers(tmp_path)), 10)
        for pid in couriers(tmp_path):
            os.kill(pid, signal.SIGKILL)
        assert Outbox(tmp_path / "outbox.db").counts() == (3, 0)
        tenant = serve(port)
        try:
            flushed = cli("flush", "--timeout", "60s", home=tmp_path, base_url=down)
            assert flushed.returncode == 0, flushed.stderr
            assert [e["eventType"] for e in arrived(tenant)] == ["START"] * 3
        finally:
            tenant.shutdown()
            tenant.server_close()
        for pid in couriers(tmp_path):
            os.kill(pid, signal.SIGKILL)

    def test_no_tenant_no_courier(self, tmp_path: Path) -> None:
        done = cli("start", "--connection", "c", "--job", "j", home=tmp_path)
        assert done.returncode == 0
        assert "no Atlan tenant configured" in done.stderr
        assert not couriers(tmp_path)

    def test_flush_reports_what_is_left(self, tmp_path: Path) -> None:
        down = f"http://127.0.0.1:{free_port()}"
        cli("start", "--connection", "c", "--job", "j", home=tmp_path, base_url=down)
        done = cli("flush", "--timeout", "4s", home=tmp_path, base_url=down)
        assert done.returncode == 1
        assert "1 event(s) still pending" in done.stderr
        assert "Traceback" not in done.stderr
        for pid in couriers(tmp_path):
            os.kill(pid, signal.SIGKILL)
