# Qubot tasks. `just` lists them. CI runs `just ci` (via .ci/run).

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Run the whole pipeline on this host (ARGS e.g. --world corridor --exit-on-goal).
up *ARGS:
    cargo run --release -- up {{ARGS}}

# A local Prometheus with the shipped config scraping a running `qubot up`; prints where to point Grafana.
dashboards:
    @command -v prometheus >/dev/null || { echo "Prometheus is not installed: apt-get install prometheus" >&2; exit 1; }
    mkdir -p target/prometheus/targets
    cp deploy/prometheus.yml deploy/alerts.yml target/prometheus/
    @echo "Prometheus: http://127.0.0.1:9090 (scraping 127.0.0.1:9900-9903; start the pipeline with 'just up')"
    @echo "Grafana: add a Prometheus datasource at http://127.0.0.1:9090 and import dashboards/qubot.json,"
    @echo "         or provision it with dashboards/provisioning (see dashboards/README.md)"
    prometheus --config.file=target/prometheus/prometheus.yml --storage.tsdb.path=target/prometheus/data --web.listen-address=127.0.0.1:9090

# Live per-actor view of a running pipeline.
top *ARGS:
    cargo run --release -- top {{ARGS}}

# The bench harness: raw zenoh (in its callback and handed off) vs Qubot (latency sweep, throughput, allocations; SHM/TCP; mimalloc/system). ~12 min.
bench *ARGS:
    cargo build --release --workspace
    ./target/release/qubot-bench run {{ARGS}}

# The fleet's cost curve: a site router and ROBOTS robots (`qubot up`) on loopback, per-robot CPU, latency, router cost, cross-robot deliveries; target/scale/ (json, table, plots).
scale ROBOTS="1,2,4,8" WINDOW="10":
    cargo build --release --workspace
    ./target/release/qubot-bench scale --robots {{ROBOTS}} --window {{WINDOW}}

# The bench harness with fewer samples and one round (under 2 minutes after the build).
bench-quick:
    cargo build --release --workspace
    ./target/release/qubot-bench run --quick

# The control loop's timeliness at RATES Hz (sensor; actuator 50/200 Hz): idle, 10x scan flood, CPU hog, and the last two with the realtime profile (run as root for it to be granted); actors' histograms and an independent subscriber; target/jitter/. ~4 min.
jitter RATES="20,100" WINDOW="15":
    cargo build --release --workspace
    ./target/release/qubot-bench jitter --rates {{RATES}} --window {{WINDOW}}

# The platform's own floor for a tick's lateness (a plain thread sleeping to absolute deadlines, and the tick handed to a second thread; no Qubot, zenoh or actix), at 20/50/100/200 Hz. ~1 min.
wake SECONDS="15":
    cargo build --release -p qubot-benches --bin qubot-bench
    ./target/release/qubot-bench wake --seconds {{SECONDS}}

# What `qubot record` costs the loop: pipeline CPU and p99 without and with a recorder, three rounds (fixed loopback ports 19700-19770). ~6 min.
record-overhead:
    cargo build --release
    python3 benches/scripts/record_overhead.py

# What the live Foxglove view costs: pipeline CPU, p99 and the view process's CPU and RSS without a view, with `--foxglove` and nobody connected, with a client reading every channel, and with one that never reads; three rounds (fixed loopback ports 19800-19920). ~11 min.
live-overhead:
    cargo build --release
    python3 benches/scripts/live_overhead.py

# Criterion micro-benchmarks: codec encode/decode vs size, planner time vs beams (cache on/off).
bench-micro:
    cargo bench -p qubot-benches

# Flamegraph of the whole pipeline (all processes) driving the corridor world: target/profile/pipeline.svg.
profile SECONDS="20":
    #!/usr/bin/env bash
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v perf >/dev/null || { echo "profile: needs perf (apt-get install linux-perf)" >&2; exit 1; }
    command -v inferno-flamegraph >/dev/null || cargo install --locked inferno
    cargo build --release --workspace
    mkdir -p target/profile
    perf record -F 499 -g -o target/profile/perf.data -- ./target/release/qubot up --world corridor --timeout {{SECONDS}} --metrics-port-base 19900 --hub tcp/127.0.0.1:17447 >/dev/null || true
    perf script -i target/profile/perf.data 2>/dev/null | inferno-collapse-perf > target/profile/pipeline.folded
    inferno-flamegraph --title "qubot up (corridor, {{SECONDS}} s)" < target/profile/pipeline.folded > target/profile/pipeline.svg
    echo "profile: target/profile/pipeline.svg (open in a browser; click to zoom)"

# Planner time per scan in the real pipeline (p50/p99 of the plan handler) on one world run.
plan-time WORLD="corridor":
    cargo build --release --workspace
    bash deploy/plan-time.sh {{WORLD}}

# The planner's time per scan on a recording's scans (`qubot record`), planned offline: run it
# before and after a planner change on the same FILE.
replay-bench FILE *ARGS:
    cargo run --release -p qubot-benches --bin qubot-bench -- replay {{FILE}} {{ARGS}}

# CPU % of one core per process of `qubot up` (corridor world): SECONDS idle, then SECONDS under a 10x scan flood.
cpu SECONDS="15":
    cargo build --release --workspace
    bash deploy/cpu.sh {{SECONDS}}

# Dependency report: crate count, duplicates, what is behind the registry, what makes the binary big.
deps:
    #!/usr/bin/env bash
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"
    host=$(rustc -vV | sed -n 's/^host: //p')
    echo "== crates in the release build of qubot ($host)"
    cargo tree -e normal,build -p qubot --target "$host" --prefix none | sed 's/ (\*)//; s/ (proc-macro)//' | sort -u | wc -l
    echo "== duplicate versions (each allowed one has a reason in deny.toml)"
    cargo tree -d -e normal,build -p qubot --target "$host" --depth 0 | grep -E '^[a-z]' | sort -u
    echo "== behind the registry (cargo update --dry-run --verbose)"
    cargo update --dry-run --verbose 2>&1 | grep -E 'Updating|Unchanged|Adding|Removing' || echo "everything at its newest compatible release"
    echo "== largest crates in the qubot binary"
    command -v cargo-bloat >/dev/null || cargo install --locked cargo-bloat
    cargo bloat --release -p qubot --bin qubot --crates -n 15

# Licenses, sources, banned and duplicate crates (deny.toml); part of `just test`.
deny:
    #!/usr/bin/env bash
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
    cargo deny check bans licenses sources

# Heap profile of one actor under dhat for N messages (and N/4, for the per-message figure): target/heap/.
heap ACTOR="planner" N="400":
    bash deploy/heap.sh {{ACTOR}} {{N}}

# Build the one release binary (run, tests and benches share this profile).
build:
    cargo build --release --workspace

# fmt check, clippy with warnings denied, the full test suite: what CI runs.
ci: lint test

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Unit, property and process-level tests (real zenoh, a real Prometheus), then the /dev/shm check.
test:
    #!/usr/bin/env bash
    set -euo pipefail
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # The README's run command (`cargo run --release`) builds the default member alone, with
    # its own dependency features: built here, so the README test does not build it mid-run.
    cargo build --release
    cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log"
    just shm-check
    just deny
    # A test whose prerequisite is missing says `SKIPPED: ...` (under CI=true it fails instead).
    skipped=$(grep -c '^SKIPPED: ' "$log" || true)
    grep -E '^test result:' "$log" | awk -v s="$skipped" '{p += $4; f += $6} END {printf "tests: %d passed, %d failed, %d skipped\n", p - s, f, s}'

# Look at /dev/shm before cleaning it: a zenoh segment still mapped by a live process means a
# process outlived the suite (fail); segments no process holds are what zenoh leaves by design
# when a process exits (a receiver keeps every sender's pool mapped for life, so nobody can
# unlink the last ones): listed, then removed, and anything clean-shm cannot remove fails.
shm-check:
    #!/usr/bin/env bash
    set -euo pipefail
    held=0
    for f in /dev/shm/*.zenoh; do
        [ -e "$f" ] || continue
        holders=$(grep -l -- "$f" /proc/[0-9]*/maps 2>/dev/null | cut -d/ -f3 | tr '\n' ' ' || true)
        if [ -n "$holders" ]; then
            echo "shm-check: $f is still mapped by pid(s) $holders" >&2
            held=$((held + 1))
        else
            echo "shm-check: $f held by no process (removed below)"
        fi
    done
    ./target/release/qubot clean-shm
    left=$(ls /dev/shm | grep -c '\.zenoh$' || true)
    if [ "$held" != 0 ] || [ "$left" != 0 ]; then
        echo "shm-check: $held segment(s) held by live processes, $left left after clean-shm" >&2
        exit 1
    fi
    echo "shm-check: /dev/shm clean"

# Long decode fuzz run (millions of random and mutated inputs).
fuzz N="10000000":
    cargo run --release -p qubot-msg --example fuzz -- {{N}}

# Property tests with many more cases than the default.
proptest CASES="100000":
    PROPTEST_CASES={{CASES}} cargo test --release -p qubot-msg --test prop

# Listen to the sensor's scans and print each message (probe).
listen *ARGS:
    cargo run --release -- listen --print {{ARGS}}

# Flood a running pipeline (`just up`) with scans on its sensor's key: RATE per second for SECS (ARGS e.g. --size 65536 --publishers 4).
flood RATE="200" SECS="10" *ARGS:
    cargo run --release -- flood --connect tcp/127.0.0.1:7447 --wait-subscriber 10 --rate {{RATE}} --duration {{SECS}} --count 100000000 {{ARGS}}

# Every chaos scenario in deploy/chaos against a pipeline each starts, then a summary table (SCALE < 1: short versions).
chaos SCALE="1.0":
    cargo build --release --workspace
    ./target/release/qubot chaos deploy/chaos/*.toml --duration-scale {{SCALE}}

# Re-records the chaos scenarios' recorded load (200 scans of a patrol run): needed when the
# header version changes, since replay refuses an older one.
chaos-recording:
    bash deploy/chaos/record-load.sh

# N start/flood/SIGINT cycles of `qubot up`: each must stop within stop_timeout_ms + 1 s, leaving no actor behind.
stress-stop N="200":
    cargo build --release --workspace
    bash deploy/stress-stop.sh {{N}}

# 10-minute 10x scan flood, RSS of every actor each second into target/soak-rss.csv (SCALE < 1: shorter).
soak SCALE="1.0":
    cargo build --release --workspace
    ./target/release/qubot chaos deploy/soak.toml --duration-scale {{SCALE}} --rss-csv target/soak-rss.csv

# Build with the system allocator instead of mimalloc (the whole workspace, so no dependency is rebuilt).
build-system-alloc:
    cargo build --release --workspace --features qubot/system-alloc

# N network-namespace edge devices (dev1..devN at 10.77.0.I, an sshd each) and the site router's device dev100 (10.77.0.100); needs root.
lab N="2":
    bash deploy/lab.sh up {{N}}

# Stop everything running in the lab devices and remove them.
lab-down:
    bash deploy/lab.sh down

# Build once, copy to HOSTS (group, robot, "all", host or router names) over SSH: each site router alone, then a canary, then waves (ARGS: --inventory FILE, --wave K), each health-gated, a failed wave rolled back.
deploy HOSTS *ARGS:
    bash deploy/deploy.sh {{ARGS}} {{HOSTS}}

# Fleet CA and per-host and per-router certificates for zenoh mutual TLS (target/certs).
certs:
    bash deploy/certs.sh

# The pipeline's CPU at 20 and 100 Hz beside its floor (three raw zenoh processes moving the same messages at the same rates), in one run: target/floor/ (json, tables).
floor WINDOW="10":
    cargo build --release -p qubot-benches -p qubot
    cargo run --release -p qubot-benches --bin qubot-bench -- floor --window {{WINDOW}}
