"""Checks what the stand-in recorded: every run paired, every event valid (our rules, and the
OpenLineage schema when OPENLINEAGE_SPEC_DIR is set), and the expected nesting.

    python integration/check.py FILE --jobs-at-least N [--parent-job NAME] [--connector C]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List

from atlan_ext import check_event
from atlan_ext.states import run_cycle_problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--runs-at-least", type=int, default=1)
    parser.add_argument("--parent-job", help="every other run nests under this job's run")
    parser.add_argument("--connector")
    parser.add_argument(
        "--producer-sends-no-start",
        metavar="JOB",
        action="append",
        default=[],
        help="a job whose producer itself sends no START (reported, not a problem)",
    )
    args = parser.parse_args()
    lines = Path(args.record).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    events: List[Dict[str, Any]] = [r["event"] for r in records]
    problems: List[str] = []
    for event in events:
        check_event(event)
    folder = os.environ.get("OPENLINEAGE_SPEC_DIR")
    if folder:
        from atlan_ext.validate import SchemaValidator

        validator = SchemaValidator(folder)
        for event in events:
            validator(event)
    exempt = {e["run"]["runId"] for e in events if e["job"]["name"] in args.producer_sends_no_start}
    for index, text in run_cycle_problems(events):
        run_id = events[index]["run"]["runId"] if index >= 0 else ""
        if run_id in exempt or any(rid in text for rid in exempt):
            print(f"note (the producer's own doing): {text}")
        else:
            problems.append(text)
    runs: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for event in events:
        runs[event["run"]["runId"]].append(event)
    if len(runs) < args.runs_at_least:
        problems.append(f"{len(runs)} run(s) arrived, expected at least {args.runs_at_least}")
    if args.connector and {r["connector"] for r in records} != {args.connector}:
        problems.append(
            f"sent to {sorted({r['connector'] for r in records})}, not {args.connector}"
        )
    if args.parent_job:
        parents = [rid for rid, evs in runs.items() if evs[0]["job"]["name"] == args.parent_job]
        if len(parents) != 1:
            problems.append(f"{len(parents)} run(s) of the parent job {args.parent_job}")
        else:
            for rid, evs in runs.items():
                if rid == parents[0]:
                    continue
                chain = {
                    facet["run"]["runId"]
                    for e in evs
                    for facet in [e["run"].get("facets", {}).get("parent")]
                    if facet
                } | {
                    facet.get("root", {}).get("run", {}).get("runId")
                    for e in evs
                    for facet in [e["run"].get("facets", {}).get("parent")]
                    if facet
                }
                if parents[0] not in chain:
                    problems.append(f"run {rid} ({evs[0]['job']['name']}) is not nested")
    for event in events:
        print(f"  {event['eventType']:<9} {event['job']['namespace']}/{event['job']['name']}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"{len(events)} events, {len(runs)} runs, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
