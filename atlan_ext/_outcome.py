"""How a run ended, as OpenLineage says it: the terminal state's errorMessage facet.

One message format for every FAIL and ABORT, whoever ends the run (a block, ``fail()``,
``wrap``, a step command, ``close-orphans``, SIGTERM), with every API key blanked out and
long texts clipped so that a run always ends.
"""

from __future__ import annotations

import signal
import traceback
from typing import Any, Callable, Dict, List, Optional, Union, cast

from atlan_ext import facets as _facets
from atlan_ext.send import redact
from atlan_ext.states import Outcome, RunState, terminal_state

__all__ = ["Aborted", "Failed", "failure", "outcome_facets", "outcome_message"]


class Failed(Exception):
    """Stands for ``fail(message)``: the message is the user's own words, kept as given."""


class Aborted(BaseException):
    """Stands for ``abort(reason)``: an interruption, not an error."""


def failure(error: Union[BaseException, str, None]) -> BaseException:
    if isinstance(error, BaseException):
        return error
    return Failed(error or "failed")


def outcome_message(outcome: Outcome) -> str:
    """The one message format of every FAIL and ABORT, whoever ends the run."""
    if isinstance(outcome, (Failed, Aborted)):
        return str(outcome)
    if isinstance(outcome, BaseException):
        text = str(outcome)
        return f"{type(outcome).__name__}: {text}" if text else type(outcome).__name__
    number = cast(int, outcome)
    if number > 0:
        return f"the command exited with status {number}"
    try:
        name = signal.Signals(-number).name
    except ValueError:
        name = f"signal {-number}"
    return f"killed by {name} ({-number})"


_MESSAGE_LIMIT = 10_000  # characters of an errorMessage kept (a run must end, however long)
_STACK_LIMIT = 200_000


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... ({len(text) - limit} characters left out) ...\n{text[-half:]}"


def outcome_facets(
    outcome: Outcome, include_stack_trace: bool, secrets_of_run: Callable[[], List[str]]
) -> Dict[str, Any]:
    """The errorMessage facet for how a unit of work ended (none for success), with every
    API key ``secrets_of_run()`` gives blanked out (the user's own message may hold one);
    a success asks for none."""
    if terminal_state(outcome) is RunState.COMPLETE:
        return {}
    secrets = secrets_of_run()
    stack: Optional[str] = None
    if (
        include_stack_trace
        and isinstance(outcome, BaseException)
        and not isinstance(outcome, (Failed, Aborted))
    ):
        stack = "".join(traceback.format_exception(type(outcome), outcome, outcome.__traceback__))
    message = _clip(redact(outcome_message(outcome), secrets), _MESSAGE_LIMIT)
    if stack is not None:
        stack = _clip(redact(stack, secrets), _STACK_LIMIT)
    return {"errorMessage": _facets.error_message(message, stack_trace=stack)}
