"""Building a run's events from values checked already, and their JSON, for the job's thread.

:func:`event_text` writes the shape of a run event, once, as compact JSON made from its
job's and datasets' JSON encoded once: a run hands over only that text, so its hand-off encodes
only its time and ids. :func:`made_event` is the same event as a dict, read back from that
text (``build_event`` checks its arguments, then calls it); tests/test_handoff.py holds the
text equal to the spec's shape written out by hand. :func:`check_facets` checks and detaches
facets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

from atlan_ext._version import PRODUCER
from atlan_ext.exceptions import InvalidFacetError
from atlan_ext.states import RunState

__all__ = [
    "FACET_LIMIT",
    "RUN_EVENT_SCHEMA_URL",
    "JobPart",
    "Part",
    "check_facets",
    "event_text",
    "facets_text",
    "head_text",
    "made_event",
    "now_text",
    "parts_text",
]

RUN_EVENT_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

#: The largest facet we send, as JSON (characters): lineage is metadata, not a payload.
FACET_LIMIT = 1_000_000

Event = Dict[str, Any]


class Part(Protocol):
    """A frozen part of an event (``atlan_ext.events.Dataset``): its JSON object."""

    def to_dict(self) -> Event: ...


class JobPart(Part, Protocol):
    """A frozen job (``atlan_ext.events.Job``): its JSON object and its own producer."""

    @property
    def producer(self) -> Optional[str]: ...


def check_facets(facets: Optional[Mapping[str, Any]], where: str) -> Dict[str, Any]:
    """``facets`` checked (a mapping of names to JSON objects, none too large) and detached,
    as a new dict; a bad one raises :class:`InvalidFacetError` naming it."""
    if facets is None or (type(facets) is dict and not facets):
        return {}
    if not isinstance(facets, Mapping):
        raise InvalidFacetError(
            f"{where} facets must be a mapping of name to facet, got {facets!r}"
        )
    checked: Dict[str, Any] = {}
    for key, facet in facets.items():
        if not isinstance(key, str) or not key:
            raise InvalidFacetError(f"{where} facet name must be a non-empty string, got {key!r}")
        if not isinstance(facet, Mapping):
            raise InvalidFacetError(
                f"{where} facet {key!r} must be a JSON object (dict), got {type(facet).__name__}"
            )
        try:
            # A round trip both proves the facet serialisable and detaches it from the caller.
            text = json.dumps(facet, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidFacetError(
                f"{where} facet {key!r} is not JSON-serialisable: {error}"
            ) from None
        if len(text) > FACET_LIMIT:
            raise InvalidFacetError(
                f"{where} facet {key!r} is {len(text) / 1e6:.1f} MB as JSON; the limit is "
                f"{FACET_LIMIT // 1_000_000} MB per facet: send a summary, or a link to the "
                "full content"
            )
        checked[key] = json.loads(text)
    return checked


# Compact and ASCII, as the journal and the outbox store events.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_SCHEMA_JSON = _ENCODER.encode(RUN_EVENT_SCHEMA_URL)


def _json_of(value: Part) -> str:
    """``value.to_dict()`` as compact JSON, encoded once per object (both are frozen)."""
    text: Optional[str] = value.__dict__.get("_json")
    if text is None:
        text = _ENCODER.encode(value.to_dict())
        object.__setattr__(value, "_json", text)
    return text


def parts_text(job: JobPart, inputs: Sequence[Part], outputs: Sequence[Part]) -> str:
    """The end of a run event's JSON (after its ``run``): the job, inputs and outputs, made
    from each one's JSON encoded once. A run keeps it until its datasets change."""
    return (
        f'"job":{_json_of(job)},"inputs":[{",".join(map(_json_of, inputs))}],'
        f'"outputs":[{",".join(map(_json_of, outputs))}]}}'
    )


def head_text(job: JobPart) -> str:
    """The producer of ``job``'s run events, as JSON (the job's own, else atlan-ext's),
    encoded once per job (it is frozen)."""
    text: Optional[str] = job.__dict__.get("_producer_json")
    if text is None:
        text = _ENCODER.encode(job.producer or PRODUCER)
        object.__setattr__(job, "_producer_json", text)
    return text


def facets_text(run_facets: Dict[str, Any]) -> str:
    """Run facets (checked) as compact ASCII JSON."""
    return _ENCODER.encode(run_facets) if run_facets else "{}"


#: The last second :func:`now_text` wrote, and its date and time of day (one tuple, replaced
#: whole: a reader on another thread sees an old pair or the new one, never half of each).
_SECOND: List[Tuple[Optional[int], str]] = [(None, "")]
_DAY: List[Tuple[Optional[int], str]] = [(None, "")]  # the last day and its date, alike


def now_text() -> str:
    """The current UTC time as an event's ``eventTime``, to the microsecond, as
    ``format_time(datetime.now(timezone.utc))`` writes it. Written with ``str`` of numbers
    only (no format specs, no strftime: their code is a cold run's cache misses); the date
    is formatted once per day, the time of day once per second."""
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    known, day_and_time = _SECOND[0]
    if known != second:
        day, clock = divmod(second, 86_400)
        known_day, date = _DAY[0]
        if known_day != day:
            date = time.strftime("%Y-%m-%d", time.gmtime(second))
            _DAY[0] = (day, date)
        hour, clock = divmod(clock, 3600)
        minute, clock = divmod(clock, 60)
        day_and_time = (
            f"{date}T{str(100 + hour)[1:]}:{str(100 + minute)[1:]}:{str(100 + clock)[1:]}"
        )
        _SECOND[0] = (second, day_and_time)
    return f"{day_and_time}.{str(1_000_000 + micro)[1:]}+00:00"


def event_text(kind: str, when: str, run_id: str, facets: str, producer: str, parts: str) -> str:
    """A run event as compact ASCII JSON, the same text as encoding its dict whole: the one
    place its shape is written (:func:`made_event` reads it back). ``facets``:
    :func:`facets_text`; ``producer``: :func:`head_text`; ``parts``: :func:`parts_text`. A
    run's hand-off encodes only its time and ids; its dict is read back from this text when
    something needs it."""
    return (
        f'{{"eventTime":"{when}","producer":{producer},"schemaURL":{_SCHEMA_JSON},'
        f'"eventType":"{kind}","run":{{"runId":"{run_id}","facets":{facets}}},{parts}'
    )


def made_event(
    state: RunState,
    job: JobPart,
    run_id: str,
    *,
    inputs: Sequence[Part],
    outputs: Sequence[Part],
    run_facets: Dict[str, Any],
    when: str,
    producer: Optional[str] = None,
) -> Event:
    """The event ``build_event`` makes, from values checked already (a run's own: its
    job, run id and datasets were checked when the run was planned; ``run_facets`` is a
    checked, detached dict; ``when`` a :func:`format_time` string; ``producer`` a checked
    URI). The shape is written once, by :func:`event_text`: this is its text read back."""
    head = _ENCODER.encode(producer) if producer else head_text(job)
    text = event_text(
        state.value, when, run_id, facets_text(run_facets), head, parts_text(job, inputs, outputs)
    )
    parsed: Event = json.loads(text)
    return parsed
