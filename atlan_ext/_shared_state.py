"""What every courier sharing an outbox agrees on, kept in its meta table.

One request budget (the time of the next request any of them may make), a pause after Atlan
answered 429, and the heartbeats of courier services: small values read and changed inside
one transaction, so couriers on several processes or hosts see one another's.
"""

from __future__ import annotations

import time

from atlan_ext._database import Database

__all__ = ["SharedState"]


class SharedState(Database):
    """The values couriers share through an outbox (methods of
    :class:`atlan_ext.outbox.Outbox`)."""

    def _shared(self, key: str) -> float:
        """A time stored in the meta table (0 when none), read inside the caller's
        transaction with the row locked where the backend locks rows."""
        self._db.execute("INSERT INTO meta VALUES (?, '0') ON CONFLICT (key) DO NOTHING", (key,))
        row = self._db.execute(
            f"SELECT value FROM meta WHERE key=?{self._LOCK_ROWS}",  # noqa: S608
            (key,),
        ).fetchone()
        try:
            return float(row[0]) if row else 0.0
        except ValueError:
            return 0.0

    def _set_shared(self, key: str, value: float) -> None:
        self._db.execute("UPDATE meta SET value=? WHERE key=?", (repr(value), key))

    def take_slot(self, spacing: float) -> float:
        """The time (``time.time()``) at which this handle may make its next request, when
        every sender on the outbox keeps ``spacing`` seconds between requests: a budget of
        ``60 / spacing`` requests a minute shared by all couriers of a fleet."""
        with self._write():
            slot = max(time.time(), self._shared("next-request"))
            self._set_shared("next-request", slot + spacing)
        return slot

    def pause_sending(self, until: float) -> None:
        """Ask every courier on this outbox to send nothing before ``until`` (epoch seconds),
        e.g. after Atlan answered 429; a later pause already set stays."""
        with self._write():
            if self._shared("paused-until") < until:
                self._set_shared("paused-until", until)

    def paused_until(self) -> float:
        """Until when sending is paused (epoch seconds; in the past when it is not)."""
        with self._read():
            row = self._db.execute("SELECT value FROM meta WHERE key='paused-until'").fetchone()
        try:
            return float(row[0]) if row else 0.0
        except ValueError:
            return 0.0

    def beat(self, name: str) -> None:
        """Record that the service ``name`` (e.g. a courier service) is alive now."""
        with self._write():
            self._shared(f"beat:{name}")
            self._set_shared(f"beat:{name}", time.time())

    def last_beat(self, name: str) -> float:
        """When the service ``name`` last said it was alive (epoch seconds; 0 if never)."""
        with self._read():
            row = self._db.execute(
                "SELECT value FROM meta WHERE key=?", (f"beat:{name}",)
            ).fetchone()
        try:
            return float(row[0]) if row else 0.0
        except ValueError:
            return 0.0
