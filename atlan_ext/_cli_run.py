"""The ``atlan-lineage`` commands that record a run: ``wrap``, ``start``, the steps that
follow it (``running``, ``other``, ``complete``, ``fail``, ``abort``), ``run-id`` and
``close-orphans``; and the hand-over to a courier (with ``--wait``) after a step.

A step command stores its event in the outbox and returns; a courier process delivers it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from atlan_ext._cli_common import (
    PROG,
    Failure,
    lineage_outbox,
    lineage_tenant,
    log,
    managed_outbox,
    wait_delivered,
    when,
)

__all__ = ["close_orphans", "hand_over", "print_run_id", "start", "step", "wrap"]


# -- wrap and the one-step commands ------------------------------------------------------------


def _job(args: argparse.Namespace) -> Any:
    from atlan_ext.events import Job

    # The jobType facet by default: a command `wrap` runs, else a job of a script's steps.
    default = "COMMAND" if args.command == "wrap" else "JOB"
    return Job(args.connection, args.job, job_type=args.job_type or default)


def _run_options(args: argparse.Namespace, outbox: Any, **options: Any) -> Dict[str, Any]:
    from atlan_ext.send import Tenant

    client = lineage_tenant(args)
    if args.command != "wrap":  # wrap delivers in the background, as a Python run does
        if not isinstance(client, Tenant):
            if outbox.path == ":memory:":  # before anything is made: no run id printed
                raise Failure(
                    f"no outbox works here (see the warning above) and no Atlan tenant is "
                    f"configured, so the {args.command.upper()} event could be neither kept nor "
                    "sent: fix the outbox's folder (ATLAN_EXT_HOME), or set ATLAN_BASE_URL and "
                    "ATLAN_API_KEY",
                    1,
                )
            args.kept_only = True  # nothing delivers it: a --wait cannot be satisfied
        elif outbox.path != ":memory:":
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


def wrap(args: argparse.Namespace) -> int:
    """``wrap -- CMD``: run CMD as one lineage run; exit with CMD's own status."""
    from atlan_ext.delivery import flush
    from atlan_ext.run import start_run

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise Failure("wrap needs a command after --, e.g. atlan-lineage wrap ... -- python job.py")
    # In the background: START does not hold the command's start; at the end, delivery gets
    # at most --timeout before wrap exits, and what is left stays in the outbox.
    run = start_run(
        _job(args),
        inputs=args.input,
        outputs=args.output,
        run_id=args.run_id,
        **_run_options(args, lineage_outbox(), background=True),
    )
    # OpenLineage-aware children (dbt-ol, openlineage-python, atlan-ext) nest under this run.
    child_env = {**os.environ, **run.child_env()}
    try:
        child = subprocess.Popen(command, env=child_env)  # noqa: S603 - the user's command
    except OSError as error:
        run.end(127)
        flush(args.timeout, retries=False)
        raise Failure(f"cannot run {command[0]!r}: {error.strerror}", 127) from None

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
        flush(args.timeout, retries=False)
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


def start(args: argparse.Namespace) -> int:
    """``start``: send START for a new run and print its run id."""
    from atlan_ext.events import RunId
    from atlan_ext.run import start_run

    outbox = lineage_outbox()
    if args.run_id and outbox.run(RunId.check(args.run_id)) is not None:
        raise Failure(f"run {args.run_id} was already started; use a new run id")
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


def step(args: argparse.Namespace) -> int:
    """``running``, ``other``, ``complete``, ``fail`` or ``abort`` for a run started earlier."""
    from atlan_ext.events import RunId
    from atlan_ext.run import resume_run

    outbox = lineage_outbox()
    run_id = RunId.check(args.run_id)
    record = outbox.run(run_id)
    if record is not None:
        if (args.connection, args.job) != (None, None) and (
            args.connection != record.job_namespace or args.job != record.job_name
        ):
            raise Failure(
                f"run {run_id} belongs to job {record.job_namespace}/{record.job_name} in "
                f"{outbox.path}, not {args.connection}/{args.job}"
            )
        run = _resume(record, outbox, args, args.input, args.output)
    elif args.connection and args.job:
        print(
            f"{PROG}: no record of run {run_id} in {outbox.path} (started on another host?): "
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
        raise Failure(
            f"no outbox works here (see the warning above), so nothing is known of run "
            f"{run_id}: give --connection and --job to send {args.command.upper()} for it"
        )
    else:
        raise Failure(
            f"unknown run id {run_id} in {outbox.path}: start the run first with "
            f"`{PROG} start`, or, for a run started on another host, give "
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


def print_run_id(args: argparse.Namespace) -> int:
    """``run-id --key``: the run id Python's ``RunId.from_key`` gives the same parts."""
    from atlan_ext.events import RunId

    print(RunId.from_key(*args.key))
    return 0


# -- runs whose process died -------------------------------------------------------------------


def close_orphans(args: argparse.Namespace) -> int:
    """``close-orphans``: end with ABORT the runs whose process died before their end."""
    outbox = managed_outbox()
    closed = would = 0
    for record in outbox.orphans(args.older_than):
        if record.process_alive:
            print(
                f"skipped {record.run_id} ({record.job_name}): its process {record.pid} still runs"
            )
            continue
        if args.dry_run:
            would += 1
            print(
                f"would close {record.run_id} ({record.job_name}), "
                f"last heard {when(record.updated)}"
            )
            continue
        reason = (
            f"closed by `{PROG} close-orphans`: no terminal event {_age(record.updated)} "
            f"after {record.state}; the process that ran it (pid {record.pid} on "
            f"{record.host}) is gone"
        )
        _resume(record, outbox, args).abort(reason)
        closed += 1
        print(f"closed {record.run_id} ({record.job_name}) with ABORT")
    if not args.dry_run:
        print(f"{closed} orphan run(s) closed")
    elif not would:
        print("no orphan run to close")
    return 0


def _age(since: float) -> str:
    """How long ago ``since`` was, in the largest unit that reads well (``40 s``, ``5 min``,
    ``2.5 h``)."""
    seconds = max(0.0, time.time() - since)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# -- after a step: the hand-over to a courier --------------------------------------------------


def hand_over(args: argparse.Namespace) -> None:
    """After a step command: a courier delivers what it stored, and what earlier couriers
    could not deliver is said (once, here, where the user looks)."""
    courier: Optional[Tuple[Any, Any]] = getattr(args, "courier", None)
    if courier is None:
        if getattr(args, "wait", False) and getattr(args, "kept_only", False):
            raise Failure(
                f"run {args.run_id_done}: --wait, but no Atlan tenant is configured (see the "
                "warning above): its events are kept in the outbox, not delivered, so the "
                "run's next step must not start yet. Set ATLAN_BASE_URL and ATLAN_API_KEY, "
                f"then send them with `{PROG} replay`",
                1,
            )
        return
    tenant, outbox = courier
    from atlan_ext._spawn import spawn

    spawn(tenant, outbox.path)
    if getattr(args, "wait", False):
        left = wait_delivered(outbox, tenant, args.timeout, args.run_id_done)
        if left:
            error = outbox.last_error()
            raise Failure(
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
