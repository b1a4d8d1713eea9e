"""What users already have, as plain JSON data: pyatlan (``pyatlan`` and ``pyatlan_v9``) and
openlineage-python objects, JSON text, dicts and lists.

Nothing here imports those libraries: an object can only be theirs if its module is already
loaded (:func:`loaded`), so a user without them pays nothing. :func:`foreign_dict` serves
:func:`atlan_ext.events.as_dataset` and :func:`atlan_ext.events.as_job`; :func:`as_event` and
:func:`as_events` (public through :mod:`atlan_ext.events`) turn events into checked dicts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, Dict, List, Optional

from atlan_ext._event_checks import Event, check_event
from atlan_ext.exceptions import InvalidEventError

__all__ = [
    "FOREIGN_DATASETS",
    "FOREIGN_JOBS",
    "as_event",
    "as_events",
    "foreign_dict",
    "loaded",
]

#: Where pyatlan and openlineage-python keep their dataset classes: (module, class name).
FOREIGN_DATASETS = (
    ("pyatlan.model.open_lineage.dataset", "OpenLineageDataset"),
    ("pyatlan_v9.model.open_lineage.dataset", "OpenLineageDataset"),
    ("openlineage.client.event_v2", "Dataset"),
    ("openlineage.client.run", "Dataset"),
)
#: Where pyatlan and openlineage-python keep their job classes: (module, class name).
FOREIGN_JOBS = (
    ("pyatlan.model.open_lineage.job", "OpenLineageJob"),
    ("pyatlan_v9.model.open_lineage.job", "OpenLineageJob"),
    ("openlineage.client.event_v2", "Job"),
    ("openlineage.client.run", "Job"),
)


def foreign_dict(value: object, kinds: Any) -> Optional[Dict[str, Any]]:
    """A pyatlan or openlineage-python object of one of ``kinds`` as its JSON dict."""
    for module_name, attribute in kinds:
        cls = loaded(module_name, attribute)
        if cls is not None and isinstance(value, cls):
            if module_name.startswith("pyatlan_v9"):
                import msgspec

                built: Dict[str, Any] = msgspec.to_builtins(value)
                return built
            if module_name.startswith("pyatlan"):
                data: Dict[str, Any] = json.loads(
                    value.json(by_alias=True, exclude_unset=True)  # type: ignore[attr-defined]
                )
                return data
            from openlineage.client.serde import Serde

            converted: Dict[str, Any] = Serde.to_dict(value)
            return converted
    return None


def loaded(module_name: str, attribute: str) -> Optional[type]:
    """The class ``attribute`` of ``module_name`` if that module is already imported, else
    ``None``: an object of a library that was never imported cannot be one of its."""
    module = sys.modules.get(module_name)
    cls = getattr(module, attribute, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def as_event(value: object) -> Event:
    """Any one event a user may already have, as a checked plain dict.

    Takes a dict or JSON text, pyatlan's ``OpenLineageEvent`` or ``OpenLineageRawEvent`` (of
    ``pyatlan`` and of ``pyatlan_v9``; a raw event may hold a dict or JSON text), or
    openlineage-python's ``RunEvent`` (``event_v2`` or the older ``run``). Nothing is
    dropped: every field the object holds reaches the dict. Several events (a list, a JSON
    array, a raw event holding a list): :func:`as_events`.
    """
    data = _plain(value)
    if isinstance(data, list):
        raise InvalidEventError(
            f"{type(value).__name__} holds {len(data)} events, not one: use as_events()"
        )
    return check_event(data)


def as_events(value: object) -> List[Event]:
    """Every event in ``value``: a list of anything :func:`as_event` takes, a JSON array, a
    raw event holding a list (pyatlan's ``raw_events_list``), or a single event."""
    data = _plain(value)
    items = data if isinstance(data, list) else [data]
    return [as_event(item) for item in items]


def _plain(value: object) -> object:
    """``value`` as JSON-shaped data: text parsed, foreign objects serialised."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError as error:
            raise InvalidEventError(f"not a JSON event: {error}") from None
    if isinstance(value, (Mapping, list, tuple)):
        return list(value) if isinstance(value, tuple) else value
    return _foreign_event(value)


def _foreign_event(value: object) -> object:
    for module_name in ("pyatlan.model.open_lineage.event", "pyatlan_v9.model.open_lineage.event"):
        raw = loaded(module_name, "OpenLineageRawEvent")
        if raw is not None and isinstance(value, raw):
            held = getattr(value, "__root__", getattr(value, "data", None))
            return _plain(held)
    pyatlan_event = loaded("pyatlan.model.open_lineage.event", "OpenLineageEvent")
    if pyatlan_event is not None and isinstance(value, pyatlan_event):
        # The same serialisation pyatlan uses when it sends the event.
        return json.loads(value.json(by_alias=True, exclude_unset=True))  # type: ignore[attr-defined]
    v9_event = loaded("pyatlan_v9.model.open_lineage.event", "OpenLineageEvent")
    if v9_event is not None and isinstance(value, v9_event):
        return json.loads(json.dumps(value.to_dict(), default=str))  # type: ignore[attr-defined]
    run_v1 = loaded("openlineage.client.run", "RunEvent")
    run_v2 = loaded("openlineage.client.event_v2", "RunEvent")
    if (run_v1 is not None and isinstance(value, run_v1)) or (
        run_v2 is not None and isinstance(value, run_v2)
    ):
        from openlineage.client.serde import Serde

        return Serde.to_dict(value)
    raise InvalidEventError(
        f"cannot read an event from {type(value).__name__}; pass a dict, JSON text, a "
        "pyatlan OpenLineageEvent or OpenLineageRawEvent, or an openlineage-python RunEvent"
    )
