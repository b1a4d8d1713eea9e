#!/usr/bin/env bash
# Integration stage: Airflow with apache-airflow-providers-openlineage runs a small DAG with
# `airflow dags test` (SQLite metadata), the transport configured through Airflow's
# [openlineage] transport setting; the task runs arrive paired at a loopback Atlan stand-in.
# Then with the tenant down: all in the outbox, and `atlan-lineage replay` delivers them.
# Its own virtual environment, pinned; nothing reaches the network but the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=integration/common.sh
. integration/common.sh
stage_setup "apache-airflow==2.10.5" "apache-airflow-providers-openlineage==2.1.3"

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
pending="$(pending)"
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
