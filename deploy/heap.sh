#!/usr/bin/env bash
# `just heap ACTOR N`: runs the pipeline on this host with ACTOR replaced by a build whose
# global allocator is dhat's, stops it after N handled messages (and again after N/4), and
# writes dhat's profiles plus a summary to target/heap/. The difference of the two runs divided
# by the difference in messages is the steady-state cost per message (start-up cancels out).
set -euo pipefail
cd "$(dirname "$0")/.."

actor=${1:-planner}
n=${2:-400}
case "$actor" in sensor | planner | actuator) ;; *)
  echo "heap: ACTOR must be sensor, planner or actuator (got '$actor')" >&2
  exit 2
  ;;
esac
if ! [[ "$n" =~ ^[0-9]+$ ]] || ((n < 40 || n > 100000)); then
  echo "heap: N must be a whole number of messages from 40 to 100000 (got '$n')" >&2
  exit 2
fi

out=target/heap
mkdir -p "$out"
# One workspace build with the feature, copied aside, then the normal binary again: building
# the whole workspace keeps every dependency's features (and so its build) the same.
cargo build --release --workspace --features qubot/dhat-heap
cp target/release/qubot "$out/qubot-dhat"
cargo build --release --workspace

base=19950
{
  echo 'world = "corridor"'
  echo '[zenoh]'
  echo 'hub = "tcp/127.0.0.1:17547"'
  echo '[supervisor]'
  echo "metrics_port = $base"
  i=1
  for a in sensor planner actuator; do
    echo "[$a]"
    echo "metrics_port = $((base + i))"
    [ "$a" = "$actor" ] && echo "enabled = false"
    i=$((i + 1))
  done
} >"$out/node.toml"
port_of() { awk -v a="[$1]" '$0 == a {f = 1} f && /^metrics_port/ {print $3; exit}' "$out/node.toml"; }
port=$(port_of "$actor")
# Progress is read from the actor upstream of the profiled one (its published count), so that
# scraping, which allocates, does not run inside the profiled process while it works.
case "$actor" in
  planner) upstream=sensor ;;
  actuator) upstream=planner ;;
  sensor) upstream=actuator ;;
esac
upstream_port=$(port_of "$upstream")

# Sum of one counter family on a local /metrics endpoint.
counter() {
  local page
  page=$(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && cat <&3) 2>/dev/null || {
    echo 0
    return
  }
  awk -v m="$2" 'index($0, m "{") == 1 {s += $NF} END {printf "%d\n", s}' <<<"$page"
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ./target/release/qubot clean-shm >/dev/null 2>&1 || true
}
trap cleanup EXIT

run_once() {
  local want=$1 tag="$actor-$1"
  pids=()
  ./target/release/qubot up --config "$out/node.toml" >"$out/up-$tag.log" 2>&1 &
  pids+=($!)
  QUBOT_HEAP_OUT="$out/$tag.json" "$out/qubot-dhat" "$actor" --config "$out/node.toml" >"$out/$tag.log" 2>&1 &
  local me=$!
  pids+=("$me")
  local deadline=$((SECONDS + 60 + want / 5)) got=0
  while got=$(counter "$upstream_port" qubot_messages_published_total) && ((got < want)); do
    if ((SECONDS > deadline)); then
      echo "heap: $upstream published only $got of $want messages in time (see $out/$tag.log)" >&2
      exit 1
    fi
    sleep 0.2
  done
  # One scrape of the profiled actor per run (the same in both runs, so it cancels out).
  got=$(counter "$port" qubot_messages_received_total)
  kill -TERM "$me"
  wait "$me" || true
  echo "$got" >"$out/$tag.messages"
  cleanup
}

small=$((n / 4))
run_once "$small"
run_once "$n"

python3 - "$out" "$actor" "$small" "$n" <<'PY'
import json, sys
out, actor, small, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def load(k):
    s = json.load(open(f"{out}/{actor}-{k}.summary.json"))
    s["messages"] = int(open(f"{out}/{actor}-{k}.messages").read())
    return s
a, b = load(small), load(n)
dm = b["messages"] - a["messages"]
summary = {
    "actor": actor,
    "runs": {small: a, n: b},
    "bytes_per_message": (b["total_bytes"] - a["total_bytes"]) / dm,
    "blocks_per_message": (b["total_blocks"] - a["total_blocks"]) / dm,
    "peak_bytes": b["peak_bytes"],
    "peak_growth_bytes": b["peak_bytes"] - a["peak_bytes"],
    "profile": f"{out}/{actor}-{n}.json",
}
json.dump(summary, open(f"{out}/{actor}-summary.json", "w"), indent=2)
print(json.dumps(summary))
PY
echo "heap: open $out/$actor-$n.json in dhat's viewer (dh_view.html, from the valgrind package)"
