"""A real job that reports its lineage: it turns a CSV of orders into daily totals.

With no Atlan tenant configured (ATLAN_BASE_URL / ATLAN_API_KEY unset) the events are kept in
the local outbox; with a tenant, they are sent to it.

    python examples/quickstart.py
"""

from __future__ import annotations

import csv
import tempfile
from collections import defaultdict
from pathlib import Path

from atlan_ext import Job, lineage_run

job = Job(
    "ol-quickstart",
    "orders_daily_totals",
    job_type="APPLICATION",
    description="Sums each day's orders into one row per day",
)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="atlan-ext-quickstart-"))
    source, target = folder / "orders.csv", folder / "daily_totals.csv"
    source.write_text("day,amount\n2026-11-24,10.5\n2026-11-24,4.5\n2026-11-25,7\n")

    with lineage_run(job, inputs=[f"file://{source}"], outputs=[f"file://{target}"]) as run:
        totals: dict[str, float] = defaultdict(float)
        with source.open() as rows:
            for row in csv.DictReader(rows):
                totals[row["day"]] += float(row["amount"])
        with target.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["day", "total"])
            writer.writerows(sorted(totals.items()))

    print(f"wrote {target} ({len(totals)} days)")
    print(f"run {run.run_id}: {' -> '.join(state.value for state, _ in run.history)}")


if __name__ == "__main__":
    main()
