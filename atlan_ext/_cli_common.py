"""What the ``atlan-lineage`` commands share: the failure they exit with, the values their
options take, the tenant and outbox they name, and how they print times and errors.

Nothing here imports pyatlan: each helper imports what it needs when it is called.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

__all__ = [
    "PROG",
    "Failure",
    "Parser",
    "add_command",
    "age",
    "api_key",
    "count",
    "duration",
    "exit_status_of",
    "lineage_outbox",
    "lineage_tenant",
    "log",
    "managed_outbox",
    "marks",
    "one_line",
    "rate",
    "setting_names",
    "tenant_of",
    "wait_delivered",
    "when",
]

PROG = "atlan-lineage"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
log = logging.getLogger("atlan_ext")


class Failure(Exception):
    """A clear message for stderr and an exit status; no traceback."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# -- option values -----------------------------------------------------------------------------


def duration(text: str, zero: bool = False) -> float:
    """A positive duration: seconds as a plain number (``90``, ``2.5``) or with a unit
    (``90s``, ``30m``, ``6h``, ``2d``); the same rule for every option that takes one."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([smhd]?)\s*", text)
    value = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else -1.0
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a {'' if zero else 'positive '}duration; use seconds (90) or a "
            "number and a unit: 90s, 30m, 6h, 2d"
        )
    return value


def age(text: str) -> float:
    """An age, as :func:`duration`; ``0`` means everything so far."""
    return duration(text, zero=True)


def count(text: str) -> int:
    """A positive whole number (``--limit``, ``--batch-size``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number, e.g. 100")
    return value


def rate(text: str) -> float:
    """Requests a minute, at most Atlan's limit of 400 (``courier --rate-limit``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 400:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of requests a minute between 1 and 400 (Atlan's limit)"
        )
    return value


# -- the tenant and the outbox -----------------------------------------------------------------


def tenant_of(args: argparse.Namespace) -> Any:
    """The tenant the options and environment name (no pyatlan import), or ``None``.
    A setting that is wrong raises :class:`Failure` naming it."""
    from atlan_ext.send import tenant_from_settings

    url_name, key_name = setting_names(args)
    tenant, problem = tenant_from_settings(
        args.base_url,
        api_key(args),
        getattr(args, "timeout", 10.0),
        url_name=url_name,
        key_name=key_name,
    )
    if problem is not None:
        raise Failure(problem)
    return tenant


def api_key(args: argparse.Namespace) -> Optional[str]:
    """The key from ``--api-key-file``, or ``None`` (the environment's is used); a file that
    cannot be read or is empty raises :class:`Failure` naming it."""
    if not args.api_key_file:
        return None
    try:
        key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise Failure(f"cannot read --api-key-file {args.api_key_file}: {reason}") from None
    if not key:
        raise Failure(f"--api-key-file {args.api_key_file} is empty")
    return key


def setting_names(args: argparse.Namespace) -> Tuple[str, str]:
    """How messages name the tenant's URL and key: the option given, else the variable."""
    return (
        "--base-url" if args.base_url else "ATLAN_BASE_URL",
        "--api-key-file" if args.api_key_file else "ATLAN_API_KEY",
    )


def lineage_tenant(args: argparse.Namespace) -> Any:
    """For commands that record lineage: a wrong setting never stops them; it is said
    once and the events are kept in the outbox."""
    try:
        return tenant_of(args) or None
    except Failure as failure:
        log.warning("atlan_ext: %s; lineage is kept in the outbox until it is fixed", failure)
        return "local"


def managed_outbox() -> Any:
    """The outbox, for the commands that manage it: one that cannot be opened is an error."""
    from atlan_ext.stores import open_outbox

    return open_outbox()


def lineage_outbox() -> Any:
    """The outbox, for the commands that record lineage: one that cannot be opened is said
    once, and the events are still sent from memory."""
    from atlan_ext.delivery import default_outbox

    return default_outbox()


def wait_delivered(outbox: Any, tenant: Any, timeout: float, run_id: Optional[str] = None) -> int:
    """Wait at most ``timeout`` s until the courier delivered the pending events (of
    ``run_id``, or all); stop early once the courier stopped (a setting to fix, or what is
    left was refused). Returns how many are still pending."""
    from atlan_ext._spawn import running

    def pending() -> int:
        if run_id is None:
            return int(outbox.counts()[0])
        return len(outbox.events(run_id, pending_only=True))

    deadline = time.monotonic() + timeout
    seen = False  # the courier took its lock (it starts in a moment)
    left = pending()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        works = running(outbox.path, tenant.base_url)
        left = pending()
        if seen and not works:
            break
        seen = seen or works
    return left


# -- output --------------------------------------------------------------------------------------


def marks() -> Tuple[str, str]:
    """✓ and ✗ where the terminal can show them."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAIL"
    return "✓", "✗"


def when(seconds: Optional[float]) -> str:
    """A moment (seconds since the epoch) in local time to the second, or ``-``."""
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def one_line(error: Exception) -> str:
    """An error as one line with no secret; unexpected ones say how to see more."""
    from atlan_ext.exceptions import AtlanExtError
    from atlan_ext.send import redact

    secrets = [value for value in (os.environ.get("ATLAN_API_KEY"),) if value]
    text = redact(" ".join(str(error).split()), secrets)
    if isinstance(error, AtlanExtError):
        return text
    if os.environ.get("ATLAN_EXT_DEBUG"):
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__)
    return (
        f"unexpected error ({type(error).__name__}: {text}); please report it, with the "
        "traceback that ATLAN_EXT_DEBUG=1 prints"
    )


def exit_status_of(error: Exception) -> int:
    """2 for bad input (a usage error), 1 for anything that went wrong at run time."""
    from atlan_ext.exceptions import AtlanExtError

    return 2 if isinstance(error, AtlanExtError) and isinstance(error, ValueError) else 1


class Parser(argparse.ArgumentParser):
    """argparse with whole option names only (``--con`` is no ``--connector``: a typo must
    not pick an option) and "did you mean" for an option it does not know."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Optional[Sequence[str]] = None, namespace: Any = None
    ) -> argparse.Namespace:
        parsed: argparse.Namespace
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._commands().get(getattr(parsed, "command", None) or "", self)
            known = [o for action in command._actions for o in action.option_strings]
            hints = []
            for extra in extras:
                typed = extra.partition("=")[0]
                # An abbreviation names the options it begins; a typo, the closest one.
                close = [o for o in known if typed.startswith("--") and o.startswith(typed)]
                close = close or difflib.get_close_matches(typed, known, n=1)
                if extra.startswith("-") and close:
                    hints.append(f"{extra} (did you mean {' or '.join(close)}?)")
                else:
                    hints.append(extra)
            command.error(f"unrecognized arguments: {' '.join(hints)}")
        return parsed

    def _commands(self) -> Dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}


def add_command(commands: Any, name: str, **options: Any) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` opens with what it does (its ``help``, unless it has a
    description of its own)."""
    text: str = options["help"]
    options.setdefault("description", f"{text[0].upper()}{text[1:]}.")
    parser: argparse.ArgumentParser = commands.add_parser(name, **options)
    return parser
