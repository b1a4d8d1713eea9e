"""The ``atlan-lineage`` commands that check: ``doctor`` (the settings, the outbox, the
tenant), ``validate`` (events against the schema and atlan-ext's rules), ``lint`` (dataset
names against the OpenLineage naming spec) and ``verify`` (did a run's lineage land?).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from atlan_ext._cli_common import (
    PROG,
    Failure,
    api_key,
    log,
    managed_outbox,
    marks,
    setting_names,
    tenant_of,
)

__all__ = ["doctor", "lint", "validate_and_lint", "verify"]


def doctor(args: argparse.Namespace) -> int:
    """``doctor``: one line per check, each with its fix; 0 only when all pass."""
    from atlan_ext.doctor import diagnose

    key: Optional[str] = None
    key_problem: Optional[str] = None
    try:
        key = api_key(args)
    except Failure as failure:
        key_problem = str(failure)
    passed = True
    good, bad = marks()
    url_name, key_name = setting_names(args)
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


def _validate(args: argparse.Namespace) -> int:
    """Print the findings of both judges on the events of ``args.files``; 1 on errors."""
    import json

    from atlan_ext.validate import SchemaValidator, check_events, read_paths

    folder = os.environ.get("OPENLINEAGE_SPEC_DIR")
    if args.rules == "openlineage" and not folder:
        raise Failure(
            "--rules openlineage judges by the official schema: set OPENLINEAGE_SPEC_DIR to "
            "the folder holding OpenLineage.json and facets/ (from OpenLineage's spec/)"
        )
    schema = SchemaValidator(folder, formats=args.formats) if folder else None
    items, unreadable = read_paths(args.files)
    if not items and not unreadable:  # an empty folder or file: nothing was judged
        raise Failure(f"no events to validate in {' '.join(args.files)}", 2)
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


def verify(args: argparse.Namespace) -> int:
    """``verify RUN_ID``: what Atlan has of the run's job, process and datasets."""
    import json

    from atlan_ext.events import RunId
    from atlan_ext.receipt import verify as verify_run

    run_id = RunId.check(args.run_id)
    outbox = managed_outbox()
    if outbox.run(run_id) is None:  # said before pyatlan's import
        raise Failure(
            f"unknown run id {run_id} in {outbox.path}: verify reads the outbox of the machine "
            "that ran it (set ATLAN_EXT_HOME to its folder)"
        )
    tenant = tenant_of(args)
    if tenant is None:
        raise Failure("verify asks Atlan: set ATLAN_BASE_URL and ATLAN_API_KEY")
    receipt = verify_run(run_id, client=tenant.client(), wait=args.wait, outbox=outbox)
    if args.format == "json":
        print(json.dumps(receipt.to_dict(), indent=2))
        return receipt.exit_status
    good, bad = marks()
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
            stored = managed_outbox().events(target)
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
    good, bad = marks()
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
    """The tenant to look for crawled assets in; a wrong setting only means offline."""
    try:
        return tenant_of(args)
    except Failure as failure:
        log.warning("atlan_ext: %s; names checked offline", failure)
        return None


def _crawled_matches(client: Any, uris: List[str]) -> Dict[str, str]:
    """For each dataset URI: which crawled asset it would link to, or which exist of its name."""
    from atlan_ext._crawled import crawled_match

    return {uri: crawled_match(client, uri) for uri in uris}


def lint(args: argparse.Namespace) -> int:
    """``lint``: the naming findings of the events of files, folders or run ids."""
    events, problems = _lint_targets(args.targets)
    for problem in problems:
        print(f"{PROG}: {problem}", file=sys.stderr)
    if not events:
        raise Failure("no events to lint", 2)
    return max(_lint_events(events, args), 1 if problems else 0)


def validate_and_lint(args: argparse.Namespace) -> int:
    """``validate``, and with ``--lint`` the naming lint of the same events."""
    if args.lint and args.format == "json":
        raise Failure("validate --lint prints text; for JSON run: atlan-lineage lint --format json")
    status = _validate(args)
    if not args.lint:
        return status
    from atlan_ext.validate import read_paths

    items, _ = read_paths(args.files)
    args.offline = True
    return max(status, _lint_events([event for _, event in items], args))
