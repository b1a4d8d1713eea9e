"""Shared fixtures: every test gets an outbox of its own and no tenant from the environment;
``validate_event`` checks events against the official OpenLineage schema."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

from atlan_ext import check_event, testing
from atlan_ext.validate import SchemaValidator

SPEC_VARIABLE = "OPENLINEAGE_SPEC_DIR"
FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "pyatlan-fixtures"


# Tests that must share one worker, by the start of their node id: PostgreSQL's (one server,
# which one of them restarts) and the real kernel's (its module fixture runs the notebook once).
ONE_WORKER = ("tests/test_postgres.py::", "tests/test_notebook.py::TestRealKernel::")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown when it is off
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: each test goes to whichever worker is free, except that the tests
    of each :data:`ONE_WORKER` prefix go to one worker together. (pytest-xdist 3.8 groups by
    ``xdist_group`` marks through a node id suffix that pytest 9.2 no longer lets it set: the
    marks would be ignored.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerGroups(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            for prefix in ONE_WORKER:
                if nodeid.startswith(prefix):
                    return prefix
            return nodeid

    return OneWorkerGroups(config, log)


# Tests that each take several seconds or more (fresh processes importing pyatlan, couriers,
# kernels), by the start of their node id, longest first (measured with --durations on an idle
# 2-core machine). With tests sent to whichever worker is free, one of these started last
# keeps the run going alone long after the other worker has finished: sent first, they
# overlap the short tests instead. Only the order changes; a test missing here runs anyway.
LONG_FIRST = (
    "tests/test_cli.py::TestTenantDownThenReplay::",
    "tests/test_faults.py::TestFork::",
    "tests/test_store_first.py::TestStrict::",
    "tests/test_store_first.py::TestReplayKeepsTrying::",
    "tests/test_run_model.py::TestAcrossHosts::",
    "tests/test_store_first.py::TestSigterm",
    "tests/test_store_first.py::TestRefused::",
    "tests/test_courier.py::TestCourier::",
    "tests/test_cli.py::TestReplay::",
    "tests/test_store_first.py::",
    "tests/test_run_model.py::TestOrderAcrossProcesses::",
    "tests/test_notebook.py::",
    "tests/test_faults.py::",
    "tests/test_readme.py::",
    "tests/test_cli.py::",
    "tests/test_run_model.py::",
)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Known long tests first, in :data:`LONG_FIRST`'s order; the rest keep theirs. (xdist's
    scheduler hands out the :data:`ONE_WORKER` groups first: they hold the most tests.)"""

    def rank(item: pytest.Item) -> int:
        for index, prefix in enumerate(LONG_FIRST):
            if item.nodeid.startswith(prefix):
                return index
        return len(LONG_FIRST)

    items.sort(key=rank)  # stable: within a rank, the collection's order


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's tenant or outbox; and every event a test leaves in its
    outbox must validate against the official schema (when the schema folder is known)."""
    for name in ("ATLAN_BASE_URL", "ATLAN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with testing.isolated_outbox(tmp_path / "home") as outbox:
        yield
        folder = os.environ.get(SPEC_VARIABLE)
        if folder:
            validator = _validator(Path(folder))
            for stored in outbox.iter_events():
                shape = _shape(stored.event)
                if shape not in _validated:  # one event per shape: a test may leave 60,000
                    validator(stored.event)
                    _validated.add(shape)


_validators: Dict[Path, SchemaValidator] = {}
_validated: Set[Any] = set()


def _shape(value: Any) -> Any:
    """What the schema judges of an event: its keys, nested, the types of its leaves, and
    the form of its short strings (hex digits folded: ids and times of one form are one
    shape; event types, states and formats stay apart). Long strings count by type."""
    if isinstance(value, dict):
        return tuple(sorted((key, _shape(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_shape(item) for item in value)
    if isinstance(value, str) and len(value) <= 64:
        return _HEX.sub("x", value)
    return type(value).__name__


_HEX = re.compile(r"[0-9a-f]")


def _validator(folder: Path) -> SchemaValidator:
    if folder not in _validators:
        _validators[folder] = SchemaValidator(folder)
    return _validators[folder]


@pytest.fixture(scope="session")
def schema() -> SchemaValidator:
    """The official OpenLineage schema, from $OPENLINEAGE_SPEC_DIR; skips when unset."""
    folder = os.environ.get(SPEC_VARIABLE)
    if not folder:
        pytest.skip(
            f"conformance not checked: set {SPEC_VARIABLE} to the folder holding "
            "OpenLineage.json and facets/ (e.g. ../shared/openlineage-spec)"
        )
    return _validator(Path(folder))


@pytest.fixture
def validate_event() -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    """Checks an event against the official schema when $OPENLINEAGE_SPEC_DIR is set, and our
    own rules always; tests about behaviour use this and are not skipped without the schema
    (the conformance tests, which use `schema`, are)."""
    folder = os.environ.get(SPEC_VARIABLE)
    validator = _validator(Path(folder)) if folder else None

    def check(event: Dict[str, Any]) -> Dict[str, Any]:
        check_event(event)
        return validator(event) if validator is not None else event

    return check


@pytest.fixture(scope="session")
def pyatlan_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"pyatlan's fixtures are not at {FIXTURES}")
    return FIXTURES


class Tenant(ThreadingHTTPServer):
    """A stand-in Atlan that records lineage POSTs and answers from a script (then 202)."""

    daemon_threads = True

    allow_reuse_address = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.received: List[Tuple[str, Dict[str, str], Any, int]] = []
        self.script: List[int] = []
        self.delay = 0.0
        self.holds: List[threading.Event] = []  # a POST each, in order: it waits until set
        self.retry_after: Optional[str] = None  # sent with every answer that is not a 2xx
        self.arriving = 0  # POSTs begun (answered or not): a test can wait for one in flight

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Tenant

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.arriving += 1
        if self.server.holds:
            self.server.holds.pop(0).wait(120)
        if self.server.delay:
            time.sleep(self.server.delay)
        status = self.server.script.pop(0) if self.server.script else 202
        self.server.received.append((self.path, dict(self.headers), json.loads(body), status))
        self.send_response(status)
        if self.server.retry_after is not None and not 200 <= status < 300:
            self.send_header("Retry-After", self.server.retry_after)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve(port: int = 0) -> Tenant:
    """Start a loopback tenant (on ``port``, or a free one) in a thread."""
    server = Tenant(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def loopback_tenant() -> Iterator[Tenant]:
    """A stand-in Atlan on 127.0.0.1 (real HTTP), answering 202 unless scripted."""
    server = Tenant()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _kill_couriers(folder: Path) -> None:
    """SIGKILL the couriers delivering an outbox under ``folder`` (found by the outbox their
    environment names: ``ATLAN_EXT_COURIER_OUTBOX``)."""
    prefix = b"ATLAN_EXT_COURIER_OUTBOX=" + str(folder).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(prefix) for v in environ):
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(autouse=True)
def _no_courier_outlives_its_test(tmp_path: Path) -> Iterator[None]:
    """Couriers a test started (step commands, scripts and ``wrap`` leave their pending events
    to one; some against loopback tenants that are gone) are stopped when the test ends, so
    they do not compete for the CPU with the tests that follow. (Each writes ``courier.log``
    beside its outbox: no log, no courier to look for.)"""
    yield
    if any(tmp_path.rglob("*courier.log")):
        _kill_couriers(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def _no_courier_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Couriers started outside a test's own folder are stopped when the session ends."""
    yield
    _kill_couriers(tmp_path_factory.getbasetemp())
