"""Leases on pending events: which sender may send an event now.

A row being sent is *claimed* by a lease that expires, so two replays, or a replay and a
live job, never send the same event at the same time; a run's events are leased in the order
they were made, so a terminal event never overtakes its START. A lease whose holder's process
is gone (killed -9) is freed.
"""

from __future__ import annotations

import time
from typing import Any, Collection, Dict, List, Optional, Sequence, Tuple

from atlan_ext._database import Database
from atlan_ext._processes import HOST, pid_alive
from atlan_ext._records import OutboxEvent
from atlan_ext._values import run_key

__all__ = ["LEASE_SECONDS", "Leases"]

#: How long a lease holds when its holder does not give it up (a sender that hangs).
LEASE_SECONDS = 300.0
_DEAD_CHECK_SECONDS = 5.0


class Leases(Database):
    """The claims a handle takes and gives up on pending events (methods of
    :class:`atlan_ext.outbox.Outbox`)."""

    _dead_checked = -_DEAD_CHECK_SECONDS  # when this handle last looked for dead holders

    def release(self, ids: Sequence[int]) -> None:
        """Give up the claim on events without counting an attempt."""
        if not ids:
            return
        with self._write():
            self._set_by_ids(
                "claimed_by=NULL, claimed_until=NULL", (), ids, " AND claimed_by=?", (self.owner,)
            )

    def release_mine(self) -> None:
        """Give up every claim this handle holds on undelivered events."""
        with self._write():
            self._db.execute(
                "UPDATE events SET claimed_by=NULL, claimed_until=NULL"
                " WHERE claimed_by=? AND delivered IS NULL",
                (self.owner,),
            )

    def claim_pending(
        self, limit: int, lease: float = LEASE_SECONDS, exclude_runs: Collection[str] = ()
    ) -> List[OutboxEvent]:
        """Lease up to ``limit`` pending events to this handle, oldest first (by event time,
        then by when they were stored).

        An event is left out while an earlier pending event of its run is leased elsewhere,
        so START is always sent before the later events of its run; ``exclude_runs`` leaves
        out whole runs.
        """
        self._settle()
        self._release_dead_claims()
        now = time.time()
        excluded = list(exclude_runs)
        skip = f"AND run_id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        with self._write():
            rows = self._db.execute(
                f"""SELECT id FROM events e
                   WHERE delivered IS NULL AND (claimed_until IS NULL OR claimed_until < ?)
                   AND NOT EXISTS (
                       SELECT 1 FROM events p WHERE p.run_id = e.run_id
                       AND p.delivered IS NULL AND p.claimed_until >= ?
                       AND (p.event_time < e.event_time
                            OR (p.event_time = e.event_time AND p.id < e.id)))
                   {skip} ORDER BY event_time, id LIMIT ?""",  # noqa: S608 - placeholders only
                [now, now, *excluded, limit],
            ).fetchall()
            return self._lease([row[0] for row in rows], now + lease)

    def _set_by_ids(
        self,
        assignments: str,
        params: Sequence[Any],
        ids: Sequence[int],
        where: str = "",
        where_params: Sequence[Any] = (),
    ) -> None:
        """``UPDATE events SET <assignments>`` on the events ``ids`` (and ``where``), inside
        the caller's transaction: one statement per 500 ids here (a shared backend: one)."""
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            self._db.execute(
                f"UPDATE events{self._BY_ID} SET {assignments} WHERE id IN ({marks}){where}",  # noqa: S608
                [*params, *chunk, *where_params],
            )

    def _lease(self, ids: Sequence[int], until: float) -> List[OutboxEvent]:
        """Lease the events ``ids`` to this handle until ``until``, inside the caller's
        transaction; returns them in the order they were made."""
        self._set_by_ids("claimed_by=?, claimed_until=?", (self.owner, until), ids)
        return self._events_by_ids(ids)

    def _held_elsewhere(self, owner: Optional[str], until: Optional[float], now: float) -> bool:
        """True for a lease another live handle holds (not ours, not expired, its process
        not gone)."""
        return (
            owner not in (None, self.owner)
            and until is not None
            and until >= now
            and not _dead_here(owner)
        )

    def claim_ids(self, ids: Sequence[int]) -> List[OutboxEvent]:
        """Lease the events ``ids`` that are still pending and not leased by another live
        process (a replay may have taken or sent them meanwhile), oldest first."""
        now = time.time()
        taken: List[int] = []
        with self._write():
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                taken.extend(
                    row[0]
                    for row in self._db.execute(
                        "SELECT id, claimed_by, claimed_until"  # noqa: S608
                        f" FROM events{self._BY_ID} WHERE id IN ({marks}) AND delivered IS NULL"
                        f" ORDER BY id{self._LOCK_ROWS}",
                        chunk,
                    )
                    if not self._held_elsewhere(row[1], row[2], now)
                )
            return self._lease(taken, now + LEASE_SECONDS)

    def take_earlier(self, firsts: Dict[str, int]) -> Tuple[List[OutboxEvent], List[str]]:
        """Before a run's events in hand are sent: its pending events stored before them.

        ``firsts`` maps run ids to the id of the first event in hand of that run. Earlier
        pending events that nobody else holds are leased to this handle and returned, oldest
        first, to be sent ahead; runs with an earlier event leased by another live sender are
        returned as held, and their events in hand must wait (a terminal event never
        overtakes its START, even when another process stored the START).
        """
        if not firsts:
            return [], []
        now = time.time()
        taken: List[int] = []
        held: List[str] = []
        with self._write():
            for run_id, first in firsts.items():
                rows = self._db.execute(
                    "SELECT id, claimed_by, claimed_until FROM events"  # noqa: S608
                    " WHERE run_id=? AND delivered IS NULL AND id < ?"
                    f" ORDER BY event_time, id{self._LOCK_ROWS}",
                    (run_key(run_id), first),
                ).fetchall()
                busy = [row for row in rows if self._held_elsewhere(row[1], row[2], now)]
                if busy:
                    held.append(run_id)
                else:
                    taken.extend(row[0] for row in rows)
            return self._lease(taken, now + LEASE_SECONDS), held

    def _release_dead_claims(self) -> None:
        """Free leases held by processes of this host that no longer exist (killed -9).
        Looked for at most every few seconds: a dead process's claims are rare."""
        now = time.monotonic()
        if now - self._dead_checked < _DEAD_CHECK_SECONDS:
            return
        self._dead_checked = now
        with self._read():
            owners = [
                row[0]
                for row in self._db.execute(
                    "SELECT DISTINCT claimed_by FROM events WHERE claimed_by IS NOT NULL"
                    " AND delivered IS NULL AND claimed_until >= ?",
                    (time.time(),),
                )
            ]
        dead = self._dead_owners([owner for owner in owners if owner])
        if dead:
            with self._write():
                self._db.executemany(
                    "UPDATE events SET claimed_by=NULL, claimed_until=NULL WHERE claimed_by=?",
                    [(owner,) for owner in dead],
                )

    def _dead_owners(self, owners: List[str]) -> List[str]:
        """Which of these lease holders are gone: here, processes of this host that no
        longer exist (a shared backend also knows of other hosts' processes)."""
        return [owner for owner in owners if _dead_here(owner)]


def _dead_here(owner: str) -> bool:
    """True for a lease holder of this host whose process no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit():
        return False
    return not pid_alive(int(pid_text))
