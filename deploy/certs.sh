#!/usr/bin/env bash
# `just certs`: a fleet CA and one certificate per inventory host and per site router, for
# zenoh mutual TLS.
#
#   deploy/certs.sh [INVENTORY]        (default deploy/inventory.toml)
#
# Writes into QUBOT_CERTS (default target/certs, gitignored): ca.key, ca.crt, and per host or
# router <name>.key, <name>.crt with common name = its name (the access-control rules match
# it) and its address and name as subjectAltName (peers verify the name they connect to). An
# existing CA and existing certificates are kept, so adding a host does not re-key the fleet.
set -euo pipefail
cd "$(dirname "$0")/.."
inv=${1:-deploy/inventory.toml}
out=${QUBOT_CERTS:-target/certs}
command -v openssl >/dev/null || { echo "certs: openssl is missing: apt-get install openssl" >&2; exit 1; }
bin=${QUBOT_BIN:-target/release/qubot}
[ -x "$bin" ] || cargo build --release -p qubot
# Boards and routers alike: name and address first. In this shell, so an inventory error
# stops the script before any key is made.
listed=$("$bin" inventory hosts "$inv" all)
listed+=$'\n'$("$bin" inventory routers "$inv" all)
mapfile -t hosts < <(sed '/^$/d' <<<"$listed")

mkdir -p "$out"
chmod 700 "$out"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }
if [ ! -f "$out/ca.crt" ]; then
  ec "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 -subj "/CN=qubot-fleet-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.crt"
  echo "certs: new fleet CA $out/ca.crt"
fi
for line in "${hosts[@]}"; do
  IFS=$'\t' read -r host addr _ <<<"$line"
  [ -f "$out/$host.crt" ] && { echo "certs: $host: kept $out/$host.crt"; continue; }
  ec "$out/$host.key"
  openssl req -new -key "$out/$host.key" -subj "/CN=$host" -out "$out/$host.csr"
  openssl x509 -req -in "$out/$host.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days 825 -sha256 -out "$out/$host.crt" -extfile <(printf '%s\n' \
      "subjectAltName=IP:$addr,DNS:$host" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth") 2>/dev/null
  rm -f "$out/$host.csr"
  echo "certs: $host: $out/$host.crt (CN=$host, IP $addr)"
done
