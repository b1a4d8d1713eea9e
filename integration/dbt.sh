#!/usr/bin/env bash
# Integration stage: dbt-ol (openlineage-dbt) builds a small dbt project on DuckDB; its events
# go through atlan_ext.transport.AtlanTransport to a loopback Atlan stand-in, under
# `atlan-lineage wrap` (so the dbt runs nest under wrap's run). Then the same with the tenant
# down: everything waits in the outbox, and `atlan-lineage replay` delivers it.
# Its own virtual environment, pinned; nothing reaches the network but the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip
"$work/venv/bin/pip" install --quiet -e . \
    "dbt-core==1.9.8" "dbt-duckdb==1.9.4" "openlineage-dbt==1.54.0" "openlineage-python==1.54.0"
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
export ATLAN_EXT_HOME="$work/home" DBT_DUCKDB_PATH="$work/demo.duckdb" OPENLINEAGE_NAMESPACE=ol-dbt
export OPENLINEAGE__TRANSPORT__TYPE=atlan_ext.transport.AtlanTransport
export OPENLINEAGE__TRANSPORT__CONNECTOR=generic-openlineage
cp -r integration/dbt "$work/project"
build() {
    atlan-lineage wrap --connection ol-dbt --job dbt_build --connector generic-openlineage -- \
        dbt-ol build --project-dir "$work/project" --profiles-dir "$work/project"
}

echo "-- dbt-ol build, Atlan up"
build
atlan-lineage flush --timeout 60s
python integration/check.py "$record" --runs-at-least 4 --parent-job dbt_build \
    --connector generic-openlineage

echo "-- dbt-ol build, Atlan down (503): everything waits in the outbox"
: > "$record"
touch "$record.down"
build
pending="$(python -c 'from atlan_ext.outbox import Outbox, default_path; print(Outbox(default_path()).counts()[0])')"
echo "pending in the outbox: $pending"
[ "$pending" -ge 8 ]
rm "$record.down"
echo "-- Atlan back: replay"
atlan-lineage replay
atlan-lineage flush --timeout 60s
python integration/check.py "$record" --runs-at-least 4 --parent-job dbt_build \
    --connector generic-openlineage
