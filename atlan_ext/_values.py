"""The small checked values everything else is built from: non-empty text, absolute URIs,
aware times and run ids. This module imports nothing of atlan-ext but its exceptions, so
both :mod:`atlan_ext.facets` and :mod:`atlan_ext.events` can stand on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from datetime import date, datetime, timezone
from typing import List, Optional, Type

from atlan_ext.exceptions import AtlanExtError, InvalidRunIdError, InvalidTimeError

__all__ = ["RunId", "check_text", "check_uri", "format_time", "is_uri", "parse_time", "run_key"]

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_PARTS = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?([+-]\d{2}:?\d{2})?$")


def check_text(value: object, what: str, error: Type[AtlanExtError]) -> str:
    """Return ``value`` if it is a non-empty string with no control character (NUL, a line
    break, an escape...: a name is shown and matched as text), else raise ``error``."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, got {value!r}")
    control = _CONTROL.search(value)
    if control is not None:
        raise error(
            f"{what} {value!r} holds the control character {control.group()!r} at position "
            f"{control.start()}; remove it (names are shown and matched as plain text)"
        )
    return value


def is_uri(text: str) -> bool:
    """True for an absolute URI (``scheme:...`` with no white space)."""
    return bool(_URI.match(text))


def check_uri(value: object, what: str, error: Type[AtlanExtError]) -> str:
    """Return ``value`` if it is an absolute URI (``scheme:...``), else raise ``error``."""
    text = check_text(value, what, error)
    if not is_uri(text):
        raise error(f"{what} must be an absolute URI such as https://host/path, got {text!r}")
    return text


def format_time(value: datetime) -> str:
    """``value`` as an ISO-8601 UTC timestamp; naive datetimes are refused."""
    if not isinstance(value, datetime):
        raise InvalidTimeError(f"expected a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTimeError(
            f"{value.isoformat()} has no time zone; pass an aware datetime, "
            "e.g. datetime.now(timezone.utc)"
        )
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_time(text: str) -> Optional[datetime]:
    """An ISO-8601 time with a zone (``Z`` included) as an aware datetime, else ``None``."""
    candidate = text.strip()
    if candidate[-1:] in ("Z", "z"):
        candidate = candidate[:-1] + "+00:00"
    # Python 3.9 and 3.10 read only 3 or 6 fractional digits and only a "+hh:mm" offset:
    # normalise what other producers write (".1", ".1234567", "+0000").
    match = _ISO_PARTS.match(candidate)
    if match:
        head, fraction, offset = match.groups()
        fraction = f".{(fraction[1:] + '000000')[:6]}" if fraction else ""
        if offset and len(offset) == 5:
            offset = f"{offset[:3]}:{offset[3:]}"
        candidate = f"{head}{fraction}{offset or ''}"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _date_of(part: object) -> Optional[date]:
    """A date part (a ``date`` that is no ``datetime``, or ``"YYYY-MM-DD"``), else ``None``."""
    if isinstance(part, date) and not isinstance(part, datetime):
        return part
    if isinstance(part, str) and _DATE.fullmatch(part.strip()):
        try:
            return date.fromisoformat(part.strip())
        except ValueError:
            raise InvalidTimeError(
                f"RunId.from_key(): the key part {part!r} is shaped as a date but is none; "
                "write a real date, YYYY-MM-DD"
            ) from None
    return None


def _zoneless(part: object) -> bool:
    """True for a naive datetime, or a string that is an ISO-8601 date-time with no zone."""
    if isinstance(part, datetime):
        return part.tzinfo is None
    if not isinstance(part, str) or not _ISO_PARTS.match(part.strip()):
        return False
    try:
        return datetime.fromisoformat(part.strip()).tzinfo is None
    except ValueError:
        return False


#: The random ends of fresh run ids (a UUIDv7's text after its timestamp: version, rand_a,
#: variant, rand_b), from the operating system, made a few hundred at a time (one system
#: call per few hundred run ids); ``list.pop`` takes one without a lock. A forked child
#: starts with none of its parent's (it would repeat its ids).
_TAILS: List[str] = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_TAILS.clear)


def _more_tails() -> str:
    data = os.urandom(4000)
    _TAILS.extend(_uuid7_tail(int.from_bytes(data[i : i + 10], "big")) for i in range(0, 4000, 10))
    return _TAILS.pop()


class RunId:
    """Run ids: UUIDs, shaped as UUIDv7 (time-ordered) when atlan-ext makes them."""

    @staticmethod
    def new() -> str:
        """A fresh UUIDv7 for the current time."""
        try:
            tail = _TAILS.pop()
        except IndexError:
            tail = _more_tails()
        return _uuid7(time.time_ns() // 1_000_000, tail)

    @staticmethod
    def from_key(*parts: object, at: Optional[datetime] = None) -> str:
        """The same UUID every time for the same key, so that START and the terminal event
        can be sent by different processes or hosts::

            RunId.from_key("dag", "task", "2026-11-25T00:00Z", try_number)

        The UUID is shaped as UUIDv7 with the key's time in its time bits: ``at`` when given,
        else the first part that is an aware datetime, an ISO-8601 timestamp with a zone, or a
        date (a ``datetime.date`` or ``"2026-11-25"``, as ``$(date +%F)`` writes it: midnight
        UTC), else the epoch. A date-time part without a zone (a naive datetime,
        ``"2026-11-25T00:00:00"``) is refused with :class:`InvalidTimeError`, since its time
        bits would silently be the epoch. ``None`` and empty parts (an unset shell variable)
        are refused with :class:`InvalidRunIdError`. The rest is a SHA-1 of the key, as
        openlineage-python's ``generate_static_uuid`` does. ``atlan-lineage run-id --key
        PART...`` prints the same value for the same strings.
        """
        if not parts:
            raise InvalidRunIdError("RunId.from_key() needs at least one key part")
        for number, part in enumerate(parts, 1):
            if part is None or (isinstance(part, str) and not part.strip()):
                raise InvalidRunIdError(
                    f"RunId.from_key(): key part {number} is {part!r}; every part must say "
                    "something (an unset variable?): the same key must give the same run id "
                    "on every host"
                )
        instant = at
        if instant is None:
            for part in parts:
                if isinstance(part, datetime) and part.tzinfo is not None:
                    instant = part
                    break
                if isinstance(part, str):
                    instant = parse_time(part)
                    if instant is not None:
                        break
                day = _date_of(part)
                if day is not None:
                    instant = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
                    break
                if _zoneless(part):
                    # Its time bits would silently be the epoch: say so instead.
                    raise InvalidTimeError(
                        f"RunId.from_key(): the key part {part!r} is a time without a zone; "
                        "give it one (e.g. 2026-11-25T00:00:00Z or an aware datetime), or "
                        "pass at=<aware datetime>"
                    )
        if instant is None:
            instant = datetime(1970, 1, 1, tzinfo=timezone.utc)
        format_time(instant)  # refuses a naive ``at``
        instant = instant.astimezone(timezone.utc)
        data = json.dumps([str(part) for part in parts]).encode("utf-8")
        digest = hashlib.sha1(instant.isoformat().encode("utf-8") + data).digest()  # noqa: S324
        return _uuid7(int(instant.timestamp() * 1000), _uuid7_tail(int(digest.hex(), 16) >> 84))

    @staticmethod
    def check(value: object) -> str:
        """``value`` (a str or ``uuid.UUID``) as a canonical lowercase UUID string."""
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            if _CANONICAL_UUID.fullmatch(value):  # already canonical (a run's own id)
                return value
            try:
                return str(uuid.UUID(value.strip()))
            except ValueError:
                pass
        raise InvalidRunIdError(
            f"{value!r} is not a run id; a run id is a UUID such as {RunId.new()!r}: "
            "use RunId.new() or RunId.from_key(...)"
        )


def run_key(run_id: object) -> str:
    """A run id as runs are matched: the canonical lower-case UUID (case never splits a run),
    or the text as it is when it is not a UUID."""
    text = str(run_id).strip()
    if _CANONICAL_UUID.fullmatch(text):
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _uuid7(timestamp_ms: int, tail: str) -> str:
    """The canonical text of the UUIDv7 of ``timestamp_ms`` and ``tail`` (see
    :func:`_uuid7_tail`), formatted directly: what ``str(uuid.UUID(int=...))`` gives,
    without building the object (a run's hand-off)."""
    h = hex(timestamp_ms & 0xFFFFFFFFFFFF | 1 << 48)  # "0x1" and 12 digits (no format spec)
    return f"{h[3:11]}-{h[11:]}-{tail}"


def _uuid7_tail(node: int) -> str:
    """A UUIDv7's text after its timestamp, from the low 80 bits of ``node``: its version
    (7) and variant (RFC 4122) in place of five of them."""
    value = node & 0xFFFFFFFFFFFFFFFFFFFF
    value = (value & ~(0xF << 76)) | (7 << 76)
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{value:020x}"
    return f"{h[:4]}-{h[4:8]}-{h[8:]}"
