"""The shared outbox's rows of bench.py: PostgreSQL beside SQLite, measured in the same run.

- Writers: 1, 4 and 16 processes store runs (START + COMPLETE) into one outbox, twice:
  ``client="local"`` (a worker with no tenant, whose courier service sends: the job's thread
  leaves each event in the hand-off journal, a store-only delivery thread stores a batch in
  one commit), and as a worker's job does (``background=True`` with a tenant, the 0 ms stand-in: the
  job's thread leaves each event in the hand-off journal, the delivery thread stores a batch in
  one commit and sends it). For each, the time a run's two events take on the job's thread
  (the hand-off, median) and the events per second of all the writers together (stored; for
  workers, delivered). SQLite writers share one file (one host); PostgreSQL writers each
  have their own ``ATLAN_EXT_HOME`` (hosts of a fleet) and share the database.
- Couriers: one and two courier processes deliver the same number of stored events to the
  Atlan stand-in at 0 and 20 ms latency (events per second until all were accepted); and one
  courier held to Atlan's 400 requests a minute against the 20 ms stand-in (requests a minute
  it keeps up).

Each process waits for a "go" line once it has imported what it needs, so start-up is left
out of the times. Each PostgreSQL row gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve()
BENCH = HERE.with_name("bench.py")
RATE = 400.0  # Atlan's published limit: requests a minute per tenant


# -- in the child processes ---------------------------------------------------------------------


def writer(runs: int, mode: str) -> Dict[str, Any]:
    """Store ``runs`` runs after the "go" line; the hand-off of each run, and the span.

    ``local``: ``client="local"`` (no tenant: a fleet worker whose courier service sends):
    the job's thread leaves each event in the hand-off journal and a store-only delivery
    thread stores them in batches; the span ends when every event is stored. ``worker``: what
    a worker's job does with a tenant (``ATLAN_BASE_URL``, the stand-in) and
    ``background=True``: the job's thread leaves each event in the hand-off journal, the
    delivery thread stores them in batches (one commit each) and sends them; the span ends
    when every event is delivered (so stored first)."""
    from atlan_ext import Job, start_run
    from atlan_ext.delivery import flush

    job = Job("ol-bench", "fleet")
    options: Dict[str, Any] = {"client": "local"} if mode == "local" else {"background": True}
    start_run(job, **options).end()  # warm: the outbox open, the schema checked, pyatlan in
    if not flush(600):
        raise RuntimeError("the warm-up run was not stored and delivered")
    print("ready", flush=True)
    sys.stdin.readline()
    timings = []
    began = time.time()
    for _ in range(runs):
        t0 = time.perf_counter()
        start_run(job, **options).end()
        timings.append(time.perf_counter() - t0)
    if not flush(600):
        raise RuntimeError("not every event was stored and delivered")
    return {"began": began, "ended": time.time(), "timings": timings}


def courier(base_url: str, target: str, rate_limit: float, seconds: float) -> Dict[str, Any]:
    """Deliver the outbox's events after the "go" line (what ``atlan-lineage replay`` and the
    courier run); with ``rate_limit``, batches of one event for ``seconds`` at most."""
    from atlan_ext.courier import drain
    from atlan_ext.send import Tenant
    from atlan_ext.stores import open_outbox

    client = Tenant(base_url, "bench-key", 10.0).client()
    outbox = open_outbox(target)
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.time()
    if rate_limit:
        done = drain(client, outbox, seconds=seconds, batch_size=1, rate_limit=rate_limit)
    else:
        done = drain(client, outbox, seconds=seconds)
    return {"began": began, "ended": time.time(), "delivered": done.delivered}


# -- the driver -------------------------------------------------------------------------------


def _database(server: str) -> Iterator[str]:
    """A fresh database on ``server`` (a URL), dropped afterwards."""
    import psycopg

    name = f"atlan_ext_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _together(commands: List[Tuple[List[str], Dict[str, str]]]) -> List[Dict[str, Any]]:
    """Start the processes, wait until each is ready, say go to all, collect their results."""
    children = [
        subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for command, env in commands
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a benchmark process failed to start: {child.args!r}")
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate(timeout=1800)
        if child.returncode:
            raise RuntimeError(f"a benchmark process failed: {child.args!r}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _env(home: str, outbox: Optional[str], tenant: str = "") -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATLAN_", "PG"))}
    env.update(ATLAN_EXT_HOME=home, ATLAN_EXT_COURIER="off")
    if outbox:
        env["ATLAN_EXT_OUTBOX"] = outbox
    if tenant:
        env.update(ATLAN_BASE_URL=tenant, ATLAN_API_KEY="bench-key")
    return env


ASYNC = "PostgreSQL, synchronous_commit=off"


def _backends(
    server: str, asynchronous: bool = False
) -> Iterator[Tuple[str, str, Callable[[int], str]]]:
    """(name, outbox, home of writer i) for SQLite, then PostgreSQL (and, with
    ``asynchronous``, PostgreSQL with the URL option ``-c synchronous_commit=off``): fresh
    ones each time."""
    with tempfile.TemporaryDirectory() as folder:
        yield "SQLite", str(Path(folder) / "outbox.db"), lambda _i: folder
    for url in _database(server):
        with tempfile.TemporaryDirectory() as folder:
            yield "PostgreSQL", url, lambda i: str(Path(folder) / f"host{i}")
    if asynchronous:
        for url in _database(server):
            separator = "&" if "?" in url else "?"
            with tempfile.TemporaryDirectory() as folder:
                option = f"{separator}options=-csynchronous_commit%3Doff"
                yield ASYNC, url + option, lambda i: str(Path(folder) / f"host{i}")


def writer_rows(
    server: str, total_runs: int, mode: str = "local", counts: Tuple[int, ...] = (1, 4, 16)
) -> Tuple[List[str], Dict[Tuple[str, int], Any]]:
    if mode == "local":
        title = (
            'a worker with no tenant (`client="local"`; a courier service sends): the job\'s '
            "thread leaves each event in the hand-off journal, a store-only delivery thread "
            "stores a batch in one commit; events/s until all were stored"
        )
    else:
        title = (
            "what a worker's job does: `background=True` with a tenant (the 0 ms stand-in); "
            "the job's thread leaves each event in the hand-off journal, the delivery thread "
            "stores a batch in one commit and sends it; events/s until all were delivered"
        )
    lines = [
        "",
        f"### Writers storing {2 * total_runs:,} events into one outbox: {title}",
        "",
        "| outbox | writer processes | hand-off per run (START + COMPLETE), median ms | p99 ms "
        "| events/s, all writers | PostgreSQL ÷ SQLite, hand-off |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    found: Dict[Tuple[str, int], Any] = {}
    stand_in, base_url = _stand_in(0.0) if mode != "local" else (None, "")
    try:
        for processes in counts:
            for name, outbox, home in _backends(server, asynchronous=True):
                runs = max(1, total_runs // processes)
                command = [sys.executable, str(HERE), "--writer", str(runs), mode]
                envs = [_env(home(i), outbox, base_url) for i in range(processes)]
                results = _together([(command, env) for env in envs])
                timings = sorted(t for result in results for t in result["timings"])
                span = max(r["ended"] for r in results) - min(r["began"] for r in results)
                median = statistics.median(timings) * 1000
                p99 = timings[int(len(timings) * 0.99) - 1] * 1000
                found[(name, processes)] = median
                ratio = ""
                if name != "SQLite":
                    ratio = f"{median / found[('SQLite', processes)]:.2f}"
                lines.append(
                    f"| {name} | {processes} | {median:.3f} | {p99:.3f} "
                    f"| {2 * runs * processes / span:,.0f} | {ratio} |"
                )
    finally:
        if stand_in is not None:
            stand_in.terminate()
            stand_in.wait()
    return lines, found


def _fill(outbox: str, runs: int) -> None:
    from atlan_ext import Job, RunId
    from atlan_ext.events import build_event
    from atlan_ext.stores import open_outbox

    store = open_outbox(outbox)
    job = Job("ol-bench", "fleet")
    items = []
    for _ in range(runs):
        run_id = RunId.new()
        for state in ("START", "COMPLETE"):
            items.append((build_event(state, job, run_id), "spark", state))
    for start in range(0, len(items), 500):
        store.add_many(items[start : start + 500])
    store.close()


def _stand_in(latency: float) -> Tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(BENCH), "--serve", str(latency)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, f"http://127.0.0.1:{server.stdout.readline().strip()}"


def _deliver(
    server: str, latency: float, couriers: int, runs: int, rate_limit: float, seconds: float
) -> List[Tuple[str, Dict[str, Any]]]:
    """For each backend: ``couriers`` processes deliver ``runs`` stored runs."""
    measured = []
    for name, outbox, home in _backends(server):
        _fill(outbox, runs)
        stand_in, base_url = _stand_in(latency)
        try:
            command = [sys.executable, str(HERE), "--courier", base_url, outbox]
            command += [str(rate_limit), str(seconds)]
            results = _together([(command, _env(home(i), None)) for i in range(couriers)])
        finally:
            stand_in.terminate()
            stand_in.wait()
        span = max(r["ended"] for r in results) - min(r["began"] for r in results)
        delivered = sum(r["delivered"] for r in results)
        measured.append((name, {"delivered": delivered, "span": span}))
    return measured


def courier_rows(server: str, runs: int, rated_seconds: float) -> List[str]:
    lines = [
        "",
        f"### Couriers delivering {2 * runs:,} stored events (batches of up to 100)",
        "",
        "| outbox | stand-in latency ms | couriers | events/s | PostgreSQL ÷ SQLite |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for latency in (0.0, 20.0):
        for couriers in (1, 2):
            rates: Dict[str, float] = {}
            for name, result in _deliver(server, latency, couriers, runs, 0.0, 600.0):
                if result["delivered"] != 2 * runs:
                    raise RuntimeError(f"{name}: {result['delivered']} of {2 * runs} delivered")
                rates[name] = result["delivered"] / result["span"]
                ratio = f"{rates[name] / rates['SQLite']:.2f}" if name == "PostgreSQL" else ""
                lines.append(
                    f"| {name} | {latency:g} | {couriers} | {rates[name]:,.0f} | {ratio} |"
                )
    # Enough events that the courier is never out of work while it is timed.
    plenty = int(RATE / 60 * rated_seconds) + 50
    lines.append("")
    for name, result in _deliver(server, 20.0, 1, plenty, RATE, rated_seconds):
        per_minute = result["delivered"] / result["span"] * 60
        met = per_minute >= 0.95 * RATE
        lines.append(
            f"- target: one courier keeps a 20 ms tenant busy at the rate limit ({RATE:g} "
            f"requests a minute, one event each), {name}: {per_minute:.0f} a minute over "
            f"{result['span']:.0f} s {'✓' if met else '✗'}"
        )
    return lines


def rows(server: Optional[str], quick: bool) -> List[str]:
    """The fleet rows, or one line saying why they were skipped."""
    if not server:
        return [
            "",
            "### Shared outbox (PostgreSQL): skipped: no server (give --postgres URL or set "
            "ATLAN_EXT_TEST_POSTGRES)",
        ]
    lines: List[str] = []
    for mode, what in (("local", "a worker with no tenant"), ("worker", "a worker with a tenant")):
        found, hand_offs = writer_rows(server, 200 if quick else 2_000, mode)
        lines.extend(found)
        for processes in (1, 4, 16):
            ratios = [
                (name, hand_offs[(name, processes)] / hand_offs[("SQLite", processes)])
                for name in ("PostgreSQL", ASYNC)
            ]
            lines.append(
                f"- target: a writer's hand-off ({what}) on PostgreSQL within 2x of SQLite's, "
                f"{processes} writer(s): "
                + "; ".join(
                    f"{name} {ratio:.2f} times {'✓' if ratio <= 2 else '✗'}"
                    for name, ratio in ratios
                )
            )
    lines.extend(courier_rows(server, 500 if quick else 5_000, 15.0 if quick else 60.0))
    return lines


def main() -> None:
    if sys.argv[1] == "--writer":
        result = writer(int(sys.argv[2]), sys.argv[3])
    else:
        base_url, target, rate_limit, seconds = sys.argv[2:6]
        result = courier(base_url, target, float(rate_limit), float(seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
