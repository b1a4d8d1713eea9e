"""The checked run-state mapping, the transition matrix and the outcome table."""

from __future__ import annotations

import asyncio
import enum
import itertools
from typing import Optional

import pytest
from openlineage.client import event_v2 as ol_v2
from openlineage.client import run as ol_run
from pyatlan.model.enums import OpenLineageEventType, OpenLineageRunState

from atlan_ext import (
    AtlanExtError,
    InvalidOutcomeError,
    InvalidTransitionError,
    RunState,
    UnknownRunStateError,
    check_transition,
    terminal_state,
)

NAMES = ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]
FOREIGN = [OpenLineageEventType, OpenLineageRunState, ol_run.RunState, ol_v2.RunState]


class TestRunState:
    def test_members(self) -> None:
        """RunState is a str Enum of exactly the six states, value equal to name."""
        assert [state.name for state in RunState] == NAMES
        assert all(state.value == state.name and isinstance(state, str) for state in RunState)
        assert {state for state in RunState if state.is_terminal} == {
            RunState.COMPLETE,
            RunState.ABORT,
            RunState.FAIL,
        }

    @pytest.mark.parametrize("foreign", FOREIGN, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
    def test_mapping_is_total_and_one_to_one(self, foreign: type) -> None:
        """Every member of every installed foreign enum maps to one RunState and back, so a
        release that adds, drops or renames a state fails here."""
        members = list(foreign)  # type: ignore[call-overload]
        assert sorted(member.value for member in members) == sorted(NAMES)
        images = {RunState.coerce(member) for member in members}
        assert images == set(RunState)

    @pytest.mark.parametrize("state", list(RunState))
    def test_conversions_round_trip(self, state: RunState) -> None:
        """to_* gives the foreign member of the same value, which coerces back."""
        assert state.to_event_type() is OpenLineageEventType(state.value)
        assert state.to_atlan_run_state() is OpenLineageRunState(state.value)
        assert state.to_openlineage() is ol_v2.RunState(state.value)
        for converted in (
            state.to_event_type(),
            state.to_atlan_run_state(),
            state.to_openlineage(),
        ):
            assert RunState.coerce(converted) is state
        assert RunState.coerce(ol_run.RunState(state.value)) is state

    def test_openlineage_classes_differ(self) -> None:
        """The two openlineage-python classes really are different (why we match by value)."""
        assert ol_run.RunState.START != ol_v2.RunState.START

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("START", RunState.START),
            (" complete ", RunState.COMPLETE),
            ("Fail\n", RunState.FAIL),
            ("running", RunState.RUNNING),
            ("aBoRt", RunState.ABORT),
            ("other", RunState.OTHER),
        ],
    )
    def test_strings(self, text: str, expected: RunState) -> None:
        """Strings are trimmed and matched in any case."""
        assert RunState.coerce(text) is expected

    class Unrelated(enum.Enum):
        START = "START"

    class UnrelatedStr(str, enum.Enum):
        START = "START"

    @pytest.mark.parametrize(
        "value",
        [
            None,
            "COMPLETED",
            "",
            "  ",
            3,
            0,
            True,
            b"START",
            Unrelated.START,
            UnrelatedStr.START,
            ["START"],
            object(),
        ],
    )
    def test_anything_else_is_refused(self, value: object) -> None:
        """Anything else raises UnknownRunStateError, a ValueError naming the value and the
        valid states."""
        with pytest.raises(UnknownRunStateError) as caught:
            RunState.coerce(value)
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, AtlanExtError)
        message = str(caught.value)
        assert repr(value) in message
        assert "START, RUNNING, COMPLETE, ABORT, FAIL, OTHER" in message

    def test_near_miss_suggests(self) -> None:
        """A near miss says which state was probably meant."""
        with pytest.raises(UnknownRunStateError, match="did you mean COMPLETE"):
            RunState.coerce("COMPLETED")

    def test_unmappable_state_fails_at_conversion(self) -> None:
        """A target enum that lacks a state fails at the point of conversion, clearly."""
        from atlan_ext.states import _convert

        class Shrunk(enum.Enum):
            START = "START"

        with pytest.raises(UnknownRunStateError, match="has no member for FAIL"):
            _convert(RunState.FAIL, Shrunk)


LIFECYCLE_BEFORE: list[Optional[RunState]] = [
    None,
    RunState.START,
    RunState.RUNNING,
    RunState.COMPLETE,
    RunState.ABORT,
    RunState.FAIL,
]


def legal(before: Optional[RunState], new: RunState) -> bool:
    """The run cycle, written out independently of the implementation."""
    if new is RunState.OTHER:  # the spec: OTHER may be added to a run, also once it ended
        return True
    if before is None:
        return new is RunState.START
    if before.is_terminal:
        return False
    return new is not RunState.START


class TestTransitions:
    @pytest.mark.parametrize(
        ("before", "new"),
        list(itertools.product(LIFECYCLE_BEFORE, list(RunState))),
        ids=lambda v: str(v),
    )
    def test_every_pair(self, before: Optional[RunState], new: RunState) -> None:
        """Each (previous, new) pair is legal or raises InvalidTransitionError naming both."""
        if legal(before, new):
            assert check_transition(before, new) is new
            return
        with pytest.raises(InvalidTransitionError) as caught:
            check_transition(before, new)
        assert new.value in str(caught.value)
        if before is not None:
            assert before.value in str(caught.value)
        assert isinstance(caught.value, ValueError)

    def test_accepts_any_representation(self) -> None:
        """Both arguments are coerced."""
        assert check_transition(OpenLineageEventType.START, "running") is RunState.RUNNING

    def test_previous_is_never_other(self) -> None:
        """OTHER is not a lifecycle state; passing it as previous is an error that says so."""
        with pytest.raises(InvalidTransitionError, match="OTHER is not a lifecycle state"):
            check_transition(RunState.OTHER, RunState.RUNNING)

    def test_unknown_state(self) -> None:
        """An unknown state is an UnknownRunStateError, not a transition error."""
        with pytest.raises(UnknownRunStateError):
            check_transition(None, "BEGIN")


class Interruption(BaseException):
    pass


class TestTerminalState:
    @pytest.mark.parametrize(
        ("outcome", "expected"),
        [
            (None, RunState.COMPLETE),
            (0, RunState.COMPLETE),
            (1, RunState.FAIL),
            (3, RunState.FAIL),
            (255, RunState.FAIL),
            (-15, RunState.ABORT),
            (-9, RunState.ABORT),
            (ValueError("bad"), RunState.FAIL),
            (RuntimeError(), RunState.FAIL),
            (KeyboardInterrupt(), RunState.ABORT),
            (asyncio.CancelledError(), RunState.ABORT),
            (GeneratorExit(), RunState.ABORT),
            (SystemExit(0), RunState.COMPLETE),
            (SystemExit(None), RunState.COMPLETE),
            (SystemExit(), RunState.COMPLETE),
            (SystemExit(2), RunState.FAIL),
            (SystemExit("fatal: message"), RunState.FAIL),
            (Interruption(), RunState.ABORT),
        ],
        ids=repr,
    )
    def test_outcome_table(self, outcome: object, expected: RunState) -> None:
        """How a unit of work ended decides its terminal state."""
        assert terminal_state(outcome) is expected  # type: ignore[arg-type]

    @pytest.mark.parametrize("outcome", [True, False, "0", 1.0, ValueError])
    def test_bad_outcome(self, outcome: object) -> None:
        """Anything else is an InvalidOutcomeError naming the value."""
        with pytest.raises(InvalidOutcomeError, match="is not an outcome"):
            terminal_state(outcome)  # type: ignore[arg-type]
