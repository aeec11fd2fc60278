#!/usr/bin/env bash
# Network-namespace "edge devices" on this host, for `just deploy lab` and the deploy tests.
#
#   deploy/lab.sh up N     N board devices dev1..devN (N <= 50) and the site router's device
#                          dev100: namespace <name>-devI, address <net>.I/24 on a bridge (the
#                          root namespace is <net>.254), an sshd in each on port 22
#   deploy/lab.sh down     stop everything started in the devices and remove them
#
# dev100 is there whatever N is: deploy/fleet.toml's site router is 10.77.0.100, so `just lab
# 4` then `just deploy all --inventory deploy/fleet.toml` deploys the router too.
#
# Environment: LAB_NAME (default qblab, at most 10 characters), LAB_NET (default 10.77.0),
# LAB_DIR (default /var/lib/qubot-lab: keys, sshd configs, and each device's filesystem
# root devI/). Needs root, iproute2 and openssh-server. Only private lab addresses are used.
set -euo pipefail

name=${LAB_NAME:-qblab}
net=${LAB_NET:-10.77.0}
dir=${LAB_DIR:-/var/lib/qubot-lab}
br="${name}br"
sshd=/usr/sbin/sshd

die() { echo "lab: $*" >&2; exit 1; }

up() {
  local n=$1
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 50 ]] || die "N must be 1..50, got '$n'"
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, veth, sshd)"
  command -v ip >/dev/null || die "ip is missing: apt-get install iproute2"
  [ -x $sshd ] || die "sshd is missing: apt-get install openssh-server"
  ip link show "$br" >/dev/null 2>&1 && die "lab $name is already up (deploy/lab.sh down first)"
  mkdir -p "$dir/ssh" /run/sshd
  touch "$dir/.qubot-lab"
  [ -f "$dir/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "qubot-lab-deploy" -f "$dir/ssh/id_ed25519"
  [ -f "$dir/ssh/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "qubot-lab-host" -f "$dir/ssh/host_ed25519"
  cp "$dir/ssh/id_ed25519.pub" "$dir/ssh/authorized_keys"
  chmod 600 "$dir/ssh/authorized_keys"
  # The deploy user's client config: the lab's key, and no host-key prompts for lab addresses.
  cat >"$dir/ssh/config" <<CFG
Host $net.*
  IdentityFile $dir/ssh/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 5
CFG
  ip link add "$br" type bridge
  ip addr add "$net.254/24" dev "$br"
  ip link set "$br" up
  # The boards, then the site router's device: <net>.100, fleet.toml's router address (N <= 50
  # keeps the boards below it).
  local ids
  ids="$(seq 1 "$n") 100"
  for i in $ids; do
    local ns="$name-dev$i" veth="${name}v$i"
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$br" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$net.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "$dir/dev$i"
    cat >"$dir/ssh/sshd-dev$i.conf" <<CFG
ListenAddress $net.$i
Port 22
HostKey $dir/ssh/host_ed25519
PidFile $dir/ssh/sshd-dev$i.pid
AuthorizedKeysFile $dir/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CFG
    # Its own /dev/shm and hostname too, as a separate board has: zenoh then uses shared
    # memory only between processes of one device, and metrics carry host="devI".
    ip netns exec "$ns" unshare --mount --uts --propagation private \
      sh -c "mount -t tmpfs -o size=256m,mode=1777 qubot-lab-shm /dev/shm && echo dev$i >/proc/sys/kernel/hostname && exec $sshd -f '$dir/ssh/sshd-dev$i.conf'"
  done
  # Ready when every device answers over SSH (deadline, not a fixed sleep).
  for i in $ids; do
    local t=0
    until ssh -F "$dir/ssh/config" "root@$net.$i" true 2>/dev/null; do
      t=$((t + 1))
      [ $t -le 100 ] || die "dev$i ($net.$i) does not answer over SSH"
      sleep 0.1
    done
    local role=""
    [ "$i" != 100 ] || role="  the site router's device"
    echo "lab: dev$i  $net.$i  (netns $name-dev$i, root $dir/dev$i)$role"
  done
  echo "lab: deploy key $dir/ssh/id_ed25519, ssh config $dir/ssh/config"
}

down() {
  local ns pid
  # Every device, the boards and dev100 alike.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$name-dev[0-9]+$" || true); do
    # Everything running in a device (its sshd, qubot processes) goes with it.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1; done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
    echo "lab: removed $ns"
  done
  ip link del "$br" 2>/dev/null || true
  # Only a directory this script created is removed.
  if [ -f "$dir/.qubot-lab" ]; then rm -rf "$dir"; fi
}

case "${1:-}" in
  up) up "${2:-2}" ;;
  down) down ;;
  *) die "usage: deploy/lab.sh up N | down" ;;
esac
