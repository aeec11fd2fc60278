#!/usr/bin/env bash
# `just cpu SECONDS`: what the running pipeline costs in CPU. Starts `qubot up --world
# corridor` at its default rates, then reads every process's CPU time (utime + stime from
# /proc/<pid>/stat) over SECONDS idle and over SECONDS under a 10x scan flood (200 scans/s of
# 2880 B, the soak's flood), and prints each as % of one core, with its RSS at the end of the
# window (VmRSS from /proc/<pid>/status). Loopback only; the pipeline
# runs under --timeout and the flood under --duration and --count, so nothing outlives it.
set -euo pipefail
secs=${1:-15}
if ! [[ "$secs" =~ ^[0-9]+$ ]] || ((secs < 5 || secs > 600)); then
  echo "cpu: SECONDS must be a whole number from 5 to 600 (got '$secs')" >&2
  exit 2
fi
# QUBOT_BIN: another build to measure (e.g. the system-allocator one).
bin=${QUBOT_BIN:-./target/release/qubot}
base=19960
hub=tcp/127.0.0.1:17460
tck=$(getconf CLK_TCK)

"$bin" up --world corridor --metrics-port-base "$base" --hub "$hub" --timeout $((3 * secs + 60)) \
  >target/cpu-up.log 2>&1 &
sup=$!
trap 'kill -INT $sup 2>/dev/null || true; wait $sup 2>/dev/null || true' EXIT

# Ready when all four /metrics answer (bounded).
deadline=$((SECONDS + 60))
for port in $base $((base + 1)) $((base + 2)) $((base + 3)); do
  until curl -sf "http://127.0.0.1:$port/metrics" >/dev/null; do
    if ((SECONDS > deadline)) || ! kill -0 $sup 2>/dev/null; then
      echo "cpu: the pipeline did not come up (see target/cpu-up.log)" >&2
      exit 1
    fi
    sleep 0.2
  done
done

# name=pid for the supervisor and each actor (its first argument is its role).
procs() {
  echo "supervisor=$sup"
  for c in $(pgrep -P $sup); do
    echo "$(tr '\0' ' ' </proc/$c/cmdline | awk '{print $2}')=$c"
  done
}

# utime + stime in clock ticks (fields 14 and 15, counted after the command name).
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# Samples every process over $secs and prints "name pct" lines.
window() {
  local -A t0
  local p
  for p in $(procs); do t0[$p]=$(ticks "${p#*=}"); done
  sleep "$secs"
  for p in $(procs); do
    [[ -n "${t0[$p]:-}" ]] || continue
    awk -v n="${p%%=*}" -v d=$(($(ticks "${p#*=}") - t0[$p])) -v tck="$tck" -v s="$secs" \
      -v rss="$(awk '/^VmRSS:/ {print $2}' "/proc/${p#*=}/status")" \
      'BEGIN { printf "%s %.2f %.1f\n", n, 100 * d / tck / s, rss / 1024 }'
  done
}

table() {
  echo "| process | % of one core | RSS MiB |"
  echo "| --- | ---: | ---: |"
  awk '{ printf "| %s | %s | %s |\n", $1, $2, $3; if ($1 != "supervisor") { a += $2; r += $3 } }
       END { printf "| sensor + planner + actuator | %.2f | %.1f |\n", a, r }'
}

echo "idle (corridor world, default rates), $secs s:"
window | table

"$bin" flood --connect "$hub" --wait-subscriber 10 --rate 200 --size 2880 \
  --duration $((secs + 5)) --count $((200 * (secs + 5))) >target/cpu-flood.log 2>&1 &
flood=$!
# The flood is on once the planner counts foreign scans (bounded wait).
deadline=$((SECONDS + 20))
until curl -sf "http://127.0.0.1:$((base + 2))/metrics" | grep -q 'reason="foreign"'; do
  if ((SECONDS > deadline)); then
    echo "cpu: the flood never reached the planner (see target/cpu-flood.log)" >&2
    exit 1
  fi
  sleep 0.2
done
echo
echo "10x scan flood (200/s, 2880 B), $secs s:"
window | table
wait $flood || true
