#!/usr/bin/env bash
# Checks Bulwark's TLS listeners against Mozilla's "intermediate" server configuration with
# sslyze (https://github.com/nabla-c0d3/sslyze).
#
# Installs sslyze from PyPI into a venv under target/, issues an ECDSA P-256 server certificate
# with `bulwark cert`, starts Bulwark with an `mqtts` listener and a `wss` listener (alpn_mqtt on)
# on free loopback ports, scans both, and exits non-zero if either is not compliant.
#
# Environment:
#   BULWARK=PATH        broker binary (default: target/release/bulwark, built if missing)
#   SSLYZE_VERSION=V    sslyze version to install (default: newest)
#   CERT_DAYS=N         server certificate validity (default 365: Mozilla's profiles cap
#                       certificate lifespan at 366 days; `bulwark cert server` defaults to 825)
#   CERT_FROM=openssl   issue the CA and server certificate with the openssl command instead of
#                       `bulwark cert` (same ECDSA P-256 key type), to tell a finding about the
#                       certificate apart from one about the TLS configuration
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ -z "${BULWARK:-}" ]; then
    cargo build --release -p bulwark
    BULWARK=$root/target/release/bulwark
fi
[ -x "$BULWARK" ] || { echo "sslyze.sh: no broker binary at $BULWARK" >&2; exit 2; }

venv=$root/target/sslyze-venv
if [ ! -x "$venv/bin/sslyze" ]; then
    echo "sslyze.sh: installing sslyze into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "sslyze${SSLYZE_VERSION:+==$SSLYZE_VERSION}"
fi
echo "sslyze.sh: $("$venv/bin/pip" show sslyze | grep -E '^Version') ($venv)" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-sslyze.XXXXXX")
broker_pid=
cleanup() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

days=${CERT_DAYS:-365}
case "${CERT_FROM:-bulwark}" in
bulwark)
    "$BULWARK" cert ca --dir "$work/ca" >/dev/null
    "$BULWARK" cert server --ca "$work/ca" --name localhost --san 127.0.0.1 \
        --days "$days" --out "$work/server" >/dev/null
    ;;
openssl)
    mkdir -m 700 "$work/ca"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/ca/ca.key" -out "$work/ca/ca.pem" -subj "/CN=sslyze.sh test CA" \
        -days "$days" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
        "keyUsage=critical,digitalSignature" >"$work/server.ext"
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca/ca.pem" -CAkey "$work/ca/ca.key" \
        -CAcreateserial -days "$days" -extfile "$work/server.ext" -out "$work/server.pem" \
        2>/dev/null
    ;;
*)
    echo "sslyze.sh: CERT_FROM must be bulwark or openssl" >&2
    exit 2
    ;;
esac
echo "sslyze.sh: server certificate from ${CERT_FROM:-bulwark}, valid $days days" >&2

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
mqtts_port=$(free_port)
wss_port=$(free_port)
while [ "$wss_port" = "$mqtts_port" ]; do wss_port=$(free_port); done

# sslyze opens hundreds of connections in a few seconds from 127.0.0.1: the default per-address
# admission limits (50 new connections per second) would refuse most of them, and refused
# connections would read as handshake failures. Nothing else differs from the defaults.
cat >"$work/bulwark.toml" <<EOF
[broker]
max_connections_per_address = 100000
connection_rate_per_address = 100000
connection_rate_total = 100000
max_pending_connects = 100000

[[listener]]
name = "mqtts"
kind = "mqtts"
bind = "127.0.0.1:$mqtts_port"
tls_cert = "$work/server.pem"
tls_key = "$work/server.key"
allow_anonymous = true

[[listener]]
name = "wss"
kind = "wss"
bind = "127.0.0.1:$wss_port"
tls_cert = "$work/server.pem"
tls_key = "$work/server.key"
alpn_mqtt = true
allow_anonymous = true
EOF

"$BULWARK" serve --config "$work/bulwark.toml" >"$work/bulwark.log" 2>&1 &
broker_pid=$!
for port in "$mqtts_port" "$wss_port"; do
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        if ! kill -0 "$broker_pid" 2>/dev/null; then
            echo "sslyze.sh: bulwark exited during start-up:" >&2
            cat "$work/bulwark.log" >&2
            exit 2
        fi
        sleep 0.1
    done
done

status=0
verdicts=()
for target in "mqtts 127.0.0.1:$mqtts_port" "wss 127.0.0.1:$wss_port"; do
    set -- $target
    echo
    echo "===== sslyze --mozilla_config=intermediate $2 ($1 listener, test CA trusted) ====="
    rc=0
    # The test CA is the trust anchor for certificate path validation (part of the check).
    "$venv/bin/sslyze" --mozilla_config=intermediate --certinfo_ca_file "$work/ca/ca.pem" "$2" \
        | tee "$work/$1.txt" || rc=$?
    # sslyze's own summary line(s): "OK - Compliant.", "FAILED - Not compliant." and the failed
    # rules, or "ERROR - Scan did not run successfully" when a scan command crashed.
    summary=$(sed -n '/COMPLIANCE AGAINST/,$p' "$work/$1.txt" | grep -E '^ +(127\.0\.0\.1:|\*)' |
        sed -E 's/^ +//' | paste -sd ' ' -)
    if [ "$rc" -eq 0 ]; then
        verdicts+=("$1 listener: compliant with Mozilla intermediate ($summary)")
    else
        verdicts+=("$1 listener: NOT compliant with Mozilla intermediate (sslyze exit $rc): $summary")
        status=1
    fi
done

if ! kill -0 "$broker_pid" 2>/dev/null; then
    echo "sslyze.sh: bulwark died during the scan:" >&2
    tail -20 "$work/bulwark.log" >&2
    status=1
fi

echo
echo "===== verdict ====="
printf '%s\n' "${verdicts[@]}"
exit "$status"
