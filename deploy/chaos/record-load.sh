#!/usr/bin/env bash
# `just chaos-recording`: records deploy/chaos/recordings/patrol-scans.mcap, the load of
# replay-load.toml: the first 200 scans of a `qubot up` in the patrol world. The recorder
# listens and the robot connects to it, so the file starts with the robot's first scan.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release
bin=./target/release/qubot
out=deploy/chaos/recordings/patrol-scans.mcap
mkdir -p "$(dirname "$out")"
rm -f "$out"
export RUST_LOG=${RUST_LOG:-warn,zenoh=error}
"$bin" record --robot patrol-rec --listen tcp/127.0.0.1:17631 --out "$out" \
  --include scan --no-view --count 200 &
rec=$!
until (exec 3<>/dev/tcp/127.0.0.1/17631) 2>/dev/null; do
  kill -0 $rec 2>/dev/null || { echo "record-load: the recorder exited" >&2; exit 1; }
  sleep 0.1
done
"$bin" up --robot patrol-rec --world deploy/chaos/worlds/patrol.toml --timeout 60 \
  --connect tcp/127.0.0.1:17631 --hub tcp/127.0.0.1:17632 --metrics-port-base 17640 >/dev/null &
up=$!
trap 'kill -INT $up 2>/dev/null || true; wait $up 2>/dev/null || true' EXIT
wait $rec
ls -l "$out"
