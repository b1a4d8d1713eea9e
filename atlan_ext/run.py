"""Runs: START, then exactly one of COMPLETE, FAIL or ABORT, however the work ends.

- :func:`start_run` sends START and returns the :class:`Run`; :func:`resume_run` takes up a
  run started elsewhere (another process or host) without sending START.
- :meth:`Run.end` is the one way a run ends: idempotent, the only place its terminal state is
  decided (:func:`atlan_ext.terminal_state`) and its errorMessage facet built. ``complete()``,
  ``fail()`` and ``abort()`` are thin calls to it, and so are the context manager's exit, the
  notebook magic, ``atlan-lineage wrap``, the step commands and ``close-orphans``.
- :class:`lineage_run` is ``start_run`` plus ``Run.end`` on every way out, as ``with``,
  ``async with`` and decorator; each use (each call of a decorated function) builds a fresh
  run from the stored arguments.

Lineage never breaks the user's work: a failure to record it is logged (``strict=True``
raises it, but never over the user's own exception), and the user's exception is re-raised
unchanged. Bad arguments raise at once, before anything is sent.

This module is the public face; the code lives below it, each part importing only those under
it: :mod:`atlan_ext._run_plan` checks a run's arguments once (``Plan``);
:mod:`atlan_ext._run_base` holds what a run is and how it ends (``RunBase``: its
``_prepare_end`` is the one place every ending, by ``end()``, ``complete()``, ``fail()``,
``abort()`` or a withdrawn START, is decided); :mod:`atlan_ext._runs` has :class:`Run`,
:class:`AsyncRun` and the functions that make them; :mod:`atlan_ext._lineage_run` has
:class:`lineage_run`.
"""

from __future__ import annotations

from atlan_ext._lineage_run import lineage_run
from atlan_ext._run_base import current_run
from atlan_ext._runs import (
    AsyncRun,
    Run,
    resume_run,
    resume_run_async,
    start_run,
    start_run_async,
)

__all__ = [
    "AsyncRun",
    "Run",
    "current_run",
    "lineage_run",
    "resume_run",
    "resume_run_async",
    "start_run",
    "start_run_async",
]
