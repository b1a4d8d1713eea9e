# Sourced by the integration stages: `stage_setup PACKAGE...` makes a virtual environment of
# its own with atlan-ext and the pinned PACKAGEs, activates it, starts the loopback Atlan
# stand-in and points atlan-ext at it (ATLAN_BASE_URL, ATLAN_API_KEY, ATLAN_EXT_HOME). It sets
# `work` (a fresh folder) and `record` (what the stand-in received, one event per line); the
# stand-in and any courier of this stage are stopped on exit. `pending` prints how many
# events the outbox holds.
stage_setup() {
    work="$(mktemp -d)"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --upgrade pip
    "$work/venv/bin/pip" install --quiet -e . "$@"
    # shellcheck disable=SC1091
    . "$work/venv/bin/activate"
    record="$work/record.jsonl"
    : > "$record"
    python integration/standin.py "$record" > "$work/port" &
    standin=$!
    trap stage_stop EXIT
    for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
    export ATLAN_BASE_URL="http://127.0.0.1:$(cat "$work/port")" ATLAN_API_KEY=integration-key
    export ATLAN_EXT_HOME="$work/home"
}

stage_stop() {
    kill "$standin" 2>/dev/null || true
    for pid in $(pgrep -f "atlan_ext.courier" || true); do
        if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "ATLAN_EXT_HOME=$work/home"; then
            kill "$pid" 2>/dev/null || true
        fi
    done
}

pending() {
    python -c 'from atlan_ext.outbox import Outbox, default_path; print(Outbox(default_path()).counts()[0])'
}
