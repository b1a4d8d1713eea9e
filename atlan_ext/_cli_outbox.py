"""The ``atlan-lineage`` commands that tend the outbox: ``replay``, ``flush``, ``prune``,
``status`` and the ``courier`` service; and ``states``, the run-state table.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import List, Sequence

from atlan_ext._cli_common import (
    PROG,
    Failure,
    managed_outbox,
    tenant_of,
    wait_delivered,
    when,
)

__all__ = ["courier", "flush", "prune", "replay", "states", "status"]


def replay(args: argparse.Namespace) -> int:
    """``replay``: send what the outbox holds, in the foreground, for at most --time-limit."""
    from atlan_ext.courier import drain

    tenant = tenant_of(args)
    if tenant is None:
        raise Failure(
            "no Atlan tenant configured: set ATLAN_BASE_URL and ATLAN_API_KEY "
            "(or --base-url and --api-key-file), then replay"
        )
    outbox = managed_outbox()
    pending = outbox.counts()[0]
    if pending == 0:  # answered without pyatlan's import
        print("delivered 0, pending 0")
        return 0

    def say(line: str) -> None:
        print(f"{PROG}: {line}", file=sys.stderr, flush=True)

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


def flush(args: argparse.Namespace) -> int:
    """``flush``: have a courier deliver the pending events, and wait for it."""
    from atlan_ext._spawn import spawn

    outbox = managed_outbox()
    pending = outbox.counts()[0]
    if pending == 0:
        print("nothing pending")
        return 0
    tenant = tenant_of(args)
    if tenant is None:
        raise Failure(
            f"{pending} event(s) pending in {outbox.path} and no Atlan tenant configured: set "
            "ATLAN_BASE_URL and ATLAN_API_KEY",
            1,
        )
    if not spawn(tenant, outbox.path):
        raise Failure(
            f"{pending} event(s) pending in {outbox.path}, and no courier may start here "
            "(ATLAN_EXT_COURIER is off): send them with: atlan-lineage replay",
            1,
        )
    pending = wait_delivered(outbox, tenant, args.timeout)
    if pending == 0:
        print("all delivered")
        return 0
    error = outbox.last_error()
    raise Failure(
        f"{pending} event(s) still pending{f' (last error: {error})' if error else ''}; they "
        f"stay in {outbox.path}",
        1,
    )


def prune(args: argparse.Namespace) -> int:
    """``prune``: delete the delivered events now."""
    gone = managed_outbox().prune(args.older_than)
    print(f"pruned {gone} delivered event(s); pending events are kept")
    return 0


def _event_time(event_time: str) -> str:
    """When the event happened (its eventTime), in local time to the second."""
    from atlan_ext._values import parse_time

    moment = parse_time(event_time)
    return "-" if moment is None else when(moment.timestamp())


def status(args: argparse.Namespace) -> int:
    """``status``: the outbox's runs and the delivery of their events."""
    outbox = managed_outbox()
    runs = [outbox.run(args.run_id)] if args.run_id else outbox.runs(args.limit + 1)
    if args.run_id and runs[0] is None:
        raise Failure(f"unknown run id {args.run_id} in {outbox.path}")
    pending, delivered = outbox.counts()
    more = len(runs) > args.limit and not args.run_id
    shown = f"; the newest {args.limit} runs (more with --limit)" if more else ""
    print(f"outbox {outbox.path}: {pending} pending, {delivered} delivered{shown}")
    runs = runs[: args.limit] if more else runs
    for record in runs:
        if record is None:
            continue
        events = outbox.events(record.run_id)
        # When the run started is its START's eventTime: the record may be written later
        # (a START kept elsewhere first, or stored late); without a START here, the record's.
        starts = [stored.event_time for stored in events if stored.event_type == "START"]
        started = _event_time(starts[0]) if starts else f"{when(record.created)} (recorded)"
        print(
            f"\n{record.job_namespace}/{record.job_name}  run {record.run_id}  "
            f"state {record.state or 'OTHER only'}  started {started}"
        )
        for stored in events:
            line = (
                f"  {stored.event_type:<9} {_event_time(stored.event_time)}  {stored.status:<9} "
                f"attempts {stored.attempts}"
            )
            if stored.last_error and stored.delivered is None:
                line += f"  last error: {stored.last_error}"
            print(line)
    return 0


def states(args: argparse.Namespace) -> int:
    """``states``: the run-state mapping table."""
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


def courier(args: argparse.Namespace) -> int:
    """The courier service: :func:`atlan_ext.courier.serve` until SIGTERM or SIGINT."""
    import threading

    from atlan_ext.courier import serve
    from atlan_ext.send import Tenant
    from atlan_ext.stores import open_outbox

    tenant = tenant_of(args)
    if not isinstance(tenant, Tenant):
        raise Failure("no Atlan tenant: set ATLAN_BASE_URL and ATLAN_API_KEY")
    outbox = open_outbox(args.outbox)
    stop = threading.Event()
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), lambda *_: stop.set())
    return serve(tenant, outbox, rate_limit=args.rate_limit, stop=stop)
