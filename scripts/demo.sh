#!/usr/bin/env bash
# make demo: the daemon on config/noised.yaml, synthetic Mochi-shaped latents in, a tap out.
set -euo pipefail
bin=${1:-.build/release/noised}
config=config/noised.yaml
batches=${DEMO_BATCHES:-1500}
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null || true; rm -rf "$work"' EXIT

endpoint() { # the endpoint a key of the config names
  python3 -c "import yaml,sys; print(yaml.safe_load(open('$config'))['$1']['$2'])"
}
input=$(endpoint input acked_endpoint)
output=$(endpoint output endpoint)

echo "== noised demo: $batches batches of Mochi-shaped latents [2, 12, 28, 60, 106] bf16"
echo "== daemon on $config (input $input, output $output), state in $work"
"$bin" run --config "$config" --state-dir "$work/state" 2> "$work/daemon.log" &
daemon=$!
for _ in $(seq 100); do grep -q 'msg=ready' "$work/daemon.log" && break; sleep 0.1; done
grep -q 'msg=ready' "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }

"$bin" tap --endpoint "$output" --count "$batches" --seconds 300 --verify --interval 2 > "$work/tap.log" &
tap=$!
tail -f "$work/tap.log" --pid $tap &
"$bin" feed --endpoint "$input" --shape 2,12,28,60,106 --dtype bf16 --count "$batches"
wait $tap
kill -TERM $daemon
wait $daemon
echo "== daemon log (last lines)"
tail -n 3 "$work/daemon.log"
