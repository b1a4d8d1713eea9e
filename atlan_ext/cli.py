"""``atlan-lineage``: lineage for shell scripts and schedulers, and the outbox's tools.

``--help`` answers without importing pyatlan: only the sub-commands that send import it.
The API key comes from ``ATLAN_API_KEY`` or ``--api-key-file``, never from a flag (process
lists show flags).

Here: the parser and the dispatch. The commands live in ``_cli_run`` (a run's events),
``_cli_outbox`` (the outbox's tools) and ``_cli_check`` (the checks), on ``_cli_common``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

from atlan_ext import _cli_check, _cli_outbox, _cli_run
from atlan_ext._cli_common import (
    PROG,
    Failure,
    Parser,
    add_command,
    age,
    count,
    duration,
    exit_status_of,
    log,
    one_line,
    rate,
)
from atlan_ext._version import __version__

__all__ = ["main"]

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


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
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
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def job_options(command: argparse.ArgumentParser, required: bool = True) -> None:
        command.add_argument(
            "--connection", required=required, help="the Atlan OpenLineage connection"
        )
        command.add_argument("--job", required=required, help="the job's name")
        for side in ("input", "output"):
            command.add_argument(f"--{side}", action="append", default=[], metavar="URI",
                                 help=f"an {side} dataset's URI (again for more)")  # fmt: skip
        command.add_argument("--connector", default="spark", help="connector type (default spark)")
        command.add_argument(
            "--job-type", help="jobType facet: JOB (default; wrap: COMMAND), DAG, APPLICATION..."
        )

    def timeout_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--timeout",
            type=duration,
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

    wrap = add_command(
        commands,
        "wrap",
        help="run a command as one lineage run",
        description="Send START, run CMD, send COMPLETE, FAIL or ABORT, "
        "and exit with CMD's own status.",
    )
    job_options(wrap)
    wrap.add_argument("--run-id", help="use this run id (a UUID) instead of a new one")
    timeout_option(wrap)
    wrap.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")

    start = add_command(commands, "start", help="start a run; prints its run id")
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
        step = add_command(
            commands,
            name,
            help=f"{text} for --run-id",
            description=f"{text[0].upper()}{text[1:]} for a run started earlier. The job and "
            "datasets come from this machine's outbox; for a run started on another host, "
            "give --connection and --job (and its datasets).",
        )
        step.add_argument("--run-id", required=True, help="the run's id (`start` printed it)")
        job_options(step, required=False)
        timeout_option(step)
        wait_option(step)
        if name in ("fail", "abort"):  # the errorMessage facet's message
            option, default = ("--message", "failed") if name == "fail" else ("--reason", "aborted")
            step.add_argument(option, default=default, help=f"why (default: {default})")

    run_id = add_command(
        commands,
        "run-id",
        help="print the run id of a key (RunId.from_key)",
        description="Print the same run id as Python's RunId.from_key(*parts) for the same "
        "strings, so every host of a run computes its id alike.",
    )
    run_id.add_argument("--key", nargs="+", required=True, metavar="PART")

    replay = add_command(commands, "replay", help="send what the outbox holds")
    replay.add_argument(
        "--time-limit", type=duration, default=300.0, help="keep trying this long (default 5m)"
    )
    replay.add_argument("--limit", type=count, help="at most this many events")
    replay.add_argument(
        "--batch-size", type=count, default=100, help="events per request (default 100)"
    )

    flush = add_command(
        commands,
        "flush",
        help="wait until the outbox's events are delivered (e.g. before a container exits)",
        description="Make sure a courier delivers the outbox's pending events and wait for "
        "it: exit 0 once nothing is pending, 1 if some are still pending after --timeout.",
    )
    flush.add_argument(
        "--timeout", type=duration, default=60.0, help="longest wait, e.g. 30s or 5m (default 60s)"
    )

    doctor = add_command(
        commands,
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

    verify = add_command(
        commands,
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
        type=age,
        default=60.0,
        help="longest wait, e.g. 0 (one look), 60s, 5m (default 60s)",
    )
    verify.add_argument("--format", choices=("text", "json"), default="text")

    lint = add_command(
        commands,
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

    prune = add_command(
        commands,
        "prune",
        help="delete delivered events now (done hourly anyway, after ATLAN_EXT_RETENTION_DAYS)",
    )
    prune.add_argument(
        "--older-than",
        type=age,
        metavar="AGE",
        help="delivered more than this long ago: 1d, 12h, 0s (default: the retention, 7d)",
    )

    status = add_command(commands, "status", help="list runs and the delivery of their events")
    status.add_argument("--run-id", help="only this run")
    status.add_argument("--limit", type=count, default=20, help="runs to show (default 20)")

    validate = add_command(
        commands,
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

    add_command(commands, "states", help="print the run-state mapping table")

    courier = add_command(
        commands,
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
        type=rate,
        default=400.0,
        metavar="N",
        help="requests a minute to the tenant, for all couriers together (default 400, "
        "Atlan's limit per tenant)",
    )

    orphans = add_command(
        commands,
        "close-orphans",
        help="end runs whose process died without a terminal event (ABORT)",
    )
    orphans.add_argument(
        "--older-than",
        type=age,
        required=True,
        metavar="AGE",
        help="only runs not heard from for this long: 30m, 6h, 2d",
    )
    orphans.add_argument("--dry-run", action="store_true", help="list them, send nothing")
    timeout_option(orphans)
    for command in commands.choices.values():
        tenant_options(command, argparse.SUPPRESS)
    return parser


_COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "wrap": _cli_run.wrap,
    "start": _cli_run.start,
    "running": _cli_run.step,
    "other": _cli_run.step,
    "complete": _cli_run.step,
    "fail": _cli_run.step,
    "abort": _cli_run.step,
    "replay": _cli_outbox.replay,
    "status": _cli_outbox.status,
    "flush": _cli_outbox.flush,
    "prune": _cli_outbox.prune,
    "doctor": _cli_check.doctor,
    "validate": _cli_check.validate_and_lint,
    "verify": _cli_check.verify,
    "lint": _cli_check.lint,
    "states": _cli_outbox.states,
    "close-orphans": _cli_run.close_orphans,
    "run-id": _cli_run.print_run_id,
    "courier": _cli_outbox.courier,
}


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("atlan_ext: "):
            message = message[len("atlan_ext: ") :]
        return f"{PROG}: {message}"


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
        _cli_run.hand_over(args)
        return status
    except Failure as failure:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return failure.status
    except BrokenPipeError:  # `atlan-lineage status | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        print(f"{PROG}: {one_line(error)}", file=sys.stderr)
        return exit_status_of(error)
    finally:
        log.removeHandler(handler)
        log.propagate = True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
