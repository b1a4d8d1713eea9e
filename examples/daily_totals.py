"""A plain job with no lineage code: sums each day's orders. Wrap it to report its lineage:

    atlan-lineage wrap --connection ol-demo --job daily_totals \\
        --input "file://$PWD/examples/data/orders.csv" \\
        --output "file://$PWD/examples/out/daily_totals.csv" \\
        -- python3 examples/daily_totals.py
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def summarize(source: Path, target: Path) -> int:
    """Write one row per day with the day's total to ``target``; return the number of days."""
    totals: dict[str, float] = defaultdict(float)
    with source.open() as rows:
        for row in csv.DictReader(rows):
            totals[row["day"]] += float(row["amount"])
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["day", "total"])
        writer.writerows((day, f"{total:.2f}") for day, total in sorted(totals.items()))
    return len(totals)


def main() -> int:
    target = HERE / "out" / "daily_totals.csv"
    days = summarize(HERE / "data" / "orders.csv", target)
    print(f"daily_totals: {days} days written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
