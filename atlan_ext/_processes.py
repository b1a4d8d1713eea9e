"""Processes of this host: whether one still runs, and when it started.

The outbox records which process started a run and which holds a lease; these functions tell
whether that process is gone (a run left behind, a lease to free), also when its id was
reused by another process since.
"""

from __future__ import annotations

import os
import socket
from typing import Optional

__all__ = ["HOST", "pid_alive", "process_start_time"]

#: This host's name, as the outbox records it beside a process id.
HOST = socket.gethostname()


def pid_alive(pid: int, *, started_by: Optional[float] = None) -> bool:
    """True if a process with this id exists on this host; with ``started_by`` (a
    ``time.time()``), only if it started by then, where the system tells when a process
    started (Linux's ``/proc``; elsewhere the id alone decides). A process that started
    later holds a reused id."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    if started_by is None:
        return True
    started = process_start_time(pid)
    # /proc's boot time is whole seconds: a second of slack, and one more for clock ticks.
    return started is None or started <= started_by + 2.0


def process_start_time(pid: int) -> Optional[float]:
    """When process ``pid`` started, as a ``time.time()``, or ``None`` where it cannot be told."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:  # noqa: PTH123
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/stat", encoding="ascii") as system:  # noqa: PTH123
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime "))
        ticks = os.sysconf("SC_CLK_TCK")
        # Field 22 of stat (starttime, in clock ticks after boot); fields[0] is field 3.
        return boot + int(fields[19]) / ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None
