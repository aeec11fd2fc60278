#!/usr/bin/env bash
# `just plan-time WORLD`: how long the planner spends per scan in the real pipeline. Runs
# `qubot up --world WORLD --exit-on-goal` on loopback, reads the planner's /metrics every
# 0.5 s until the run ends, and prints p50 and p99 of qubot_handler_duration_seconds
# {message="plan"} from the last scrape (interpolated within histogram buckets, as
# Prometheus' histogram_quantile does), with the route-field counters.
# QUBOT_BIN measures another build (e.g. an older commit) the same way.
set -euo pipefail
world=${1:-corridor}
bin=${QUBOT_BIN:-./target/release/qubot}
base=19980
port=$((base + 2))
out=target/plan-time-metrics.txt
rm -f "$out"
"$bin" up --world "$world" --exit-on-goal --timeout 120 --metrics-port-base "$base" \
  --hub tcp/127.0.0.1:17480 >target/plan-time-up.log 2>&1 &
sup=$!
trap 'kill -INT $sup 2>/dev/null || true; wait $sup 2>/dev/null || true' EXIT
while kill -0 $sup 2>/dev/null; do
  curl -sf "http://127.0.0.1:$port/metrics" >"$out.new" 2>/dev/null && mv "$out.new" "$out"
  sleep 0.5
done
tail -1 target/plan-time-up.log
[[ -s "$out" ]] || { echo "plan-time: never read the planner's /metrics" >&2; exit 1; }
awk '
  /^qubot_handler_duration_seconds_bucket/ && /message="plan"/ {
    match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
    n++; les[n] = (le == "+Inf") ? 1e9 : le + 0; cnt[n] = $NF + 0
  }
  /^qubot_planner_cache_total/ && /cache="route"/ { match($0, /result="[^"]*"/); r[substr($0, RSTART + 8, RLENGTH - 9)] = $NF }
  function q(p,   target, i, lo, c0) {
    target = p * cnt[n]; lo = 0; c0 = 0
    for (i = 1; i <= n; i++) {
      if (cnt[i] >= target) return lo + (les[i] - lo) * (target - c0) / (cnt[i] - c0 > 0 ? cnt[i] - c0 : 1)
      lo = les[i]; c0 = cnt[i]
    }
    return les[n]
  }
  END {
    printf "plans %d  p50 %.3f ms  p99 %.3f ms  route hit %s repair %s miss %s\n", cnt[n], 1e3 * q(0.5), 1e3 * q(0.99), r["hit"], r["repair"], r["miss"]
  }' "$out"
