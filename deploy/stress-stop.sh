#!/usr/bin/env bash
# Ctrl-C must always stop the pipeline: N cycles of `qubot up` (fresh robot name, hub and
# metrics ports on loopback), each interrupted with SIGINT at a random moment: during start-up,
# while the loop runs, or in the middle of a `qubot flood` on its scan key. Every cycle must
# exit 0 with its run report within stop_timeout_ms + 1 s of the signal and leave no actor
# process behind. Prints one line per failure and a summary; exit 1 if any cycle failed.
# Usage: deploy/stress-stop.sh [N] [QUBOT]   (not part of CI: hundreds of cycles take minutes)
set -uo pipefail

n=${1:-200}
qubot=${2:-./target/release/qubot}
[ -x "$qubot" ] || { echo "stress-stop: $qubot is not built (just build)" >&2; exit 2; }
stop_timeout_ms=3000 # the node config default, set explicitly below
limit_ms=$((stop_timeout_ms + 1000))
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cfg="$dir/node.toml"
printf '[supervisor]\nstop_timeout_ms = %d\n' "$stop_timeout_ms" >"$cfg"

now_ms() { date +%s%3N; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A base port whose four metrics ports (supervisor and three actors) are all free now.
base_port() {
    python3 -c '
import random, socket
for _ in range(1000):
    b = random.randrange(20000, 60000)
    try:
        socks = [socket.socket() for _ in range(4)]
        for i, s in enumerate(socks):
            s.bind(("127.0.0.1", b + i))
        print(b)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
'
}

fail=0
worst=0
times=()
for i in $(seq 1 "$n"); do
    robot="stress$i"
    base=$(base_port)
    hub="tcp/127.0.0.1:$(port)"
    out="$dir/out.$i"
    # A background job of a script starts with SIGINT ignored (bash, without job control):
    # give it the default disposition an operator's terminal gives it.
    env --default-signal=INT,TERM "$qubot" up --config "$cfg" --robot "$robot" --hub "$hub" \
        --metrics-port-base "$base" >"$out" 2>"$dir/err.$i" </dev/null &
    pid=$!
    # The signal must reach qubot, not the shell that is about to exec it (a background job's
    # shell ignores SIGINT, and that would lose it): wait until the exec happened.
    for _ in $(seq 1 500); do
        [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$qubot")" ] && break
        sleep 0.002
    done
    flood=""
    case $((RANDOM % 3)) in
    0) sleep "0.$((RANDOM % 10))" ;; # start-up: before or while the actors spawn
    1) # the loop runs
        for _ in $(seq 1 100); do
            curl -sf "127.0.0.1:$((base + 3))/metrics" >/dev/null 2>&1 && break
            sleep 0.1
        done
        sleep "0.$((RANDOM % 10))" ;;
    2) # under a flood of scans on its sensor's key (bounded: 2 s at most)
        for _ in $(seq 1 100); do
            curl -sf "127.0.0.1:$((base + 3))/metrics" >/dev/null 2>&1 && break
            sleep 0.1
        done
        "$qubot" flood --robot "$robot" --connect "$hub" --rate 2000 --duration 2 --count 4000 \
            >/dev/null 2>&1 &
        flood=$!
        sleep "0.$((RANDOM % 10))" ;;
    esac
    t0=$(now_ms)
    kill -INT "$pid"
    code=""
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            code=$?
            break
        fi
        if [ $(($(now_ms) - t0)) -gt $((limit_ms + 5000)) ]; then
            break
        fi
        sleep 0.01
    done
    took=$(($(now_ms) - t0))
    times+=("$took")
    [ "$took" -gt "$worst" ] && worst=$took
    if [ -z "$code" ]; then
        echo "cycle $i: qubot up still running ${took} ms after SIGINT" >&2
        keep="${STRESS_KEEP:-/tmp}/stress-stop-$i"
        mkdir -p "$keep"
        cp "$out" "$dir/err.$i" "$keep/" 2>/dev/null
        # Where it hangs: every thread's stack, when gdb is there.
        command -v gdb >/dev/null && gdb -p "$pid" -batch -ex "thread apply all bt" >"$keep/stacks.txt" 2>&1
        echo "cycle $i: output and stacks kept in $keep" >&2
        kill -KILL "$pid" 2>/dev/null
        fail=$((fail + 1))
    elif [ "$code" = 130 ] && ! grep -q spawned "$out"; then
        : # interrupted before it started anything: SIGINT's default action, nothing to stop
    elif [ "$code" != 0 ] || ! tail -n 1 "$out" | grep -q '"finish":"signal"'; then
        echo "cycle $i: exit $code, last line: $(tail -n 1 "$out")" >&2
        fail=$((fail + 1))
    elif [ "$took" -gt "$limit_ms" ]; then
        echo "cycle $i: stopped after ${took} ms (limit ${limit_ms} ms)" >&2
        fail=$((fail + 1))
    fi
    [ -n "$flood" ] && { kill "$flood" 2>/dev/null; wait "$flood" 2>/dev/null; }
    # No actor of this run may outlive its supervisor.
    for _ in $(seq 1 50); do
        pgrep -f -- "--supervisor-pid $pid\$" >/dev/null || break
        sleep 0.1
    done
    if pgrep -f -- "--supervisor-pid $pid\$" >/dev/null; then
        echo "cycle $i: actors left running after the supervisor exited" >&2
        pkill -KILL -f -- "--supervisor-pid $pid\$"
        fail=$((fail + 1))
    fi
    rm -f "$out" "$dir/err.$i"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
p50=$(echo "$sorted" | awk -v n="$n" 'NR == int((n + 1) / 2)')
p99=$(echo "$sorted" | awk -v n="$n" 'NR == int(n * 0.99 + 0.999)')
echo "stress-stop: $n cycles, $fail failed; SIGINT to exit: p50 ${p50} ms, p99 ${p99} ms, max ${worst} ms (limit ${limit_ms} ms)"
"$qubot" clean-shm
[ "$fail" = 0 ]
