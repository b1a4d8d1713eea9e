#!/usr/bin/env bash
# Integration stage: dbt-ol (openlineage-dbt) builds a small dbt project on DuckDB; its events
# go through atlan_ext.transport.AtlanTransport to a loopback Atlan stand-in, under
# `atlan-lineage wrap` (so the dbt runs nest under wrap's run). Then the same with the tenant
# down: everything waits in the outbox, and `atlan-lineage replay` delivers it.
# Its own virtual environment, pinned; nothing reaches the network but the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=integration/common.sh
. integration/common.sh
stage_setup "dbt-core==1.9.8" "dbt-duckdb==1.9.4" "openlineage-dbt==1.54.0" "openlineage-python==1.54.0"

export DBT_DUCKDB_PATH="$work/demo.duckdb" OPENLINEAGE_NAMESPACE=ol-dbt
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
pending="$(pending)"
echo "pending in the outbox: $pending"
[ "$pending" -ge 8 ]
rm "$record.down"
echo "-- Atlan back: replay"
atlan-lineage replay
atlan-lineage flush --timeout 60s
python integration/check.py "$record" --runs-at-least 4 --parent-job dbt_build \
    --connector generic-openlineage
