"""What the outbox hands out: its event rows and run records, and how a row becomes one."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from atlan_ext._processes import HOST, pid_alive
from atlan_ext._values import run_key

__all__ = [
    "EVENT_COLUMNS",
    "RUN_COLUMNS",
    "RUN_UPSERT",
    "OutboxEvent",
    "RunRecord",
    "event_from_row",
    "run_from_row",
    "run_row",
]


@dataclass(frozen=True)
class OutboxEvent:
    """One event row: the event as made, and where its delivery stands."""

    id: int
    run_id: str
    event_type: str
    connector: str
    #: The event as the outbox keeps it: its JSON, which a send puts on the wire as it is.
    text: str
    created: float
    delivered: Optional[float]
    attempts: int
    last_error: Optional[str]
    #: The event's ``eventTime`` as stored beside it (the order of a run's events).
    event_time: str

    @property
    def status(self) -> str:
        """``"delivered"`` or ``"pending"``."""
        return "delivered" if self.delivered is not None else "pending"

    @functools.cached_property
    def event(self) -> Dict[str, Any]:
        """The event, read from :attr:`text` when first asked for (a replay sends the text
        without reading it)."""
        parsed: Dict[str, Any] = json.loads(self.text)
        return parsed


@dataclass(frozen=True)
class RunRecord:
    """What the outbox remembers of a run: its job, datasets and lifecycle state."""

    run_id: str
    job_namespace: str
    job_name: str
    connector: str
    state: Optional[str]
    job: Dict[str, Any]
    inputs: List[Dict[str, Any]]
    outputs: List[Dict[str, Any]]
    created: float
    updated: float
    pid: Optional[int]
    host: Optional[str]

    @property
    def process_alive(self) -> bool:
        """True if the process that started the run still runs on this host: a process with
        its id exists and, where the system tells (Linux), started before the run was
        recorded (else the id was reused by another process, and the run's is gone)."""
        return (
            self.host == HOST
            and self.pid is not None
            and pid_alive(self.pid, started_by=self.created)
        )


#: The columns :func:`run_from_row` reads, in its order.
RUN_COLUMNS = (
    "run_id, job_namespace, job_name, connector, state, job, inputs, outputs, created,"
    " updated, pid, host"
)
#: The columns :func:`event_from_row` reads, in its order.
EVENT_COLUMNS = (
    "id, run_id, event_type, connector, event, created, delivered, attempts, last_error, event_time"
)


def event_from_row(row: Sequence[Any]) -> OutboxEvent:
    """The event of a row of :data:`EVENT_COLUMNS`."""
    return OutboxEvent(
        id=row[0],
        run_id=row[1],
        event_type=row[2],
        connector=row[3],
        text=row[4],
        created=row[5],
        delivered=row[6],
        attempts=row[7],
        last_error=row[8],
        event_time=row[9],
    )


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """The run record of a row of :data:`RUN_COLUMNS`."""
    return RunRecord(
        run_id=row[0],
        job_namespace=row[1],
        job_name=row[2],
        connector=row[3],
        state=row[4],
        job=json.loads(row[5]),
        inputs=json.loads(row[6]),
        outputs=json.loads(row[7]),
        created=row[8],
        updated=row[9],
        pid=row[10],
        host=row[11],
    )


def _rank(state: str) -> str:
    return f"(CASE {state} WHEN 'START' THEN 0 WHEN 'RUNNING' THEN 1 ELSE 2 END)"


_MOVES_ON = f"{_rank('excluded.state')} >= {_rank('runs.state')} AND {_rank('runs.state')} < 2"

#: A run's record from one of its lifecycle events (the values of :func:`run_row`). It never
#: moves back: an earlier event stored late (a START sent before it was stored, saved after
#: the run's failed COMPLETE was) leaves the later state, and its datasets, as they are.
RUN_UPSERT = f"""INSERT INTO runs (run_id, job_namespace, job_name, connector, state, job,
        inputs, outputs, created, updated, pid, host)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id) DO UPDATE SET
        state = CASE WHEN {_MOVES_ON} THEN excluded.state ELSE runs.state END,
        inputs = CASE WHEN {_MOVES_ON} THEN excluded.inputs ELSE runs.inputs END,
        outputs = CASE WHEN {_MOVES_ON} THEN excluded.outputs ELSE runs.outputs END,
        updated = excluded.updated"""  # noqa: S608 - constant text only


def run_row(event: Dict[str, Any], connector: str, state: str, now: float) -> List[Any]:
    """The ``runs`` row a lifecycle event records (both backends, in the column order of
    :data:`RUN_COLUMNS`): its job, datasets and state, written by this process on this host."""
    job = event["job"]
    return [
        run_key(event["run"]["runId"]),
        job["namespace"],
        job["name"],
        connector,
        state,
        json.dumps(job),
        json.dumps(event.get("inputs", [])),
        json.dumps(event.get("outputs", [])),
        now,
        now,
        os.getpid(),
        HOST,
    ]
