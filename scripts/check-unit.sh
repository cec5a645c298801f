#!/usr/bin/env bash
# Checks systemd/noised.service and the template systemd/noised@.service: `systemd-analyze verify`
# must pass with no message, and `systemd-analyze security --offline=yes` must score the sandboxing
# of each at most MAX_EXPOSURE.
# Usage: scripts/check-unit.sh [path/to/noised]   (default: .build/release/noised)
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
UNITS=(systemd/noised.service systemd/noised@.service)
BINARY=$(realpath -m "${1:-.build/release/noised}")

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-unit: installing systemd (for systemd-analyze)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
if [ ! -x "$BINARY" ]; then
    echo "check-unit: $BINARY is not an executable: build it first (make build)" >&2
    exit 1
fi

# verify needs ExecStart's binary to exist: check copies of the units pointed at the built one.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

check_unit() {
    local unit=$1 name copy installed_path messages report score
    name=$(basename "$unit")
    copy="$scratch/$name"
    installed_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
    sed "s#^ExecStart=$installed_path#ExecStart=$BINARY#" "$unit" > "$copy"

    # A template is verified and scored as an instance of itself (systemd names it name@i).
    messages=$(systemd-analyze verify "$copy" 2>&1) || {
        echo "check-unit: $name: systemd-analyze verify failed:" >&2
        echo "$messages" >&2
        exit 1
    }
    if [ -n "$messages" ]; then
        echo "check-unit: $name: systemd-analyze verify reported:" >&2
        echo "$messages" >&2
        exit 1
    fi
    echo "check-unit: $name: verify ok"

    report=$(systemd-analyze security --offline=yes --no-pager "$copy" 2>&1) || {
        echo "$report" >&2
        echo "check-unit: $name: systemd-analyze security failed" >&2
        exit 1
    }
    score=$(echo "$report" | sed -n 's/.*Overall exposure level for [^ ]*: \([0-9.]*\).*/\1/p')
    if [ -z "$score" ]; then
        echo "$report" >&2
        echo "check-unit: $name: no exposure score in systemd-analyze security's report" >&2
        exit 1
    fi
    if awk -v score="$score" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(score > max) }'; then
        echo "$report" | grep -E '^✗' >&2 || true
        echo "check-unit: $name: exposure $score is above $MAX_EXPOSURE" >&2
        exit 1
    fi
    echo "check-unit: $name: security exposure $score (at most $MAX_EXPOSURE)"
}

for unit in "${UNITS[@]}"; do
    check_unit "$unit"
done
