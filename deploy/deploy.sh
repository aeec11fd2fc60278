#!/usr/bin/env bash
# `just deploy HOSTS`: build once, bundle per host, copy over SSH into <root>/releases/<version>/,
# switch <root>/current atomically, restart, wait for health, roll back when unhealthy.
#
#   deploy/deploy.sh [--inventory FILE] HOSTS      HOSTS: a group, "all", or host names
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
# Hosts are deployed one after the other; the first failure stops the rollout so that at most
# one host is ever on a bad release, and the summary says which hosts run what. Once a release
# is copied to a host, any failure there (switch, restart, health) rolls that host back to its
# previous release; the script always ends with the summary.
# Version = hash of the bundle's contents: deploying the same bundle again is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

inv=deploy/inventory.toml
if [ "${1:-}" = "--inventory" ]; then inv=$2; shift 2; fi
sel=${1:?usage: deploy/deploy.sh [--inventory FILE] HOSTS}
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
mapfile -t hosts < <("$bin" inventory hosts "$inv" "$sel")
local_arch=$(uname -m)
# The bundled binary: debug info dropped (symbols kept for backtraces), 5x smaller to hash and
# to copy to every board.
mkdir -p "${QUBOT_STAGE:-target/deploy}"
shipped="${QUBOT_STAGE:-target/deploy}/qubot"
if command -v strip >/dev/null; then strip --strip-debug -o "$shipped" "$bin"; else cp "$bin" "$shipped"; fi
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then rev="$rev-dirty"; fi
stage_root=${QUBOT_STAGE:-target/deploy}

# Builds host $1's bundle in $stage_root/$1/bundle; prints its version. (Called as a condition,
# where `set -e` does not apply: each step fails the bundle itself.)
bundle() {
  local host=$1 arch=$2 out="$stage_root/$1/bundle"
  [ "$arch" = "$local_arch" ] || { echo "host arch $arch but the binary is $local_arch (cross-build first)" >&2; return 1; }
  rm -rf "$out" || return 1
  mkdir -p "$out/tls" || return 1
  cp "$shipped" "$out/qubot" || return 1
  cp deploy/qubot-service deploy/systemd/qubot.service "$out/" || return 1
  cp -r deploy/worlds "$out/worlds" || return 1
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

healthy() {
  local target=$1 root=$2 timeout=${3:-$health_timeout}
  on "$target" "$(q "$root/current/qubot") health --config $(q "$root/current/node.toml") --timeout $(q "$timeout")"
}

# Points <root>/current at releases/$3 atomically (rename over the old link).
switch() {
  on "$1" "cd $(q "$2") && ln -sfn $(q "releases/$3") current.new && mv -T current.new current"
}

# After a failure ($5) on host $1 (target $2, root $3): back to release $4, restarted and
# healthy, or stopped when there is no previous release. Sets the host's summary line; never
# exits the script.
rollback() {
  local host=$1 target=$2 root=$3 previous=$4 why=$5 now=""
  if [ -z "$previous" ]; then
    if service "$target" "$root" stop >/dev/null; then
      result[$host]="FAILED: $why and no previous release to roll back to (stopped)"
    else
      result[$host]="FAILED: $why and no previous release to roll back to (could not stop it either)"
    fi
    return 0
  fi
  say "$host: rolling back to $previous"
  # A failed switch leaves the link where it was; switching it again could fail the same way.
  now=$(on "$target" "readlink $(q "$root/current")") || now=""
  if [ "$now" != "releases/$previous" ] && ! switch "$target" "$root" "$previous"; then
    result[$host]="FAILED: $why, and switching back to $previous failed too"
    return 0
  fi
  if ! service "$target" "$root" restart >/dev/null; then
    result[$host]="FAILED: $why, and restarting $previous failed too"
    return 0
  fi
  if healthy "$target" "$root" "$rollback_timeout" >/dev/null; then
    result[$host]="rolled back to $previous ($why)"
  else
    result[$host]="FAILED: $why, and the rollback to $previous is unhealthy too"
  fi
}

declare -A result
failed=""
switched=()
for line in "${hosts[@]}"; do
  IFS=$'\t' read -r host addr user root arch <<<"$line"
  if [ -n "$failed" ]; then result[$host]="skipped (rollout stopped after $failed failed)"; continue; fi
  target="$user@$addr"
  if ! version=$(bundle "$host" "$arch"); then
    result[$host]="failed: bundle could not be built"; failed=$host; continue
  fi
  echo "$rev" >"$stage_root/$host/bundle/REVISION"
  current=$(on "$target" "readlink $(q "$root/current") 2>/dev/null || true") || {
    result[$host]="failed: unreachable over SSH ($target)"; failed=$host; continue; }
  previous=${current#releases/}
  if [ "$previous" = "$version" ] && service "$target" "$root" status >/dev/null 2>&1; then
    result[$host]="unchanged $version (already current and running)"
    say "$host: $version is already current: nothing to do"
    continue
  fi
  say "$host: copying release $version to $target:$root/releases/$version"
  if ! tar -C "$stage_root/$host/bundle" -cf - . | on "$target" "set -e
      d=$(q "$root/releases/$version")
      if [ ! -d \"\$d\" ]; then rm -rf \"\$d.tmp\"; mkdir -p \"\$d.tmp\"; tar -C \"\$d.tmp\" -xf -; mv -T \"\$d.tmp\" \"\$d\"; else cat >/dev/null; fi"; then
    result[$host]="failed: copy over SSH"; failed=$host; continue
  fi
  # From here on the host may be on the new release: every failure rolls it back.
  if ! switch "$target" "$root" "$version"; then
    why="switching to $version failed"
  elif ! service "$target" "$root" restart >/dev/null; then
    why="restarting on $version failed"
  else
    say "$host: waiting up to ${health_timeout}s for every actor (liveliness + /metrics)"
    if report=$(healthy "$target" "$root"); then
      result[$host]="switched ${previous:-(none)} -> $version"
      switched+=("$host")
      # Keep the five newest releases (always the current and the previous one).
      on "$target" "cd $(q "$root/releases") && ls -1t | tail -n +6 | grep -vxF -e $(q "$version") -e $(q "${previous:-none}") | xargs -r rm -rf --" || true
      say "$host: healthy: $report"
      continue
    fi
    why="$version was unhealthy"
    say "$host: UNHEALTHY: $report"
  fi
  failed=$host
  say "$host: $why"
  { on "$target" "tail -n 15 $(q "$root/qubot.log")" 2>/dev/null || true; } | while IFS= read -r l; do say "$host log: $l"; done
  rollback "$host" "$target" "$root" "$previous" "$why"
done

# Prometheus file SD: every process of every robot of the inventory, written atomically. Not fatal: the summary
# below must still say what every host runs.
if ! { mkdir -p "$targets" && "$bin" inventory targets "$inv" all >"$targets/.$robot.json.tmp" &&
  mv -f "$targets/.$robot.json.tmp" "$targets/$robot.json"; }; then
  say "WARNING: could not write the Prometheus targets $targets/$robot.json"
fi

say "summary (revision $rev):"
for line in "${hosts[@]}"; do
  host=${line%%$'\t'*}
  say "  $host: ${result[$host]}"
done
if [ -n "$failed" ]; then
  if [ ${#switched[@]} -gt 0 ]; then
    say "WARNING: the fleet is mixed: the new release runs on ${switched[*]} only; $failed and any skipped host keep their previous release"
  fi
  exit 1
fi
