#!/usr/bin/env bash
# `just deploy HOSTS`: build once, bundle per host, copy over SSH into <root>/releases/<version>/,
# switch <root>/current atomically, restart, wait for health, roll back when unhealthy.
#
#   deploy/deploy.sh [--inventory FILE] [--wave K] HOSTS
#
# HOSTS: a group, a robot, "all", or host and router names. The selected site routers go
# first, each alone (every board links to them); then the first board is the canary, deployed
# alone; the rest go in waves of K boards at a time (--wave, else the inventory's fleet.wave,
# else 1).
#
# Environment:
#   QUBOT_BIN             ship this binary instead of building (tests use the one under test)
#   QUBOT_SSH_CONFIG      ssh client config (default: the lab's, when `just lab` is up)
#   QUBOT_HEALTH_TIMEOUT  seconds a new release has to become healthy (default 30)
#   QUBOT_ROLLBACK_TIMEOUT  seconds the previous release has after a rollback (default 60)
#   QUBOT_CERTS           fleet CA and host certificates from `just certs` (default target/certs)
#   QUBOT_TARGETS         Prometheus file-SD directory (default target/prometheus/targets)
#   QUBOT_STAGE           where bundles are assembled (default target/deploy)
#
# A router is healthy when it listens, answers on /metrics and, within the health timeout,
# every board of each robot it served before the switch links to it again (`qubot health
# --router`). A board wave is healthy when every host of it is (each process live, /metrics,
# clocks) and the loop of every robot it touched closes end to end (commands applied at that
# robot's actuator, planned on its own sensor's scans: `qubot health --loop` on the
# actuator's host). A failed wave is rolled back whole, every later wave is skipped (a failed
# router stops the rollout before any board), and the summary says which routers and hosts
# run what (and warns when earlier waves leave the fleet mixed). Once a release is copied to
# a host, any failure there (switch, restart, health) rolls that host back to its previous
# release; the script always ends with the summary.
# Version = hash of the bundle's contents: deploying the same bundle again is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

inv=deploy/inventory.toml
wave_size=""
while [ $# -gt 1 ]; do
  case "$1" in
    --inventory) inv=$2; shift 2 ;;
    --wave) wave_size=$2; shift 2 ;;
    *) break ;;
  esac
done
sel=${1:?usage: deploy/deploy.sh [--inventory FILE] [--wave K] HOSTS}
health_timeout=${QUBOT_HEALTH_TIMEOUT:-30}
rollback_timeout=${QUBOT_ROLLBACK_TIMEOUT:-60}
certs=${QUBOT_CERTS:-target/certs}
targets=${QUBOT_TARGETS:-target/prometheus/targets}
ssh_config=${QUBOT_SSH_CONFIG:-}
lab_ssh_config=/var/lib/qubot-lab/ssh/config
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=5)

say() { echo "deploy: $*"; }
die() { echo "deploy: error: $*" >&2; exit 2; }
# One word for the device's shell, whatever it is (POSIX sh: single quotes, each ' as '\'').
# `qubot inventory check` already restricts the inventory's values to inert characters; this
# also covers what comes back from a device (the release `current` points at).
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

[ -z "$wave_size" ] || [[ $wave_size =~ ^[1-9][0-9]*$ ]] || die "--wave must be a number of hosts (1 or more), got '$wave_size'"
[[ $health_timeout =~ ^[0-9]+$ ]] || die "QUBOT_HEALTH_TIMEOUT must be a number of seconds, got '$health_timeout'"
[[ $rollback_timeout =~ ^[0-9]+$ ]] || die "QUBOT_ROLLBACK_TIMEOUT must be a number of seconds, got '$rollback_timeout'"

if [ -n "${QUBOT_BIN:-}" ]; then
  bin=$QUBOT_BIN
else
  say "building the release binary"
  cargo build --release -p qubot
  bin=target/release/qubot
fi
[ -x "$bin" ] || die "no binary at $bin"
# Checked once (exit 2 on an error): its warning about an unauthenticated fleet (fleet.tls =
# false) reaches stderr once per deploy.
checked=$("$bin" inventory check "$inv")
# The robot's name, or the fleet's robots joined by '-': the Prometheus targets file's name.
robot=$(sed -n 's/.*robots\{0,1\} \(.*\))$/\1/p' <<<"$checked" | tr ' ' '-')
# Boards (name, address, user, root, arch, robot) and routers (the same less robot). Taken in
# the script's own shell so that an inventory error (already said on stderr) ends it here.
listed=$("$bin" inventory hosts "$inv" "$sel") || exit 2
hosts=()
[ -z "$listed" ] || mapfile -t hosts <<<"$listed"
listed=$("$bin" inventory routers "$inv" "$sel") || exit 2
routers=()
[ -z "$listed" ] || mapfile -t routers <<<"$listed"
[ ${#hosts[@]} -gt 0 ] || [ ${#routers[@]} -gt 0 ] || die "'$sel' selects no host and no router of $inv"
[ -n "$wave_size" ] || wave_size=$("$bin" inventory wave "$inv")
local_arch=$(uname -m)
# The bundled binary: debug info dropped (symbols kept for backtraces), 5x smaller to hash and
# to copy to every board.
mkdir -p "${QUBOT_STAGE:-target/deploy}"
shipped="${QUBOT_STAGE:-target/deploy}/qubot"
if command -v strip >/dev/null; then strip --strip-debug -o "$shipped" "$bin"; else cp "$bin" "$shipped"; fi
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then rev="$rev-dirty"; fi
stage_root=${QUBOT_STAGE:-target/deploy}

# Builds the bundle of host $2 (a $1: board|router) in $stage_root/$2/bundle; prints its
# version. A router's has its own unit, named qubot.service so that `service` installs either
# kind alike, and no worlds. (Called as a condition, where `set -e` does not apply: each step
# fails the bundle itself.)
bundle() {
  local kind=$1 host=$2 arch=$3 out="$stage_root/$2/bundle"
  [ "$arch" = "$local_arch" ] || { echo "host arch $arch but the binary is $local_arch (cross-build first)" >&2; return 1; }
  rm -rf "$out" || return 1
  mkdir -p "$out/tls" || return 1
  cp "$shipped" "$out/qubot" || return 1
  cp deploy/qubot-service "$out/" || return 1
  if [ "$kind" = router ]; then
    cp deploy/systemd/qubot-router.service "$out/qubot.service" || return 1
  else
    cp deploy/systemd/qubot.service "$out/" || return 1
    cp -r deploy/worlds "$out/worlds" || return 1
  fi
  "$bin" inventory render "$inv" --host "$host" --out "$out" || return 1
  if [ -f "$out/zenoh.json5" ]; then
    for f in ca.crt "$host.crt" "$host.key"; do
      [ -f "$certs/$f" ] || { echo "missing $certs/$f: run 'just certs' (fleet.tls = true)" >&2; return 1; }
    done
    cp "$certs/ca.crt" "$out/tls/ca.crt" || return 1
    cp "$certs/$host.crt" "$out/tls/host.crt" || return 1
    install -m 600 "$certs/$host.key" "$out/tls/host.key" || return 1
  fi
  # Content hash over names and bytes, independent of mtimes and of the git revision.
  (cd "$out" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12
}

# Runs a shell snippet on a host. Without QUBOT_SSH_CONFIG, hosts of `just lab`'s subnet use
# the lab's key and config; every other host the user's own ssh configuration.
on() {
  local target=$1; shift
  local cfg=$ssh_config addr=${target##*@}
  if [ -z "$cfg" ] && [ -f "$lab_ssh_config" ] && grep -qxF "Host ${addr%.*}.*" "$lab_ssh_config"; then
    cfg=$lab_ssh_config
  fi
  if [ -n "$cfg" ]; then ssh -F "$cfg" "${ssh_opts[@]}" "$target" "$@"; else ssh "${ssh_opts[@]}" "$target" "$@"; fi
}

# The service on the device: systemd when it is PID 1 there, else the pidfile wrapper.
service() {
  local target=$1 root=$2 verb=$3
  on "$target" "set -e
    if [ \"\$(cat /proc/1/comm 2>/dev/null)\" = systemd ] && [ $(q "$root") = /opt/qubot ]; then
      if [ $(q "$verb") != status ]; then
        install -m 644 $(q "$root/current/qubot.service") /etc/systemd/system/qubot.service
        systemctl daemon-reload
      fi
      systemctl $(q "$verb") qubot
    else
      $(q "$root/current/qubot-service") $(q "$verb") $(q "$root")
    fi"
}

# The health of the release a $1 (board|router) runs now, within $4 seconds; its report on
# stdout. A router must also hold links from every board of the robots in $5 (comma-separated,
# the robots it served before the switch): one that listens but lost its boards is unhealthy.
healthy() {
  local kind=$1 target=$2 root=$3 timeout=$4 expect=${5:-} cur="$3/current"
  if [ "$kind" = router ]; then
    local cmd
    cmd="$(q "$cur/qubot") health --router --config $(q "$cur/router.toml") --timeout $(q "$timeout")"
    [ -z "$expect" ] || cmd+=" --expect-robots $(q "$expect")"
    on "$target" "$cmd"
  else
    on "$target" "$(q "$cur/qubot") health --config $(q "$cur/node.toml") --timeout $(q "$timeout")"
  fi
}

# The robots every board of which links now to the router at $1 (root $2), comma-separated;
# empty when it has no release or its release does not answer (nothing to hold it to then).
served() {
  local target=$1 root=$2 out
  out=$(on "$target" "$(q "$root/current/qubot") health --router --config $(q "$root/current/router.toml") --served --timeout 5" 2>/dev/null) || return 0
  out=$(tail -n 1 <<<"$out")
  printf '%s' "${out//[[:space:]]/}"
}

# Points <root>/current at releases/$3 atomically (rename over the old link).
switch() {
  on "$1" "cd $(q "$2") && ln -sfn $(q "releases/$3") current.new && mv -T current.new current"
}

# The summary line of host $1 (a file: hosts of a wave are deployed by parallel subshells).
set_result() { printf '%s\n' "$2" >"$run/$1.result"; }

# After a failure ($6) on host $2, a $1 (board|router; target $3, root $4): back to release
# $5, restarted and healthy, or stopped when there is no previous release. A router back on
# its previous release must serve again the robots it served before. Sets the host's summary
# line; never exits the script.
rollback() {
  local kind=$1 host=$2 target=$3 root=$4 previous=$5 why=$6 now="" expect=""
  if [ -z "$previous" ]; then
    if service "$target" "$root" stop >/dev/null; then
      set_result "$host" "FAILED: $why and no previous release to roll back to (stopped)"
    else
      set_result "$host" "FAILED: $why and no previous release to roll back to (could not stop it either)"
    fi
    return 0
  fi
  say "$host: rolling back to $previous"
  # A failed switch leaves the link where it was; switching it again could fail the same way.
  now=$(on "$target" "readlink $(q "$root/current")") || now=""
  if [ "$now" != "releases/$previous" ] && ! switch "$target" "$root" "$previous"; then
    set_result "$host" "FAILED: $why, and switching back to $previous failed too"
    return 0
  fi
  if ! service "$target" "$root" restart >/dev/null; then
    set_result "$host" "FAILED: $why, and restarting $previous failed too"
    return 0
  fi
  expect=$(cat "$run/$host.served" 2>/dev/null) || expect=""
  if healthy "$kind" "$target" "$root" "$rollback_timeout" "$expect" >/dev/null; then
    set_result "$host" "rolled back to $previous ($why)"
  else
    set_result "$host" "FAILED: $why, and the rollback to $previous is unhealthy too"
  fi
}

run="$stage_root/run"
rm -rf "$run" && mkdir -p "$run"

# One host, a $1 (board|router), start to end: bundle, copy, switch, restart, health; rolls
# itself back on a failure after the copy. Leaves its summary line, its state
# (switched|unchanged|failed), its previous release and, for a router, the robots it served
# in $run/<host>.*. Runs in a subshell when its wave has several hosts.
deploy_one() {
  local kind=$1 host=$2 addr=$3 user=$4 root=$5 arch=$6 target version current previous why report expect=""
  target="$user@$addr"
  echo failed >"$run/$host.state"
  : >"$run/$host.served"
  if ! version=$(bundle "$kind" "$host" "$arch"); then
    set_result "$host" "failed: bundle could not be built"; return 0
  fi
  echo "$rev" >"$stage_root/$host/bundle/REVISION"
  current=$(on "$target" "readlink $(q "$root/current") 2>/dev/null || true") || {
    set_result "$host" "failed: unreachable over SSH ($target)"; return 0; }
  previous=${current#releases/}
  echo "$previous" >"$run/$host.previous"
  if [ "$previous" = "$version" ] && service "$target" "$root" status >/dev/null 2>&1; then
    set_result "$host" "unchanged $version (already current and running)"
    echo unchanged >"$run/$host.state"
    say "$host: $version is already current: nothing to do"
    return 0
  fi
  say "$host: copying release $version to $target:$root/releases/$version"
  if ! tar -C "$stage_root/$host/bundle" -cf - . | on "$target" "set -e
      d=$(q "$root/releases/$version")
      if [ ! -d \"\$d\" ]; then rm -rf \"\$d.tmp\"; mkdir -p \"\$d.tmp\"; tar -C \"\$d.tmp\" -xf -; mv -T \"\$d.tmp\" \"\$d\"; else cat >/dev/null; fi"; then
    set_result "$host" "failed: copy over SSH"; return 0
  fi
  # A router is held to the boards it serves now (asked of the release that serves them): a
  # new release that listens but that they cannot link to is rolled back.
  if [ "$kind" = router ] && [ -n "$previous" ]; then
    expect=$(served "$target" "$root")
    printf '%s\n' "$expect" >"$run/$host.served"
    say "$host: serves ${expect:-no robot (none linked, or no answer)} before the switch"
  fi
  # From here on the host may be on the new release: every failure rolls it back.
  if ! switch "$target" "$root" "$version"; then
    why="switching to $version failed"
  elif ! service "$target" "$root" restart >/dev/null; then
    why="restarting on $version failed"
  else
    if [ "$kind" = router ]; then
      say "$host: waiting up to ${health_timeout}s for the router (listening, /metrics${expect:+, every board of $expect linked})"
    else
      say "$host: waiting up to ${health_timeout}s for every actor (liveliness + /metrics)"
    fi
    if report=$(healthy "$kind" "$target" "$root" "$health_timeout" "$expect"); then
      set_result "$host" "switched ${previous:-(none)} -> $version"
      echo switched >"$run/$host.state"
      # Keep the five newest releases (always the current and the previous one).
      on "$target" "cd $(q "$root/releases") && ls -1t | tail -n +6 | grep -vxF -e $(q "$version") -e $(q "${previous:-none}") | xargs -r rm -rf --" || true
      say "$host: healthy: $report"
      return 0
    fi
    why="$version was unhealthy"
    say "$host: UNHEALTHY: $report"
  fi
  say "$host: $why"
  { on "$target" "tail -n 15 $(q "$root/qubot.log")" 2>/dev/null || true; } | while IFS= read -r l; do say "$host log: $l"; done
  rollback "$kind" "$host" "$target" "$root" "$previous" "$why"
}

# The loop of host $1's robot, judged on the host of its actuator (whether or not that host
# changed).
loop_closes() {
  local line name addr user root arch robot
  line=$("$bin" inventory actuator "$inv" "$1") || return 1
  IFS=$'\t' read -r name addr user root arch robot <<<"$line"
  on "$user@$addr" "$(q "$root/current/qubot") health --loop --config $(q "$root/current/node.toml") --timeout $(q "$health_timeout")" >/dev/null
}

# Waves: each router alone, first (every board links to it), then the canary alone, then
# `wave_size` boards at a time. Per wave: its members (inventory lines), its kind
# (board|router) and its name in messages.
wave_members=() wave_kind=() wave_name=()
for line in "${routers[@]}"; do
  wave_members+=("$line"$'\n') wave_kind+=(router) wave_name+=("the router")
done
first=${#wave_members[@]}
for i in "${!hosts[@]}"; do
  if [ "$i" -eq 0 ]; then k=0; else k=$(( (i - 1) / wave_size + 1 )); fi
  w=$((first + k))
  wave_members[w]+="${hosts[$i]}"$'\n'
  wave_kind[w]=board
  if [ "$k" -eq 0 ]; then wave_name[w]="the canary"; else wave_name[w]="wave $k"; fi
done

declare -A result done_hosts
failed=""
switched=()
for w in "${!wave_members[@]}"; do
  kind=${wave_kind[$w]}
  mapfile -t members < <(printf '%s' "${wave_members[$w]}")
  names=()
  for line in "${members[@]}"; do names+=("${line%%$'\t'*}"); done
  if [ -n "$failed" ]; then
    for h in "${names[@]}"; do set_result "$h" "skipped (rollout stopped after $failed failed)"; done
    continue
  fi
  say "${wave_name[$w]#the }: ${names[*]}"
  pids=()
  for line in "${members[@]}"; do
    IFS=$'\t' read -r host addr user root arch robot <<<"$line"
    deploy_one "$kind" "$host" "$addr" "$user" "$root" "$arch" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  bad=()
  for h in "${names[@]}"; do
    if [ "$(cat "$run/$h.state")" = failed ]; then bad+=("$h"); fi
  done
  for h in "${names[@]}"; do done_hosts[$h]=1; done
  # End to end (boards only: a router's health already holds it to the boards it served): the
  # loop of every robot a board of which changed in this wave, once every selected board of
  # that robot has had its turn (a robot's first deploy closes its loop only when all its
  # boards run).
  if [ "$kind" = board ] && [ ${#bad[@]} -eq 0 ]; then
    declare -A loop_checked=()
    for line in "${members[@]}"; do
      IFS=$'\t' read -r host addr user root arch robot <<<"$line"
      [ "$(cat "$run/$host.state")" = switched ] && [ -z "${loop_checked[$robot]:-}" ] || continue
      ready=1
      for other in "${hosts[@]}"; do
        IFS=$'\t' read -r oh _ _ _ _ orobot <<<"$other"
        if [ "$orobot" = "$robot" ] && [ -z "${done_hosts[$oh]:-}" ]; then ready=""; fi
      done
      [ -n "$ready" ] || continue
      loop_checked[$robot]=1
      say "robot $robot: waiting up to ${health_timeout}s for its loop to close (commands applied at its actuator)"
      if ! loop_closes "$host"; then bad+=("the loop of robot $robot"); break; fi
    done
  fi
  if [ ${#bad[@]} -gt 0 ]; then
    failed="${wave_name[$w]} (${bad[*]})"
    # The whole wave goes back: hosts that switched fine are rolled back too.
    for line in "${members[@]}"; do
      IFS=$'\t' read -r host addr user root arch robot <<<"$line"
      [ "$(cat "$run/$host.state")" = switched ] || continue
      rollback "$kind" "$host" "$user@$addr" "$root" "$(cat "$run/$host.previous")" "its wave failed: ${bad[*]}"
    done
    continue
  fi
  for h in "${names[@]}"; do
    if [ "$(cat "$run/$h.state")" = switched ]; then switched+=("$h"); fi
  done
done
for line in "${routers[@]}" "${hosts[@]}"; do
  host=${line%%$'\t'*}
  result[$host]=$(cat "$run/$host.result" 2>/dev/null || echo "not deployed")
done

# Prometheus file SD: every process of every robot of the inventory and every router, written
# atomically. Not fatal: the summary below must still say what every host runs.
if ! { mkdir -p "$targets" && "$bin" inventory targets "$inv" all >"$targets/.$robot.json.tmp" &&
  mv -f "$targets/.$robot.json.tmp" "$targets/$robot.json"; }; then
  say "WARNING: could not write the Prometheus targets $targets/$robot.json"
fi

say "summary (revision $rev):"
for line in "${routers[@]}" "${hosts[@]}"; do
  host=${line%%$'\t'*}
  say "  $host: ${result[$host]}"
done
if [ -n "$failed" ]; then
  if [ ${#switched[@]} -gt 0 ]; then
    say "WARNING: the fleet is mixed: the new release runs on ${switched[*]} only; $failed and any skipped host keep their previous release"
  fi
  exit 1
fi
