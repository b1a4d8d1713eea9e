#!/usr/bin/env bash
# Integration stage: Airflow with apache-airflow-providers-openlineage runs a small DAG with
# `airflow dags test` (SQLite metadata), the transport configured through Airflow's
# [openlineage] transport setting; the task runs arrive paired at a loopback Atlan stand-in.
# Then with the tenant down: all in the outbox, and `atlan-lineage replay` delivers them.
# Its own virtual environment, pinned; nothing reaches the network but the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip
"$work/venv/bin/pip" install --quiet -e . \
    "apache-airflow==2.10.5" "apache-airflow-providers-openlineage==2.1.3"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"

record="$work/record.jsonl"
: > "$record"
python integration/standin.py "$record" > "$work/port" &
standin=$!
stop() {
    kill "$standin" 2>/dev/null || true
    for pid in $(pgrep -f "atlan_ext.courier" || true); do
        if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "ATLAN_EXT_HOME=$work/home"; then
            kill "$pid" 2>/dev/null || true
        fi
    done
}
trap stop EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done

export ATLAN_BASE_URL="http://127.0.0.1:$(cat "$work/port")" ATLAN_API_KEY=integration-key
export ATLAN_EXT_HOME="$work/home"
export AIRFLOW_HOME="$work/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/integration/airflow/dags"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$work/airflow/airflow.db"
export AIRFLOW__OPENLINEAGE__NAMESPACE=ol-airflow
export AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "atlan_ext.transport.AtlanTransport", "connector": "airflow"}'
mkdir -p "$AIRFLOW_HOME"
airflow db migrate > "$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; exit 1; }

echo "-- airflow dags test, Atlan up"
airflow dags test atlan_ext_demo 2026-11-25 > "$work/run1.log" 2>&1 || { tail -50 "$work/run1.log"; exit 1; }
atlan-lineage flush --timeout 60s
# `airflow dags test` itself sends no START for the DAG run (its file transport shows the
# same): only the DAG run's COMPLETE is exempt from pairing; every task run must be paired.
python integration/check.py "$record" --runs-at-least 3 --connector airflow \
    --producer-sends-no-start atlan_ext_demo

echo "-- airflow dags test, Atlan down (503): everything waits in the outbox"
: > "$record"
touch "$record.down"
airflow dags test atlan_ext_demo 2026-11-24 > "$work/run2.log" 2>&1 || { tail -50 "$work/run2.log"; exit 1; }
pending="$(python -c 'from atlan_ext.outbox import Outbox, default_path; print(Outbox(default_path()).counts()[0])')"
echo "pending in the outbox: $pending"
[ "$pending" -ge 4 ]
rm "$record.down"
echo "-- Atlan back: replay"
atlan-lineage replay
atlan-lineage flush --timeout 60s
# `airflow dags test` itself sends no START for the DAG run (its file transport shows the
# same): only the DAG run's COMPLETE is exempt from pairing; every task run must be paired.
python integration/check.py "$record" --runs-at-least 3 --connector airflow \
    --producer-sends-no-start atlan_ext_demo
