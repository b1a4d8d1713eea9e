"""atlan-ext's rules for one OpenLineage run event, for events it did not build itself.

:func:`event_problems` lists what is wrong (every problem, not the first); :func:`check_event`
raises them as one :class:`InvalidEventError` or returns the event detached and normalised.
Both are public through :mod:`atlan_ext.events`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from atlan_ext._values import RunId, is_uri, parse_time
from atlan_ext.exceptions import AtlanExtError, InvalidEventError
from atlan_ext.states import RunState

__all__ = ["Event", "check_event", "event_problems"]

#: A run event as a plain JSON dict.
Event = Dict[str, Any]


def event_problems(event: object) -> List[str]:
    """What is wrong with ``event`` by atlan-ext's own rules (empty when nothing is).

    The rules: a JSON object with ``eventTime`` (ISO-8601 with a time zone), ``producer``
    (an absolute URI), ``schemaURL``, ``eventType`` (a run state), ``run.runId`` (a UUID),
    ``job.namespace`` and ``job.name`` (non-empty), datasets with namespace and name, and
    facets that are JSON objects.
    """
    if not isinstance(event, Mapping):
        return [f"an event must be a JSON object, got {type(event).__name__}"]
    if "run" not in event and ("dataset" in event or "job" in event):
        kind = "DatasetEvent" if "dataset" in event else "JobEvent"
        return [
            f"a {kind} (no run): atlan-ext sends and pairs run events only (run, job, "
            "eventType); send its facets on a run event of the job"
        ]
    problems: List[str] = []

    def need_text(container: Mapping[str, Any], key: str, where: str) -> Optional[str]:
        value = container.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}{key} must be a non-empty string, got {value!r}")
            return None
        return value

    when = need_text(event, "eventTime", "")
    if when is not None and parse_time(when) is None:
        problems.append(f"eventTime {when!r} is not an ISO-8601 time with a time zone")
    producer = need_text(event, "producer", "")
    if producer is not None and not is_uri(producer):
        problems.append(f"producer {producer!r} is not an absolute URI")
    need_text(event, "schemaURL", "")
    if "eventType" not in event:
        problems.append("eventType is missing; Atlan needs START and a terminal event")
    else:
        try:
            RunState.coerce(event["eventType"])
        except AtlanExtError as error:
            problems.append(f"eventType: {error}")
    run = event.get("run")
    if not isinstance(run, Mapping):
        problems.append("run must be an object with a runId")
    else:
        run_id = run.get("runId")
        try:
            RunId.check(run_id)
        except AtlanExtError:
            problems.append(f"run.runId {run_id!r} is not a UUID")
        if not isinstance(run.get("facets", {}), Mapping):
            problems.append("run.facets must be an object")
    job = event.get("job")
    if not isinstance(job, Mapping):
        problems.append("job must be an object with namespace and name")
    else:
        need_text(job, "namespace", "job.")
        need_text(job, "name", "job.")
        if not isinstance(job.get("facets", {}), Mapping):
            problems.append("job.facets must be an object")
    for side in ("inputs", "outputs"):
        datasets = event.get(side, [])
        if not isinstance(datasets, list):
            problems.append(f"{side} must be a list")
            continue
        for index, dataset in enumerate(datasets):
            where = f"{side}[{index}]."
            if not isinstance(dataset, Mapping):
                problems.append(f"{side}[{index}] must be an object")
                continue
            need_text(dataset, "namespace", where)
            need_text(dataset, "name", where)
            if not isinstance(dataset.get("facets", {}), Mapping):
                problems.append(f"{where}facets must be an object")
    try:
        json.dumps(event, allow_nan=False)
    except (TypeError, ValueError) as error:
        problems.append(f"the event is not JSON-serialisable: {error}")
    return problems


def check_event(event: object) -> Event:
    """Return ``event`` as a detached dict if it follows atlan-ext's rules, else raise
    :class:`InvalidEventError` listing every problem. ``eventType`` comes back trimmed and
    upper-case, the run id as a canonical lower-case UUID."""
    problems = event_problems(event)
    if problems:
        raise InvalidEventError("invalid OpenLineage event: " + "; ".join(problems))
    detached: Event = json.loads(json.dumps(event))
    # What the schema would refuse but means one thing: said the one way it accepts.
    detached["eventType"] = RunState.coerce(detached["eventType"]).value
    detached["run"]["runId"] = RunId.check(detached["run"]["runId"])
    return detached
