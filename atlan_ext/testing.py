"""Test lineage without a tenant: for atlan-ext's own tests and for yours.

- :func:`capture_lineage` captures every event atlan-ext makes, in memory, instead of sending
  or storing it (the shape of ``structlog.testing.capture_logs``).
- :class:`MockAtlan` is a stand-in tenant at the httpx layer (respx), under pyatlan's real
  ``AtlanClient``: it answers 202 by default, can be scripted (``503, 503, 202``; 429 with
  ``Retry-After``; "url path not configured"; connection errors) and records what arrived.
- :func:`isolated_outbox` points the outbox at a folder of its own.
- :func:`runs_of`, :func:`assert_paired`, :func:`datasets_of`: the assertions users want.

The pytest plugin exposes these as the fixtures ``atlan_lineage_capture``,
``atlan_mock_tenant`` and ``atlan_lineage_outbox``. respx is imported only by
:class:`MockAtlan` (``pip install 'atlan-ext[testing]'``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from atlan_ext import _state
from atlan_ext import delivery as _delivery
from atlan_ext.events import dataset_uri
from atlan_ext.exceptions import MissingDependencyError
from atlan_ext.outbox import Outbox
from atlan_ext.states import run_cycle_problems

__all__ = [
    "MockAtlan",
    "Received",
    "assert_paired",
    "capture_lineage",
    "datasets_of",
    "fast_retry",
    "isolated_outbox",
    "runs_of",
]

Event = Dict[str, Any]


@contextlib.contextmanager
def capture_lineage() -> Iterator[List[Event]]:
    """Capture every event made inside the block (any thread) in a list, instead of sending
    or storing it::

        with capture_lineage() as events:
            nightly_load()
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    """
    events: List[Event] = []
    _delivery.push_capture(events)
    try:
        yield events
    finally:
        _delivery.pop_capture(events)


@contextlib.contextmanager
def isolated_outbox(folder: Union[str, os.PathLike[str]]) -> Iterator[Outbox]:
    """Point ``ATLAN_EXT_HOME`` at ``folder`` for the block and yield its outbox. What the
    block leaves undelivered stays there: no courier process is started for it."""
    before = os.environ.get("ATLAN_EXT_HOME")
    _delivery.shutdown(exiting=False)
    _state.reset()
    os.environ["ATLAN_EXT_HOME"] = str(folder)
    # No courier process takes over what the block leaves: it would send test events past
    # any mock, to whatever tenant a client names.
    couriers, _state.STATE.couriers = _state.STATE.couriers, False
    try:
        yield _delivery.default_outbox()
    finally:
        _delivery.shutdown(exiting=False)  # the block's senders stop: none of them outlives it
        _state.reset()
        _state.STATE.couriers = couriers
        if before is None:
            os.environ.pop("ATLAN_EXT_HOME", None)
        else:
            os.environ["ATLAN_EXT_HOME"] = before


def runs_of(events: Sequence[Event]) -> OrderedDict[str, List[Event]]:
    """The events grouped by run id, runs and events in the order they came."""
    grouped: OrderedDict[str, List[Event]] = OrderedDict()
    for event in events:
        grouped.setdefault(event["run"]["runId"], []).append(event)
    return grouped


def assert_paired(events: Sequence[Event]) -> None:
    """Assert that every run has START first and exactly one terminal event, with nothing
    after it (the same run-cycle rule as ``atlan-lineage validate``), in the order given."""
    problems = run_cycle_problems(events)
    if problems:
        raise AssertionError("; ".join(message for _, message in problems))


def datasets_of(events: Sequence[Event], run_id: str) -> Tuple[List[str], List[str]]:
    """``(inputs, outputs)`` of one run as dataset URIs (``namespace/name``; ``file:///path``
    and ``bigquery:project.dataset.table`` as :attr:`atlan_ext.Dataset.uri` writes them),
    merged across its events the way Atlan merges them (by run id), in first-seen order."""
    inputs: Dict[str, None] = {}
    outputs: Dict[str, None] = {}
    for event in events:
        if event["run"]["runId"] != run_id:
            continue
        for dataset in event.get("inputs", []):
            inputs[dataset_uri(dataset["namespace"], dataset["name"])] = None
        for dataset in event.get("outputs", []):
            outputs[dataset_uri(dataset["namespace"], dataset["name"])] = None
    return list(inputs), list(outputs)


@dataclass(frozen=True)
class Received:
    """One request that reached the mock tenant, and how it was answered."""

    connector: str
    events: List[Event]
    status: Optional[int]  # None when answered with a connection error
    headers: Mapping[str, str]


def fast_retry() -> Any:
    """pyatlan's own retry policy (5 retries of 403, 429, 5xx, POST included, honouring
    ``Retry-After``) without its exponential back-off sleeps: for ``AtlanClient(retry=...)``
    in tests, so scripted retries take milliseconds instead of half a minute."""
    from httpx_retries import Retry

    return Retry(
        total=5,
        backoff_factor=0,
        status_forcelist=[302, 403, 429, 500, 502, 503, 504],
        allowed_methods=["HEAD", "GET", "OPTIONS", "POST", "PUT", "DELETE"],
        respect_retry_after_header=True,
    )


Answer = Union[
    int, Tuple[int, Mapping[str, str]], Tuple[int, Mapping[str, str], str], BaseException, type
]

_LINEAGE = re.compile(r"/events/openlineage/(?P<connector>[^/]+)/api/v1/lineage$")


class MockAtlan:
    """A mocked Atlan tenant for pyatlan's real clients, at the httpx layer (respx).

    ::

        with MockAtlan() as tenant:
            tenant.script(503, 503, 202)
            with lineage_run(job, client=tenant.client()):
                ...
        assert [e["eventType"] for e in tenant.accepted] == ["START", "COMPLETE"]

    Answers are taken from the script in order; when it is used up, every request gets the
    default (202, or what :meth:`not_configured` / :meth:`down` set). An answer is a status
    code, ``(status, headers)``, ``(status, headers, body)``, or an exception (class or
    instance, e.g. ``httpx.ConnectError``) raised as the connection's failure.
    """

    def __init__(
        self,
        base_url: str = "https://tenant.atlan.test",
        api_key: str = "mock-api-key",
        *,
        home: Union[str, os.PathLike[str], None] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        #: The folder of the outbox used inside the block: ``home``, or a temporary folder of
        #: the tenant's own, so that test events never reach the real outbox (and from there,
        #: through a replay, a real tenant).
        self.home = home
        self.outbox: Optional[Outbox] = None
        self._own_home: Optional[tempfile.TemporaryDirectory[str]] = None
        self._isolation: Any = None
        self.received: List[Received] = []
        #: Seconds every answer takes, like a real tenant tens of milliseconds away.
        self.latency = 0.0
        self._script: List[Answer] = []
        self._default: Answer = 202
        self._router: Any = None
        self._couriers = True

    def __repr__(self) -> str:
        return f"MockAtlan({self.base_url!r}, received={len(self.received)})"

    # -- scripting ----------------------------------------------------------------------------

    def script(self, *answers: Answer) -> MockAtlan:
        """Queue answers for the next requests, in order."""
        self._script.extend(answers)
        return self

    def not_configured(self) -> MockAtlan:
        """From now on answer as a tenant without an OpenLineage connection for the connector:
        Atlan's plain-text 401 "url path not configured"."""
        self._default = (401, {"content-type": "text/plain"}, "{not_configured}")
        return self

    def down(self) -> MockAtlan:
        """From now on refuse every connection (``httpx.ConnectError``)."""
        import httpx

        self._default = httpx.ConnectError
        return self

    def up(self) -> MockAtlan:
        """From now on accept every event (202); clears the script."""
        self._script.clear()
        self._default = 202
        return self

    # -- what arrived -------------------------------------------------------------------------

    @property
    def events(self) -> List[Event]:
        """Every event that reached the tenant, whatever the answer (retries repeat events)."""
        return [event for request in self.received for event in request.events]

    @property
    def accepted(self) -> List[Event]:
        """The events the tenant answered 202 to: what Atlan would have."""
        return [
            event for request in self.received if request.status == 202 for event in request.events
        ]

    # -- clients ------------------------------------------------------------------------------

    def client(self) -> Any:
        """pyatlan's real ``AtlanClient`` for this tenant, with pyatlan's retry policy minus its
        back-off sleeps."""
        from pyatlan.client.atlan import AtlanClient

        return AtlanClient(  # type: ignore[no-untyped-call]
            base_url=self.base_url, api_key=self.api_key, retry=fast_retry()
        )

    def async_client(self) -> Any:
        """pyatlan's real ``AsyncAtlanClient`` for this tenant (same retry policy)."""
        from pyatlan.client.aio.client import AsyncAtlanClient

        return AsyncAtlanClient(  # type: ignore[no-untyped-call]
            base_url=self.base_url, api_key=self.api_key, retry=fast_retry()
        )

    # -- respx --------------------------------------------------------------------------------

    def _answer(self, request: Any, **groups: str) -> Any:
        import httpx

        if self.latency:
            time.sleep(self.latency)
        match = _LINEAGE.search(request.url.path)
        connector = match.group("connector") if match else ""
        body = json.loads(request.content or b"null")
        events = body if isinstance(body, list) else [body]
        answer: Any = self._script.pop(0) if self._script else self._default
        if isinstance(answer, type) and issubclass(answer, BaseException):
            kind: Any = answer
            try:  # httpx's errors carry the request
                answer = kind("mock tenant refused the connection", request=request)
            except TypeError:
                answer = kind("mock tenant refused the connection")
        if isinstance(answer, BaseException):
            self.received.append(Received(connector, events, None, dict(request.headers)))
            raise answer
        status: int
        headers: Mapping[str, str] = {}
        text = ""
        if isinstance(answer, int):
            status = answer
        elif len(answer) == 2:
            status, headers = answer
        else:
            status, headers, text = answer
        text = text.replace(
            "{not_configured}",
            "Unauthorized: url path not configured to receive data, urlPath: "
            f"/events/openlineage/{connector}/api/v1/lineage",
        )
        self.received.append(Received(connector, events, status, dict(request.headers)))
        return httpx.Response(status, headers=dict(headers), text=text)

    def __enter__(self) -> MockAtlan:
        try:
            import respx
        except ImportError as error:
            raise MissingDependencyError(
                "MockAtlan needs respx: pip install 'atlan-ext[testing]'"
            ) from error
        home = self.home
        if home is None:
            self._own_home = tempfile.TemporaryDirectory(prefix="atlan-ext-mock-")
            home = self._own_home.name
        self._isolation = isolated_outbox(home)
        self.outbox = self._isolation.__enter__()
        self._couriers, _state.STATE.couriers = _state.STATE.couriers, False
        self._router = respx.mock(base_url=self.base_url, assert_all_called=False)
        self._router.route(method="POST", path__regex=_LINEAGE.pattern).mock(
            side_effect=self._answer
        )
        self._router.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        _delivery.shutdown(exiting=False)  # no sender keeps trying once the mock tenant is gone
        try:
            self._router.__exit__(*exc_info)
        finally:
            self._router = None
            _state.STATE.couriers = self._couriers
            self._isolation.__exit__(*exc_info)
            if self._own_home is not None:
                self._own_home.cleanup()
                self._own_home = None
