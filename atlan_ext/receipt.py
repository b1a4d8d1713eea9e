"""Did the lineage land? A receipt past HTTP 202, from Atlan's own search.

An HTTP 202 means Atlan took the event; it builds the job, its process and the datasets'
assets later, asynchronously. :func:`verify` reads what this machine's outbox knows of a run
(its job, connector, every dataset of every event, what was delivered) and asks Atlan's search,
until everything is found or the wait is over: the OpenLineage connection, the job asset, its
process, and each dataset on the process: **linked** (a crawled asset), **partial** (a
stand-in asset Atlan made because the name matched no crawled asset: ``isPartial``, or under the
OpenLineage connection) or **missing** (in the events, not on the process).

Search results follow the token's personas and purposes: "not found" may mean "not visible".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from atlan_ext._catalog import Catalog, relation_name, status_of
from atlan_ext._crawled import HIDDEN, crawled_match, leaf_of, spec_names
from atlan_ext.events import dataset_uri
from atlan_ext.exceptions import InvalidClientError, InvalidOptionError, InvalidRunIdError
from atlan_ext.naming import SOURCES, lint_dataset
from atlan_ext.send import is_async_client

__all__ = ["Finding", "Receipt", "crawled_match", "verify"]

_LATER = "Atlan builds it from the events a little later: verify again with a longer --wait"


@dataclass(frozen=True)
class Finding:
    """One line of the receipt: what (``connection``, ``job``, ``process``, ``input``,
    ``output`` or ``delivery``), which, its status, and the hint when it is not right."""

    kind: str
    subject: str
    status: str
    hint: str = ""
    qualified_name: str = ""

    @property
    def ok(self) -> bool:
        """True for a connection, job or process found, a dataset linked, events delivered."""
        return self.status in ("found", "linked", "delivered")

    def __str__(self) -> str:
        where = f" [{self.qualified_name}]" if self.qualified_name else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.kind} {self.subject}: {self.status}{where}{hint}"

    def to_dict(self) -> Dict[str, str]:
        """The finding as JSON."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "hint": self.hint,
            "qualifiedName": self.qualified_name,
        }


@dataclass(frozen=True)
class Receipt:
    """What :func:`verify` found for a run, and its exit status."""

    run_id: str
    findings: List[Finding] = field(default_factory=list)
    requests: int = 0
    waited: float = 0.0

    @property
    def exit_status(self) -> int:
        """0: the job and every dataset linked; 1: something partial or missing; 2: nothing
        of the run (no job, no process) found by the deadline."""
        found = {f.kind for f in self.findings if f.status == "found"}
        if not found & {"job", "process"}:
            return 2
        checked = [f for f in self.findings if f.kind != "delivery"]
        return 0 if all(f.ok for f in checked) else 1

    def to_dict(self) -> Dict[str, Any]:
        """The receipt as JSON."""
        return {
            "runId": self.run_id,
            "exitStatus": self.exit_status,
            "requests": self.requests,
            "waitedSeconds": round(self.waited, 3),
            "findings": [f.to_dict() for f in self.findings],
        }


def verify(
    run_id: str,
    *,
    client: Any = None,
    wait: float = 60.0,
    outbox: Any = None,
    per_minute: int = 400,
) -> Receipt:
    """Ask Atlan, through pyatlan's search, whether run ``run_id``'s lineage landed; poll with
    a growing pause (1 s, 2 s, 4 s ... 15 s) until everything is found or ``wait`` seconds
    passed, within ``per_minute`` search requests. ``client``: pyatlan's ``AtlanClient``
    (default: from ``ATLAN_BASE_URL`` and ``ATLAN_API_KEY``); ``outbox``: the
    :class:`~atlan_ext.outbox.Outbox` that recorded the run (default: this machine's)."""
    from atlan_ext.events import RunId

    run_id = RunId.check(run_id)
    if not 0 <= wait < float("inf"):
        raise InvalidOptionError(f"wait={wait!r} is not a number of seconds >= 0, e.g. 60")
    if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
        raise InvalidOptionError(f"per_minute={per_minute!r} is not a whole number >= 1, e.g. 400")
    run = _RunFacts.read(run_id, outbox)
    if client is None:
        from atlan_ext.send import client_from_env

        client = client_from_env()
        if client is None:
            raise InvalidOptionError(
                "verify asks Atlan: set ATLAN_BASE_URL and ATLAN_API_KEY, or pass client="
            )
    if is_async_client(client):
        raise InvalidClientError(
            "verify searches with a sync client: pass pyatlan's AtlanClient, not AsyncAtlanClient"
        )
    catalog = Catalog(client, per_minute=per_minute)
    started = time.monotonic()
    deadline = started + wait
    pause = 1.0
    while True:
        state = _ask(catalog, run)
        if state.done or state.refused or time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 15.0)
    findings = [*run.delivery(), *_findings(catalog, run, state)]
    return Receipt(run_id, findings, catalog.requests, time.monotonic() - started)


@dataclass
class _RunFacts:
    run_id: str
    namespace: str
    job: str
    connector: str
    datasets: Dict[Tuple[str, str], List[str]]  # (namespace, name) -> ["input", "output"]
    delivered: int
    pending: int

    @classmethod
    def read(cls, run_id: str, outbox: Any) -> _RunFacts:
        from atlan_ext.outbox import Outbox, default_path

        own = outbox is None
        box = Outbox(default_path()) if own else outbox
        try:
            record = box.run(run_id)
            events = box.events(run_id)
        finally:
            if own:
                box.close()
        if record is None:
            raise InvalidRunIdError(
                f"unknown run id {run_id} in {box.path}: verify reads the outbox of the machine "
                "that ran it (set ATLAN_EXT_HOME to its folder)"
            )
        datasets: Dict[Tuple[str, str], List[str]] = {}
        sides = [("input", record.inputs), ("output", record.outputs)]
        sides += [(s, e.event.get(f"{s}s") or []) for e in events for s in ("input", "output")]
        for side, items in sides:
            for item in items:
                key = (str(item.get("namespace", "")), str(item.get("name", "")))
                if all(key) and side not in datasets.setdefault(key, []):
                    datasets[key].append(side)
        delivered = sum(1 for e in events if e.delivered is not None)
        return cls(
            run_id,
            record.job_namespace,
            record.job_name,
            record.connector,
            datasets,
            delivered,
            len(events) - delivered,
        )

    def delivery(self) -> List[Finding]:
        total = self.delivered + self.pending
        if self.pending == 0:
            return [Finding("delivery", f"{total} event(s)", "delivered")]
        return [
            Finding(
                "delivery",
                f"{self.pending} of {total} event(s)",
                "pending",
                "not accepted by Atlan yet: atlan-lineage status says why, replay sends them"
                + ("; Atlan can build nothing of this run before" if not self.delivered else ""),
            )
        ]


@dataclass
class _State:
    connection: Any = None
    job: Any = None
    process: Any = None
    error: str = ""
    refused: bool = False
    done: bool = False


def _ask(catalog: Catalog, run: _RunFacts) -> _State:
    state = _State()
    try:
        state.connection = catalog.connection(run.namespace, run.connector)
        if state.connection is not None:
            qualified = str(state.connection.qualified_name)
            state.job = catalog.job(qualified, run.job)
            state.process = catalog.process(qualified, run.job)
    except Exception as error:
        status = status_of(error)
        state.refused = status in (401, 403)
        state.error = f"{type(error).__name__}{f', HTTP {status}' if status else ''}"
        return state
    if state.job is not None and state.process is not None:
        assigned = _assign(run, state.process, str(state.connection.qualified_name))
        state.done = all(
            (key, side) in assigned for key, wanted in run.datasets.items() for side in wanted
        )
    return state


def _sides(process: Any) -> Dict[str, List[Any]]:
    return {
        "input": list(getattr(process, "inputs", None) or []),
        "output": list(getattr(process, "outputs", None) or []),
    }


def _tail_matches(name: str, related: Any) -> bool:
    """Whether the related asset's qualified name ends with the dataset's name, dots and
    slashes read alike (Atlan's qualified names use slashes)."""
    qualified = relation_name(related).lower()
    stripped = name.strip("/").lower()
    return qualified.endswith("/" + stripped.replace(".", "/")) or qualified.endswith(
        "/" + stripped
    )


def _is_partial(related: Any, connection: str) -> bool:
    partial = bool(getattr(related, "is_partial", False))
    return partial or relation_name(related).startswith(connection + "/")


def _assign(
    run: _RunFacts, process: Any, connection: str
) -> Dict[Tuple[Tuple[str, str], str], Any]:
    """Which asset on the process is which dataset, one to one per side. Names alone can be
    shared (``postgres://h:5432/db.s.t`` and a misnamed ``postgres://h/db.s.t`` both end in
    ``db/s/t``): a name the lint finds linkable takes a crawled asset first, one it does not
    takes a partial one first."""
    sides = _sides(process)
    assigned: Dict[Tuple[Tuple[str, str], str], Any] = {}

    def linkable(key: Tuple[str, str]) -> bool:
        return not any(f.partial for f in lint_dataset(*key))

    for side, related in sides.items():
        keys = [key for key, wanted in run.datasets.items() if side in wanted]
        used: List[int] = []
        for key in sorted(keys, key=lambda k: not linkable(k)):
            free = [r for r in related if id(r) not in used and _tail_matches(key[1], r)]
            want_partial = not linkable(key)
            free.sort(key=lambda r: _is_partial(r, connection) != want_partial)
            if free:
                assigned[(key, side)] = free[0]
                used.append(id(free[0]))
    return assigned


def _findings(catalog: Catalog, run: _RunFacts, state: _State) -> List[Finding]:
    found: List[Finding] = []
    if state.refused:
        hint = "the API token may not search assets: check ATLAN_API_KEY and its permissions"
        return [Finding("search", "request", f"refused ({state.error})", hint)]
    failed = Finding(
        "search",
        "request",
        f"failed ({state.error})",
        "Atlan did not answer the search; try again later",
    )
    if state.error and state.connection is None:
        return [failed]
    if state.connection is None:
        hint = (
            f"no {run.connector} connection of that name, {HIDDEN}: check with "
            f"atlan-lineage doctor --connection {run.namespace} --connector {run.connector}"
        )
        return [Finding("connection", repr(run.namespace), "not found", hint)]
    connection = str(state.connection.qualified_name)
    found.append(Finding("connection", repr(run.namespace), "found", "", connection))
    for kind, asset in (("job", state.job), ("process", state.process)):
        if asset is None:
            found.append(Finding(kind, repr(run.job), "not found", f"{_LATER}, {HIDDEN}"))
        else:
            label = f"{run.job!r} ({asset.type_name})"
            found.append(Finding(kind, label, "found", "", str(asset.qualified_name)))
    if state.error:  # the last poll ended early: what it did not ask is not known
        found.append(failed)
    if state.process is None:
        return found
    assigned = _assign(run, state.process, connection)
    for key, wanted in run.datasets.items():
        for side in wanted:
            asset = assigned.get((key, side))
            found.append(_dataset(catalog, key, side, asset, connection))
    return found


def _dataset(
    catalog: Catalog, key: Tuple[str, str], side: str, asset: Any, connection: str
) -> Finding:
    namespace, name = key
    subject = dataset_uri(namespace, name)
    if asset is None:
        hint = f"in the events, not on the process: {_LATER}"
        return Finding(side, subject, "missing", hint)
    qualified = relation_name(asset)
    if not _is_partial(asset, connection):
        return Finding(side, subject, "linked", "", qualified)
    return Finding(side, subject, "partial", _partial_hint(catalog, namespace, name), qualified)


def _partial_hint(catalog: Catalog, namespace: str, name: str) -> str:
    """Why a dataset matched no crawled asset, and the name one would need."""
    errors = [f for f in lint_dataset(namespace, name) if f.level == "error" or f.partial]
    if errors:
        first = errors[0]
        fix = f"expected {first.fix}" if first.level == "error" else first.fix
        return f"{first.message}{f'; {fix}' if fix else ''}"
    said = f"namespace {namespace} matched no crawled connection"
    source = SOURCES.get(namespace.split(":", 1)[0])
    if source is None:
        return said
    leaf = leaf_of(name, source.scheme)
    try:
        names = [uri for uri, _ in spec_names(catalog, source.connector, leaf)]
    except Exception:
        return said
    if not names:
        return f"{said}, and no crawled {source.connector} asset is named {leaf!r} ({HIDDEN})"
    return f"{said}; a crawled asset of that name is {' or '.join(names)} (Dataset.from_asset)"
