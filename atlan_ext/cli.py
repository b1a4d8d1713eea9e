"""``atlan-lineage``: lineage for shell scripts and schedulers, and the outbox's tools.

``--help`` answers without importing pyatlan: only the sub-commands that send import it.
The API key comes from ``ATLAN_API_KEY`` or ``--api-key-file``, never from a flag (process
lists show flags).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["main"]

_PROG = "atlan-lineage"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
log = logging.getLogger("atlan_ext")


class _Failure(Exception):
    """A clear message for stderr and an exit status; no traceback."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _duration(text: str, zero: bool = False) -> float:
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


def _age(text: str) -> float:
    """An age, as :func:`_duration`; ``0`` means everything so far."""
    return _duration(text, zero=True)


_DURATION_OPTIONS = ("--timeout", "--time-limit", "--older-than")


def _joined_durations(argv: Sequence[str]) -> List[str]:
    """``--older-than -1d`` as ``--older-than=-1d``: argparse would take ``-1d`` for an option
    and say "expected one argument"; joined, the value is judged (and refused) as a duration."""
    joined: List[str] = []
    for item in argv:
        negative = item[:1] == "-" and (item[1:2].isdigit() or item[1:2] == ".")
        if negative and joined and joined[-1] in _DURATION_OPTIONS:
            joined[-1] = f"{joined[-1]}={item}"
        else:
            joined.append(item)
    return joined


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number, e.g. 100")
    return value


class _Parser(argparse.ArgumentParser):
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


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Report OpenLineage runs to Atlan; keep what cannot be delivered in a "
        "local outbox (ATLAN_EXT_HOME) and send it later.",
        epilog="Tenant: ATLAN_BASE_URL and ATLAN_API_KEY. With neither, events are kept locally.",
    )

    def tenant_options(command: argparse.ArgumentParser, default: Any) -> None:
        # Before or after the sub-command: `atlan-lineage --base-url U replay` and
        # `atlan-lineage replay --base-url U` mean the same.
        command.add_argument(
            "--base-url", default=default, help="the Atlan tenant (default: $ATLAN_BASE_URL)"
        )
        command.add_argument(
            "--api-key-file",
            default=default,
            help="a file holding the API key (default: $ATLAN_API_KEY)",
        )

    tenant_options(parser, None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def job_options(command: argparse.ArgumentParser, required: bool = True) -> None:
        command.add_argument(
            "--connection", required=required, help="the Atlan OpenLineage connection"
        )
        command.add_argument("--job", required=required, help="the job's name")
        command.add_argument("--input", action="append", default=[], metavar="URI")
        command.add_argument("--output", action="append", default=[], metavar="URI")
        command.add_argument("--connector", default="spark", help="connector type (default spark)")
        command.add_argument(
            "--job-type", help="jobType facet: JOB (default; wrap: COMMAND), DAG, APPLICATION..."
        )

    def timeout_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--timeout",
            type=_duration,
            default=10.0,
            help="longest wait for Atlan, e.g. 10 or 30s (default 10 s)",
        )

    def wait_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--wait",
            action="store_true",
            help="return only once Atlan accepted the event (at most --timeout): use it when "
            "the run's next step runs on another host",
        )

    wrap = commands.add_parser(
        "wrap",
        help="run a command as one lineage run",
        description="Send START, run CMD, send COMPLETE, FAIL or ABORT, "
        "and exit with CMD's own status.",
    )
    job_options(wrap)
    wrap.add_argument("--run-id", help="use this run id (a UUID) instead of a new one")
    timeout_option(wrap)
    wrap.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")

    start = commands.add_parser("start", help="start a run; prints its run id")
    job_options(start)
    start.add_argument("--run-id", help="use this run id (a UUID) instead of a new one")
    timeout_option(start)
    wait_option(start)
    for name, text in (
        ("running", "send RUNNING"),
        ("other", "send OTHER"),
        ("complete", "end the run with COMPLETE"),
        ("fail", "end the run with FAIL"),
        ("abort", "end the run with ABORT"),
    ):
        step = commands.add_parser(
            name,
            help=f"{text} for --run-id",
            description=f"{text[0].upper()}{text[1:]} for a run started earlier. The job and "
            "datasets come from this machine's outbox; for a run started on another host, "
            "give --connection and --job (and its datasets).",
        )
        step.add_argument("--run-id", required=True)
        job_options(step, required=False)
        timeout_option(step)
        wait_option(step)
        if name == "fail":
            step.add_argument("--message", default="failed")
        if name == "abort":
            step.add_argument("--reason", default="aborted")

    run_id = commands.add_parser(
        "run-id",
        help="print the run id of a key (RunId.from_key)",
        description="Print the same run id as Python's RunId.from_key(*parts) for the same "
        "strings, so every host of a run computes its id alike.",
    )
    run_id.add_argument("--key", nargs="+", required=True, metavar="PART")

    replay = commands.add_parser("replay", help="send what the outbox holds")
    replay.add_argument("--time-limit", type=_duration, default=300.0, help="e.g. 5m (default)")
    replay.add_argument("--limit", type=_count, help="at most this many events")
    replay.add_argument(
        "--batch-size", type=_count, default=100, help="events per request (default 100)"
    )

    flush = commands.add_parser(
        "flush",
        help="wait until the outbox's events are delivered (e.g. before a container exits)",
        description="Make sure a courier delivers the outbox's pending events and wait for "
        "it: exit 0 once nothing is pending, 1 if some are still pending after --timeout.",
    )
    flush.add_argument(
        "--timeout", type=_duration, default=60.0, help="longest wait, e.g. 30s or 5m (default 60s)"
    )

    doctor = commands.add_parser(
        "doctor",
        help="check the settings, the outbox, the tenant and the connection, with fixes",
        description="One line per check, each with its fix: the tenant settings (the key is "
        "never printed), the outbox, that the tenant answers and accepts the key (a wrong "
        "address, a wrong key and a tenant that is down are told apart), that the connector's "
        "lineage endpoint is configured (asked with an empty batch: no lineage is created), "
        "and (with --connection) that an OpenLineage connection of that name exists for the "
        "connector, listing those that do when it does not. Exit 0 only when every check passes.",
    )
    doctor.add_argument("--connection", help="the OpenLineage connection your jobs name")
    doctor.add_argument("--connector", default="spark", help="its connector (default spark)")

    verify = commands.add_parser(
        "verify",
        help="did the run's lineage land? job, process and each dataset, as Atlan has them",
        description="An HTTP 202 means Atlan took the events; it builds the assets later. "
        "From what this machine's outbox knows of the run, ask Atlan's search (polling until "
        "found or --wait) for the OpenLineage connection, the job, its process and each "
        "dataset: linked (a crawled asset), partial (a stand-in: the name matched no crawled "
        "asset) or missing. One line per finding, with its hint. Exit 0 when the job and every "
        "dataset are linked, 1 when something is partial or missing, 2 when nothing was found.",
    )
    verify.add_argument("run_id", metavar="RUN_ID")
    verify.add_argument(
        "--wait",
        type=_age,
        default=60.0,
        help="longest wait, e.g. 0 (one look), 60s, 5m (default 60s)",
    )
    verify.add_argument("--format", choices=("text", "json"), default="text")

    lint = commands.add_parser(
        "lint",
        help="check dataset names against the OpenLineage naming spec: files or run ids",
        description="Flag dataset names that break the OpenLineage naming spec for their "
        "scheme (postgres://host without a port, a Snowflake host name for the account, S3 keys "
        "with a leading slash...) and predict which become partial assets in Atlan. With a "
        "tenant configured (and not --offline), also look for the crawled assets that would "
        "match. Exit 1 when a name breaks the spec.",
    )
    lint.add_argument("targets", nargs="+", metavar="FILE|RUN_ID")
    lint.add_argument("--offline", action="store_true", help="do not ask Atlan")
    lint.add_argument("--format", choices=("text", "json"), default="text")

    prune = commands.add_parser(
        "prune",
        help="delete delivered events now (done hourly anyway, after ATLAN_EXT_RETENTION_DAYS)",
    )
    prune.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="delivered more than this long ago: 1d, 12h, 0s (default: the retention, 7d)",
    )

    status = commands.add_parser("status", help="list runs and the delivery of their events")
    status.add_argument("--run-id", help="only this run")
    status.add_argument("--limit", type=_count, default=20, help="runs to show (default 20)")

    validate = commands.add_parser(
        "validate",
        help="check events: files, folders or - (stdin); JSON, JSONL or a JSON array",
        description="Check events. Two judges, each named on its findings: openlineage (the "
        "official 2-0-2 schema and every standard facet, from OPENLINEAGE_SPEC_DIR, as "
        "OpenLineage's own tools judge) and atlan (atlan-ext's stricter rules for what it "
        "sends to Atlan, and the run cycle over all events given together, by event time). "
        "Exit 1 on errors; notes do not fail.",
    )
    validate.add_argument("files", nargs="+", metavar="PATH")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument(
        "--rules",
        choices=("atlan", "openlineage"),
        default="atlan",
        help="atlan (default): both judges; openlineage: the official schema's verdict alone "
        "(needs OPENLINEAGE_SPEC_DIR; the run cycle only noted)",
    )
    validate.add_argument(
        "--no-formats",
        dest="formats",
        action="store_false",
        help="do not assert date-time, uri and uuid formats (as the compatibility tests do)",
    )
    validate.add_argument(
        "--lint",
        action="store_true",
        help="also check dataset names against the OpenLineage naming spec (atlan-lineage lint)",
    )

    commands.add_parser("states", help="print the run-state mapping table")

    courier = commands.add_parser(
        "courier",
        help="deliver the outbox's events as a service (e.g. a Deployment beside the workers)",
        description="Run in the foreground until SIGTERM (exit 0 after the request in flight): "
        "deliver the outbox's events, oldest first, a run's in order, at most --rate-limit "
        "requests a minute for all couriers sharing the outbox; a 429 pauses them all. Workers "
        "on a shared (PostgreSQL) outbox start no courier of their own while one runs.",
    )
    courier.add_argument(
        "--outbox",
        metavar="PATH_OR_URL",
        help="the outbox: a path or postgresql://user@host:port/db (default: ATLAN_EXT_OUTBOX, "
        "else the local outbox)",
    )
    courier.add_argument(
        "--rate-limit",
        type=_rate,
        default=400.0,
        metavar="N",
        help="requests a minute to the tenant, for all couriers together (default 400, "
        "Atlan's limit per tenant)",
    )

    orphans = commands.add_parser(
        "close-orphans", help="end runs whose process died without a terminal event (ABORT)"
    )
    orphans.add_argument(
        "--older-than",
        type=_age,
        required=True,
        metavar="AGE",
        help="only runs not heard from for this long: 30m, 6h, 2d",
    )
    orphans.add_argument("--dry-run", action="store_true", help="list them, send nothing")
    timeout_option(orphans)
    for command in commands.choices.values():
        tenant_options(command, argparse.SUPPRESS)
    return parser


# -- shared helpers ----------------------------------------------------------------------------


def _tenant(args: argparse.Namespace) -> Any:
    """The tenant the options and environment name (no pyatlan import), or ``None``.
    A setting that is wrong raises :class:`_Failure` naming it."""
    from atlan_ext.send import tenant_from_settings

    url_name, key_name = _setting_names(args)
    tenant, problem = tenant_from_settings(
        args.base_url,
        _api_key(args),
        getattr(args, "timeout", 10.0),
        url_name=url_name,
        key_name=key_name,
    )
    if problem is not None:
        raise _Failure(problem)
    return tenant


def _api_key(args: argparse.Namespace) -> Optional[str]:
    """The key from ``--api-key-file``, or ``None`` (the environment's is used); a file that
    cannot be read or is empty raises :class:`_Failure` naming it."""
    if not args.api_key_file:
        return None
    try:
        key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not a text file"
        raise _Failure(f"cannot read --api-key-file {args.api_key_file}: {reason}") from None
    if not key:
        raise _Failure(f"--api-key-file {args.api_key_file} is empty")
    return key


def _setting_names(args: argparse.Namespace) -> Tuple[str, str]:
    """How messages name the tenant's URL and key: the option given, else the variable."""
    return (
        "--base-url" if args.base_url else "ATLAN_BASE_URL",
        "--api-key-file" if args.api_key_file else "ATLAN_API_KEY",
    )


def _lineage_tenant(args: argparse.Namespace) -> Any:
    """For commands that record lineage: a wrong setting never stops them; it is said
    once and the events are kept in the outbox."""
    try:
        return _tenant(args) or None
    except _Failure as failure:
        log.warning("atlan_ext: %s; lineage is kept in the outbox until it is fixed", failure)
        return "local"


def _outbox() -> Any:
    """The outbox, for the commands that manage it: one that cannot be opened is an error."""
    from atlan_ext.stores import open_outbox

    return open_outbox()


def _lineage_outbox() -> Any:
    """The outbox, for the commands that record lineage: one that cannot be opened is said
    once, and the events are still sent from memory."""
    from atlan_ext.delivery import default_outbox

    return default_outbox()


def _job(args: argparse.Namespace) -> Any:
    from atlan_ext.events import Job

    # The jobType facet by default: a command `wrap` runs, else a job of a script's steps.
    default = "COMMAND" if args.command == "wrap" else "JOB"
    return Job(args.connection, args.job, job_type=args.job_type or default)


# -- wrap and the one-step commands ------------------------------------------------------------


def _run_options(args: argparse.Namespace, outbox: Any, **options: Any) -> Dict[str, Any]:
    from atlan_ext.send import Tenant

    client = _lineage_tenant(args)
    if isinstance(client, Tenant) and args.command != "wrap":
        if outbox.path != ":memory:":
            # A step command stores its event and returns; a courier process delivers it.
            args.courier = (client, outbox)
            client = "local"
        else:
            # No outbox a courier could read: the step sends its event itself, waiting up to
            # --timeout, and fails (no run id printed) when Atlan did not take it.
            options.setdefault("strict", True)
    return {
        "client": client,
        "connector_type": getattr(args, "connector", "spark"),
        "delivery_timeout": args.timeout,
        "outbox": outbox,
        **options,
    }


def _wrap(args: argparse.Namespace) -> int:
    from atlan_ext.delivery import flush
    from atlan_ext.run import start_run

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise _Failure(
            "wrap needs a command after --, e.g. atlan-lineage wrap ... -- python job.py"
        )
    # In the background: START does not hold the command's start; at the end, delivery gets
    # at most --timeout before wrap exits, and what is left stays in the outbox.
    run = start_run(
        _job(args),
        inputs=args.input,
        outputs=args.output,
        run_id=args.run_id,
        **_run_options(args, _lineage_outbox(), background=True),
    )
    # OpenLineage-aware children (dbt-ol, openlineage-python, atlan-ext) nest under this run.
    child_env = {**os.environ, **run.child_env()}
    try:
        child = subprocess.Popen(command, env=child_env)  # noqa: S603 - the user's command
    except OSError as error:
        run.end(127)
        flush(args.timeout)
        raise _Failure(f"cannot run {command[0]!r}: {error.strerror}", 127) from None

    def forward(number: int, frame: Any) -> None:
        # Ctrl-C on a terminal already reached the command (it is in our foreground process
        # group); sending SIGINT again would interrupt its clean-up. Any other SIGINT, and
        # every SIGTERM, is passed on.
        if number == signal.SIGINT and _foreground_on_terminal():
            return
        if child.poll() is None:
            child.send_signal(number)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        run.end(code)  # the one way every run ends
        flush(args.timeout)
    except Exception as error:  # lineage never changes the command's status
        log.warning("atlan_ext: terminal event not recorded: %s", error)
    return 128 - code if code < 0 else code


def _foreground_on_terminal() -> bool:
    """True when this process group is the foreground job of the controlling terminal."""
    try:
        with open("/dev/tty") as tty:  # noqa: PTH123 - a device, not a path to manipulate
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except OSError:
        return False


def _start(args: argparse.Namespace) -> int:
    from atlan_ext.events import RunId
    from atlan_ext.run import start_run

    outbox = _lineage_outbox()
    if args.run_id and outbox.run(RunId.check(args.run_id)) is not None:
        raise _Failure(f"run {args.run_id} was already started; use a new run id")
    run = start_run(
        _job(args),
        inputs=args.input,
        outputs=args.output,
        run_id=args.run_id,
        **_run_options(args, outbox),
    )
    args.run_id_done = run.run_id
    print(run.run_id)
    return 0


def _resume(
    record: Any,
    outbox: Any,
    args: argparse.Namespace,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
) -> Any:
    """The run the outbox remembers, taken up here: its job, datasets and connector."""
    from atlan_ext.events import Dataset, Job
    from atlan_ext.run import resume_run

    def datasets(stored: Sequence[Dict[str, Any]], uris: Sequence[str]) -> List[Any]:
        remembered = [
            Dataset(
                d["namespace"],
                d["name"],
                d.get("facets") or {},
                input_facets=d.get("inputFacets") or {},
                output_facets=d.get("outputFacets") or {},
            )
            for d in stored
        ]
        return [*remembered, *uris]

    job = Job(record.job_namespace, record.job_name, facets=record.job.get("facets") or {})
    return resume_run(
        job,
        record.run_id,
        inputs=datasets(record.inputs, inputs),
        outputs=datasets(record.outputs, outputs),
        **_run_options(args, outbox, connector_type=record.connector),
    )


def _step(args: argparse.Namespace) -> int:
    from atlan_ext.events import RunId
    from atlan_ext.run import resume_run

    outbox = _lineage_outbox()
    run_id = RunId.check(args.run_id)
    record = outbox.run(run_id)
    if record is not None:
        if (args.connection, args.job) != (None, None) and (
            args.connection != record.job_namespace or args.job != record.job_name
        ):
            raise _Failure(
                f"run {run_id} belongs to job {record.job_namespace}/{record.job_name} in "
                f"{outbox.path}, not {args.connection}/{args.job}"
            )
        run = _resume(record, outbox, args, args.input, args.output)
    elif args.connection and args.job:
        print(
            f"{_PROG}: no record of run {run_id} in {outbox.path} (started on another host?): "
            f"sending {args.command.upper()} for {args.connection}/{args.job} without "
            "checking the run's earlier states here",
            file=sys.stderr,
        )
        run = resume_run(
            _job(args),
            run_id,
            inputs=args.input,
            outputs=args.output,
            **_run_options(args, outbox),
        )
    elif outbox.path == ":memory:":
        raise _Failure(
            f"no outbox works here (see the warning above), so nothing is known of run "
            f"{run_id}: give --connection and --job to send {args.command.upper()} for it"
        )
    else:
        raise _Failure(
            f"unknown run id {run_id} in {outbox.path}: start the run first with "
            f"`{_PROG} start`, or, for a run started on another host, give "
            "--connection and --job"
        )
    if args.command == "running":
        run.running()
    elif args.command == "other":
        run.other()
    elif args.command == "complete":
        run.complete()
    elif args.command == "fail":
        run.fail(args.message)
    else:
        run.abort(args.reason)
    args.run_id_done = run.run_id
    return 0


def _run_id(args: argparse.Namespace) -> int:
    from atlan_ext.events import RunId

    print(RunId.from_key(*args.key))
    return 0


# -- outbox tools --------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from atlan_ext.courier import drain

    tenant = _tenant(args)
    if tenant is None:
        raise _Failure(
            "no Atlan tenant configured: set ATLAN_BASE_URL and ATLAN_API_KEY "
            "(or --base-url and --api-key-file), then replay"
        )
    outbox = _outbox()
    pending = outbox.counts()[0]
    if pending == 0:  # answered without pyatlan's import
        print("delivered 0, pending 0")
        return 0

    def say(line: str) -> None:
        print(f"{_PROG}: {line}", file=sys.stderr, flush=True)

    # The courier's own loop, in the foreground: it keeps trying while Atlan does not answer,
    # until everything is delivered or --time-limit passes.
    done = drain(
        tenant.client(),
        outbox,
        seconds=args.time_limit,
        batch_size=args.batch_size,
        limit=args.limit,
        say=say,
    )
    left = outbox.counts()[0]
    print(f"delivered {done.delivered}, pending {left}")
    failed = done.fatal is not None or done.last_error is not None or done.refused > 0
    if left and failed and done.fatal is None:
        error = done.last_error or outbox.last_error()
        say(f"{left} event(s) still pending{f' (last error: {error})' if error else ''}")
    elif left and not failed and not args.limit:
        say(f"{left} event(s) still pending: another process is sending them")
    return 1 if failed else 0


def _flush(args: argparse.Namespace) -> int:
    from atlan_ext._spawn import spawn

    outbox = _outbox()
    pending = outbox.counts()[0]
    if pending == 0:
        print("nothing pending")
        return 0
    tenant = _tenant(args)
    if tenant is None:
        raise _Failure(
            f"{pending} event(s) pending in {outbox.path} and no Atlan tenant configured: set "
            "ATLAN_BASE_URL and ATLAN_API_KEY",
            1,
        )
    if not spawn(tenant, outbox.path):
        raise _Failure(
            f"{pending} event(s) pending in {outbox.path}, and no courier may start here "
            "(ATLAN_EXT_COURIER is off): send them with: atlan-lineage replay",
            1,
        )
    pending = _wait_delivered(outbox, tenant, args.timeout)
    if pending == 0:
        print("all delivered")
        return 0
    error = outbox.last_error()
    raise _Failure(
        f"{pending} event(s) still pending{f' (last error: {error})' if error else ''}; they "
        f"stay in {outbox.path}",
        1,
    )


def _doctor(args: argparse.Namespace) -> int:
    from atlan_ext.doctor import diagnose

    key: Optional[str] = None
    key_problem: Optional[str] = None
    try:
        key = _api_key(args)
    except _Failure as failure:
        key_problem = str(failure)
    passed = True
    good, bad = _marks()
    url_name, key_name = _setting_names(args)
    for check in diagnose(
        args.base_url,
        key,
        connection=args.connection,
        connector=args.connector,
        url_name=url_name,
        key_name=key_name,
        key_problem=key_problem,
    ):
        mark = "-" if check.skipped else good if check.ok else bad
        line = f"{mark} {check.what}"
        if check.fix:
            line += f" ({check.fix})" if check.ok else f" (fix: {check.fix})"
        print(line, flush=True)
        passed = passed and (check.ok or check.skipped)
    return 0 if passed else 1


def _marks() -> Tuple[str, str]:
    """✓ and ✗ where the terminal can show them."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAIL"
    return "✓", "✗"


def _prune(args: argparse.Namespace) -> int:
    gone = _outbox().prune(args.older_than)
    print(f"pruned {gone} delivered event(s); pending events are kept")
    return 0


def _when(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _event_time(event: Dict[str, Any]) -> str:
    """When the event happened (its eventTime), in local time to the second."""
    from atlan_ext._values import parse_time

    when = parse_time(str(event.get("eventTime", "")))
    return "-" if when is None else _when(when.timestamp())


def _status(args: argparse.Namespace) -> int:
    outbox = _outbox()
    runs = [outbox.run(args.run_id)] if args.run_id else outbox.runs(args.limit)
    if args.run_id and runs[0] is None:
        raise _Failure(f"unknown run id {args.run_id} in {outbox.path}")
    pending, delivered = outbox.counts()
    print(f"outbox {outbox.path}: {pending} pending, {delivered} delivered")
    for record in runs:
        if record is None:
            continue
        events = outbox.events(record.run_id)
        # When the run started is its START's eventTime: the record may be written later
        # (a START kept elsewhere first, or stored late); without a START here, the record's.
        starts = [stored.event for stored in events if stored.event_type == "START"]
        started = _event_time(starts[0]) if starts else f"{_when(record.created)} (recorded)"
        print(
            f"\n{record.job_namespace}/{record.job_name}  run {record.run_id}  "
            f"state {record.state or 'OTHER only'}  started {started}"
        )
        for stored in events:
            line = (
                f"  {stored.event_type:<9} {_event_time(stored.event)}  {stored.status:<9} "
                f"attempts {stored.attempts}"
            )
            if stored.last_error and stored.delivered is None:
                line += f"  last error: {stored.last_error}"
            print(line)
    return 0


def _validate(args: argparse.Namespace) -> int:
    import json

    from atlan_ext.validate import SchemaValidator, check_events, read_paths

    folder = os.environ.get("OPENLINEAGE_SPEC_DIR")
    if args.rules == "openlineage" and not folder:
        raise _Failure(
            "--rules openlineage judges by the official schema: set OPENLINEAGE_SPEC_DIR to "
            "the folder holding OpenLineage.json and facets/ (from OpenLineage's spec/)"
        )
    schema = SchemaValidator(folder, formats=args.formats) if folder else None
    items, unreadable = read_paths(args.files)
    problems = unreadable + check_events(items, schema, rules=args.rules)
    errors = [p for p in problems if p.level == "error"]
    if args.rules == "openlineage":
        checked = "openlineage: the official schema"
    else:
        checked = "atlan: atlan-ext's rules and the run cycle" + (
            "; openlineage: the official schema" if schema else ""
        )
    if args.format == "json":
        print(
            json.dumps(
                {
                    "events": len(items),
                    "rules": args.rules,
                    "checked": checked,
                    "errors": len(errors),
                    "notes": len(problems) - len(errors),
                    "problems": [p.to_dict() for p in problems],
                },
                indent=2,
            )
        )
    else:
        for problem in problems:
            print(f"{problem.level} [{problem.judge}]: {problem}")
        notes = len(problems) - len(errors)
        verdict = "valid" if not errors else "not valid"
        print(
            f"{len(items)} event(s) {verdict}: {len(errors)} error(s), {notes} note(s) ({checked})"
        )
    if schema is None:
        print(
            "note: set OPENLINEAGE_SPEC_DIR to also check the OpenLineage JSON schema",
            file=sys.stderr,
        )
    return 1 if errors else 0


def _verify(args: argparse.Namespace) -> int:
    import json

    from atlan_ext.events import RunId
    from atlan_ext.receipt import verify

    run_id = RunId.check(args.run_id)
    outbox = _outbox()
    if outbox.run(run_id) is None:  # said before pyatlan's import
        raise _Failure(
            f"unknown run id {run_id} in {outbox.path}: verify reads the outbox of the machine "
            "that ran it (set ATLAN_EXT_HOME to its folder)"
        )
    tenant = _tenant(args)
    if tenant is None:
        raise _Failure("verify asks Atlan: set ATLAN_BASE_URL and ATLAN_API_KEY")
    receipt = verify(run_id, client=tenant.client(), wait=args.wait, outbox=outbox)
    if args.format == "json":
        print(json.dumps(receipt.to_dict(), indent=2))
        return receipt.exit_status
    good, bad = _marks()
    for finding in receipt.findings:
        mark = "-" if finding.kind == "delivery" else good if finding.ok else bad
        print(f"{mark} {finding}")
    verdict = {0: "lineage landed", 1: "lineage landed in part", 2: "nothing found"}
    print(
        f"{verdict[receipt.exit_status]} ({receipt.requests} search request(s) over "
        f"{receipt.waited:.0f} s)"
    )
    return receipt.exit_status


def _lint_targets(targets: Sequence[str]) -> Tuple[List[Any], List[str]]:
    """The events of each target: a file or folder of events, or a run id in the outbox."""
    from atlan_ext.validate import read_paths

    events: List[Any] = []
    problems: List[str] = []
    for target in targets:
        if re.fullmatch(r"[0-9a-fA-F-]{36}", target) and not Path(target).exists():
            stored = _outbox().events(target)
            if not stored:
                problems.append(f"{target}: no such run in the outbox")
            events.extend(e.event for e in stored)
            continue
        items, unreadable = read_paths([target])
        events.extend(event for _, event in items)
        problems.extend(str(problem) for problem in unreadable)
    return events, problems


def _lint_events(events: List[Any], args: argparse.Namespace) -> int:
    """Print the naming findings of ``events``; 1 when a name breaks the spec."""
    import json

    from atlan_ext.naming import lint_events

    found = lint_events(events)
    client = None
    if not args.offline:
        tenant = _lint_tenant(args)
        client = tenant.client() if tenant is not None else None
    matches = _crawled_matches(client, [uri for uri, _ in found]) if client else {}
    errors = sum(1 for _, fs in found for f in fs if f.level == "error")
    if args.format == "json":
        print(
            json.dumps(
                {
                    "datasets": [
                        {
                            "dataset": uri,
                            "findings": [f.to_dict() for f in fs],
                            **({"crawled": matches[uri]} if uri in matches else {}),
                        }
                        for uri, fs in found
                    ],
                    "errors": errors,
                },
                indent=2,
            )
        )
        return 1 if errors else 0
    good, bad = _marks()
    for uri, findings in found:
        if not findings:
            print(f"{good} {uri}: follows the naming spec")
        for finding in findings:
            mark = bad if finding.level == "error" else "-"
            partial = " (will be a partial asset)" if finding.partial else ""
            print(f"{mark} {finding}{partial}")
        if uri in matches:
            print(f"  {matches[uri]}")
    print(f"{len(found)} dataset(s), {errors} name(s) breaking the OpenLineage naming spec")
    return 1 if errors else 0


def _lint_tenant(args: argparse.Namespace) -> Any:
    try:
        return _tenant(args)
    except _Failure as failure:
        log.warning("atlan_ext: %s; names checked offline", failure)
        return None


def _crawled_matches(client: Any, uris: List[str]) -> Dict[str, str]:
    """For each dataset URI: which crawled asset it would link to, or which exist of its name."""
    from atlan_ext.receipt import crawled_match

    return {uri: crawled_match(client, uri) for uri in uris}


def _lint(args: argparse.Namespace) -> int:
    events, problems = _lint_targets(args.targets)
    for problem in problems:
        print(f"{_PROG}: {problem}", file=sys.stderr)
    if not events:
        raise _Failure("no events to lint", 2)
    return max(_lint_events(events, args), 1 if problems else 0)


def _validate_and_lint(args: argparse.Namespace) -> int:
    """``validate``, and with ``--lint`` the naming lint of the same events."""
    if args.lint and args.format == "json":
        raise _Failure(
            "validate --lint prints text; for JSON run: atlan-lineage lint --format json"
        )
    status = _validate(args)
    if not args.lint:
        return status
    from atlan_ext.validate import read_paths

    items, _ = read_paths(args.files)
    args.offline = True
    return max(status, _lint_events([event for _, event in items], args))


def _states(args: argparse.Namespace) -> int:
    from atlan_ext.states import RunState

    columns = [
        "RunState",
        "terminal",
        "pyatlan OpenLineageEventType",
        "pyatlan OpenLineageRunState",
        "openlineage-python event_v2.RunState",
    ]
    rows: List[Sequence[str]] = []
    for state in RunState:
        try:
            ol = f"RunState.{state.to_openlineage().name}"
        except ImportError:
            ol = "(pip install 'atlan-ext[openlineage]')"
        rows.append(
            [
                state.value,
                "yes" if state.is_terminal else "no",
                f"OpenLineageEventType.{state.to_event_type().name}",
                f"OpenLineageRunState.{state.to_atlan_run_state().name}",
                ol,
            ]
        )
    widths = [max(len(str(row[i])) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _close_orphans(args: argparse.Namespace) -> int:
    outbox = _outbox()
    closed = 0
    for record in outbox.orphans(args.older_than):
        if record.process_alive:
            print(
                f"skipped {record.run_id} ({record.job_name}): its process {record.pid} still runs"
            )
            continue
        if args.dry_run:
            print(
                f"would close {record.run_id} ({record.job_name}), "
                f"last heard {_when(record.updated)}"
            )
            continue
        hours = (time.time() - record.updated) / 3600
        reason = (
            f"closed by `{_PROG} close-orphans`: no terminal event {hours:.1f} h after "
            f"{record.state}; the process that ran it (pid {record.pid} on {record.host}) "
            "is gone"
        )
        _resume(record, outbox, args).abort(reason)
        closed += 1
        print(f"closed {record.run_id} ({record.job_name}) with ABORT")
    if not args.dry_run:
        print(f"{closed} orphan run(s) closed")
    return 0


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 400:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of requests a minute between 1 and 400 (Atlan's limit)"
        )
    return value


def _courier(args: argparse.Namespace) -> int:
    """The courier service: :func:`atlan_ext.courier.serve` until SIGTERM or SIGINT."""
    import threading

    from atlan_ext.courier import serve
    from atlan_ext.send import Tenant
    from atlan_ext.stores import open_outbox

    tenant = _tenant(args)
    if not isinstance(tenant, Tenant):
        raise _Failure("no Atlan tenant: set ATLAN_BASE_URL and ATLAN_API_KEY")
    outbox = open_outbox(args.outbox)
    stop = threading.Event()
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), lambda *_: stop.set())
    return serve(tenant, outbox, rate_limit=args.rate_limit, stop=stop)


_COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "wrap": _wrap,
    "start": _start,
    "running": _step,
    "other": _step,
    "complete": _step,
    "fail": _step,
    "abort": _step,
    "replay": _replay,
    "status": _status,
    "flush": _flush,
    "prune": _prune,
    "doctor": _doctor,
    "validate": _validate_and_lint,
    "verify": _verify,
    "lint": _lint,
    "states": _states,
    "close-orphans": _close_orphans,
    "run-id": _run_id,
    "courier": _courier,
}


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("atlan_ext: "):
            message = message[len("atlan_ext: ") :]
        return f"{_PROG}: {message}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``atlan-lineage`` command; returns the exit status."""
    args = _parser().parse_args(_joined_durations(sys.argv[1:] if argv is None else argv))
    from atlan_ext import delivery

    delivery.exit_flush_seconds = 0.0  # every wait here is bounded by --timeout already
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    log.addHandler(handler)
    log.propagate = False
    try:
        status = _COMMANDS[args.command](args)
        _hand_over(args)
        return status
    except _Failure as failure:
        print(f"{_PROG}: {failure}", file=sys.stderr)
        return failure.status
    except BrokenPipeError:  # `atlan-lineage status | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        print(f"{_PROG}: {_one_line(error)}", file=sys.stderr)
        return _status_of(error)
    finally:
        log.removeHandler(handler)
        log.propagate = True


def _hand_over(args: argparse.Namespace) -> None:
    """After a step command: a courier delivers what it stored, and what earlier couriers
    could not deliver is said (once, here, where the user looks)."""
    courier: Optional[Tuple[Any, Any]] = getattr(args, "courier", None)
    if courier is None:
        return
    tenant, outbox = courier
    from atlan_ext._spawn import spawn

    spawn(tenant, outbox.path)
    if getattr(args, "wait", False):
        left = _wait_delivered(outbox, tenant, args.timeout, args.run_id_done)
        if left:
            error = outbox.last_error()
            raise _Failure(
                f"run {args.run_id_done}: {left} event(s) not delivered within "
                f"{args.timeout:g} s{f' (last error: {error})' if error else ''}; they stay "
                f"in {outbox.path} for the courier (atlan-lineage status shows them). The "
                "run's next step must not start before they arrive",
                1,
            )
        return
    with contextlib.suppress(Exception):
        error = outbox.last_error()
        if error:
            pending = outbox.counts()[0]
            log.warning(
                "atlan_ext: %d event(s) in %s are not delivered yet (last error: %s); a "
                "courier process keeps trying (courier.log beside the outbox says what it "
                "does, atlan-lineage status shows them)",
                pending,
                outbox.path,
                error,
            )


def _wait_delivered(outbox: Any, tenant: Any, timeout: float, run_id: Optional[str] = None) -> int:
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


def _one_line(error: Exception) -> str:
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


def _status_of(error: Exception) -> int:
    """2 for bad input (a usage error), 1 for anything that went wrong at run time."""
    from atlan_ext.exceptions import AtlanExtError

    return 2 if isinstance(error, AtlanExtError) and isinstance(error, ValueError) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
