"""The checked run-state mapping: one :class:`RunState` for every representation of the six
OpenLineage run states, the run cycle's legal transitions, and how a unit of work ended.

The same six states exist as four unrelated types: pyatlan's ``OpenLineageEventType`` (a plain
Enum) and ``OpenLineageRunState`` (a str Enum), and openlineage-python's ``run.RunState`` and
``event_v2.RunState`` (two different classes that do not compare equal). :meth:`RunState.coerce`
accepts all of them, by value, plus plain strings; the ``to_*`` methods convert back.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import sys
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

from atlan_ext._values import run_key
from atlan_ext.exceptions import (
    AtlanExtError,
    InvalidOutcomeError,
    InvalidTransitionError,
    MissingDependencyError,
    UnknownRunStateError,
)

__all__ = ["RunState", "check_transition", "run_cycle_problems", "terminal_state"]

# Where the foreign run-state enums live: (module, attribute). An instance of one of them can
# exist only once its module is imported, so recognising them never imports anything.
_FOREIGN_ENUMS = (
    ("pyatlan.model.enums", "OpenLineageEventType"),
    ("pyatlan.model.enums", "OpenLineageRunState"),
    ("openlineage.client.run", "RunState"),
    ("openlineage.client.event_v2", "RunState"),
    ("openlineage.client.generated.base", "EventType"),
)


def _foreign_enum_classes() -> Tuple[type, ...]:
    found = []
    for module_name, attribute in _FOREIGN_ENUMS:
        module = sys.modules.get(module_name)
        cls = getattr(module, attribute, None) if module is not None else None
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


class RunState(str, enum.Enum):
    """One of the six OpenLineage run states; the value equals the name.

    >>> RunState.coerce(" complete ")
    <RunState.COMPLETE: 'COMPLETE'>
    >>> RunState.FAIL.is_terminal
    True
    """

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETE, ABORT and FAIL: the states that end a run."""
        return self in _TERMINAL

    @classmethod
    def coerce(cls, value: object) -> RunState:
        """Return the :class:`RunState` for ``value``.

        Accepts a ``RunState``, pyatlan's ``OpenLineageEventType`` or ``OpenLineageRunState``,
        openlineage-python's ``run.RunState`` or ``event_v2.RunState`` (matched by value), or a
        string in any case with surrounding space. Raises :class:`UnknownRunStateError`, naming
        the value and the valid states, for anything else.
        """
        if isinstance(value, RunState):
            return value
        if isinstance(value, enum.Enum):
            if isinstance(value, _foreign_enum_classes()) and value.value in cls.__members__:
                return cls[value.value]
        elif isinstance(value, str):
            key = value.strip().upper()
            if key in cls.__members__:
                return cls[key]
        raise UnknownRunStateError(_unknown_message(value))

    def to_event_type(self) -> Any:
        """This state as pyatlan's ``OpenLineageEventType`` (used by ``OpenLineageEvent``)."""
        from pyatlan.model.enums import OpenLineageEventType

        return _convert(self, OpenLineageEventType)

    def to_atlan_run_state(self) -> Any:
        """This state as pyatlan's ``OpenLineageRunState`` (the state stored on assets)."""
        from pyatlan.model.enums import OpenLineageRunState

        return _convert(self, OpenLineageRunState)

    def to_openlineage(self) -> Any:
        """This state as openlineage-python's ``event_v2.RunState``.

        Needs the ``openlineage`` extra: ``pip install 'atlan-ext[openlineage]'``.
        """
        try:
            from openlineage.client.event_v2 import RunState as OpenLineageRunState
        except ImportError as error:
            raise MissingDependencyError(
                "RunState.to_openlineage() needs openlineage-python; "
                "install it with: pip install 'atlan-ext[openlineage]'"
            ) from error
        return _convert(self, OpenLineageRunState)


_TERMINAL = frozenset({RunState.COMPLETE, RunState.ABORT, RunState.FAIL})
_VALID = ", ".join(RunState.__members__)


def _unknown_message(value: object) -> str:
    message = f"{value!r} is not a run state; expected one of {_VALID}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value.strip().upper(), RunState.__members__, n=1)
        if close:
            message += f" (did you mean {close[0]}?)"
    return message


def _convert(state: RunState, target: Any) -> Any:
    try:
        return target(state.value)
    except ValueError:
        raise UnknownRunStateError(
            f"{target.__module__}.{target.__qualname__} has no member for {state.value}; "
            f"it has {', '.join(m.value for m in target)}. "
            "The installed release changed its run states: pin the previous release."
        ) from None


def check_transition(previous: Optional[object], new: object) -> RunState:
    """Check that ``new`` may follow ``previous`` in one run, and return ``new`` as a RunState.

    ``previous`` is the run's lifecycle state so far: the last of START, RUNNING, COMPLETE,
    ABORT or FAIL sent for the run, or ``None`` when none was sent (OTHER never changes it).
    START comes once and first among lifecycle events; RUNNING any number of times after START;
    exactly one of COMPLETE, ABORT or FAIL after START. OTHER may come at any time, also
    after the terminal event: the spec's ``eventType`` says "additional events with OTHER
    eventType can be added to the same run, for example to send additional metadata after
    the run is complete". OTHER before START is allowed too, deliberately: the spec puts no
    order on OTHER, and events of one run may be sent from different places; the run still
    needs its START and terminal event (:func:`run_cycle_problems` says so when they are
    missing). Anything else raises :class:`InvalidTransitionError`.
    """
    if (
        type(new) is RunState
        and (previous is None or type(previous) is RunState)
        and (previous, new) in _LEGAL
    ):  # a run's own states, and legal: the common case, in one look-up
        return new
    state = RunState.coerce(new)
    if previous is None:
        if state in (RunState.START, RunState.OTHER):
            return state
        raise InvalidTransitionError(f"{state} cannot come before START: a run begins with START")
    before = RunState.coerce(previous)
    if before is RunState.OTHER:
        raise InvalidTransitionError(
            "OTHER is not a lifecycle state: pass the last of START, RUNNING, COMPLETE, "
            "ABORT or FAIL sent for the run, or None when none was sent"
        )
    if state is RunState.OTHER:
        return state
    if before.is_terminal:
        raise InvalidTransitionError(
            f"{state} cannot follow {before}: the run already ended with {before}; only "
            "OTHER (more metadata) may follow the terminal event"
        )
    if state is RunState.START:
        raise InvalidTransitionError(
            f"START cannot follow {before}: a run sends START once; use a new run id"
        )
    return state


def _legal_pairs() -> FrozenSet[Tuple[Optional[RunState], RunState]]:
    """Every (previous, new) pair of RunStates that :func:`check_transition` allows, found by
    asking its rule once, so that a run's own checks look one pair up."""
    pairs = set()
    for previous in (None, *RunState):
        for new in RunState:
            with contextlib.suppress(InvalidTransitionError):
                check_transition(previous, new)
                pairs.add((previous, new))
    return frozenset(pairs)


_LEGAL: FrozenSet[Tuple[Optional[RunState], RunState]] = frozenset()
_LEGAL = _legal_pairs()


def run_cycle_problems(events: Sequence[Any]) -> List[Tuple[int, str]]:
    """The one run-cycle rule, over many runs' events in the order given: ``(index,
    message)`` for each event that :func:`check_transition` refuses after its run's earlier
    ones, and ``(-1, message)`` for each run that has no terminal event. Events without a run
    id or a run state are passed over (they are some other check's business). Run ids are
    compared as UUIDs: case never splits a run. Used by ``atlan-lineage validate`` and
    :func:`atlan_ext.testing.assert_paired`; the outbox applies the same
    :func:`check_transition` to each event it stores for a remembered run."""
    lifecycle: Dict[str, Optional[RunState]] = {}
    found: List[Tuple[int, str]] = []
    for index, event in enumerate(events):
        try:
            run_id = run_key(event["run"]["runId"])
            state = RunState.coerce(event["eventType"])
        except (AtlanExtError, KeyError, TypeError, AttributeError):
            continue
        try:
            check_transition(lifecycle.get(run_id), state)
        except InvalidTransitionError as error:
            found.append((index, f"run {run_id}: {error}"))
            continue
        if state is not RunState.OTHER:
            lifecycle[run_id] = state
        else:
            lifecycle.setdefault(run_id, None)
    for run_id, last in lifecycle.items():
        if last is None:
            found.append((-1, f"run {run_id}: no START and no terminal event, only OTHER"))
        elif not last.is_terminal:
            found.append(
                (-1, f"run {run_id}: no terminal event (COMPLETE, FAIL or ABORT) after {last}")
            )
    return found


Outcome = Union[None, int, BaseException]


def terminal_state(outcome: Outcome) -> RunState:
    """The terminal state for how a unit of work ended.

    ``outcome`` is ``None`` (it returned normally), the exception it raised, or a process exit
    status as :mod:`subprocess` reports it (negative: killed by that signal).

    - ``None``, ``0``, ``SystemExit(0)`` and ``SystemExit(None)`` → COMPLETE;
    - an ``Exception``, a positive status and any other ``SystemExit`` → FAIL;
    - ``KeyboardInterrupt``, ``asyncio.CancelledError``, ``GeneratorExit``, a negative status
      and other ``BaseException`` subclasses (interruptions, not errors) → ABORT.
    """
    if outcome is None:
        return RunState.COMPLETE
    if isinstance(outcome, bool) or not isinstance(outcome, (int, BaseException)):
        raise InvalidOutcomeError(
            f"{outcome!r} is not an outcome; pass None (returned normally), the exception "
            "raised, or the process exit status"
        )
    if isinstance(outcome, int):
        if outcome == 0:
            return RunState.COMPLETE
        return RunState.FAIL if outcome > 0 else RunState.ABORT
    if isinstance(outcome, SystemExit):
        return RunState.COMPLETE if outcome.code in (0, None) else RunState.FAIL
    if isinstance(outcome, Exception):
        return RunState.FAIL
    # KeyboardInterrupt, GeneratorExit, asyncio.CancelledError (a BaseException since 3.8)
    # and other BaseExceptions are interruptions: the work neither succeeded nor failed.
    return RunState.ABORT
