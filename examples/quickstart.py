"""The same job as daily_totals.py, reporting its own lineage with lineage_run.

With no Atlan tenant configured (ATLAN_BASE_URL / ATLAN_API_KEY unset) the events are kept in
the local outbox; with a tenant, they are sent to it.

    python3 examples/quickstart.py
"""

from __future__ import annotations

from daily_totals import HERE, summarize

from atlan_ext import Job, lineage_run

job = Job(
    "ol-demo",
    "daily_totals_python",
    job_type="APPLICATION",
    description="Sums each day's orders into one row per day",
)


def main() -> None:
    source, target = HERE / "data" / "orders.csv", HERE / "out" / "daily_totals.csv"
    with lineage_run(job, inputs=[f"file://{source}"], outputs=[f"file://{target}"]) as run:
        days = summarize(source, target)
    print(f"wrote {target} ({days} days)")
    print(f"run {run.run_id}: {' -> '.join(state.value for state, _ in run.history)}")


if __name__ == "__main__":
    main()
