#!/usr/bin/env bash
# Run the Eclipse Paho MQTT interoperability suites (paho.mqtt.testing:
# interoperability/client_test.py = MQTT 3.1.1, client_test5.py = MQTT 5.0)
# against a broker on 127.0.0.1, each test in its own python process.
#
# Usage:
#   scripts/paho-interop.sh SUITE_DIR [BROKER_CMD...]
#
#   SUITE_DIR   a checkout of eclipse-paho/paho.mqtt.testing (its root or its
#               interoperability/ folder).  Nothing in it is modified.
#   BROKER_CMD  the broker to start (default:
#                 target/release/bulwark serve --config '{config:scripts/paho-bulwark.toml}'
#               relative to this repository, or $BULWARK_BIN; that file says
#               what the suite needs and why).  Placeholders,
#               expanded inside any argument:
#                 {port}         the port picked for this broker run
#                 {config:FILE}  FILE rendered with every {port} replaced,
#                                written to the log dir; expands to its path
#               If BROKER_CMD has no placeholder the port must be fixed: set
#               PAHO_PORT, or pass a mosquitto-style `-c FILE` whose
#               `listener PORT [ADDR]` / `port PORT` line gives it.
#
# Examples:
#   scripts/paho-interop.sh /tmp/paho.mqtt.testing
#   scripts/paho-interop.sh /tmp/paho.mqtt.testing target/release/bulwark serve --config '{config:/tmp/bulwark-paho.toml.in}'
#   scripts/paho-interop.sh /tmp/paho.mqtt.testing mosquitto -c '{config:/tmp/m.conf.in}'  # m.conf.in: listener {port} 127.0.0.1
#   scripts/paho-interop.sh /tmp/paho.mqtt.testing mosquitto -c /tmp/m.conf                # port read from the file
#
# Environment:
#   PAHO_SUITES            suites to run (default "client_test client_test5")
#   PAHO_TESTS             only these test names (space separated; default all)
#   PAHO_EXPECTED_FAILURES tests allowed to fail, as NAME (either suite) or
#                          SUITE.NAME (default "test_subscribe_failure": it
#                          needs a broker that refuses test/nosubscribe)
#   PAHO_TEST_TIMEOUT      seconds per test process (default 60)
#   PAHO_ISOLATION         "suite" (default): one fresh broker per suite, the
#                          suite's own cleanup (sessions of myclientid,
#                          myclientid2; retained messages) runs before every
#                          test; "test": a fresh broker for every test
#   PAHO_PORT              fixed port instead of a free one
#   PAHO_STARTUP_TIMEOUT   seconds to wait for the broker's port (default 30)
#   PAHO_LOG_DIR           where broker and test logs go (default: mktemp -d)
#   PAHO_VERBOSE=1         print every test's output, not only failures'
#   PAHO_BUILD=1           `cargo build --release --bin bulwark` first (only
#                          with the default broker command; off by default)
#   BULWARK_BIN            broker binary for the default command
#   PYTHON                 interpreter (default python3; the suites need
#                          Python 3 and the standard library only)
#
# Output: one line per test, PASS / FAIL / TIMEOUT / XFAIL (expected failure)
# / XPASS, then per suite `SUITE: N passed, M failed (...)`.
# Exit status: 0 when every failure was expected, 1 otherwise, 2 on setup
# errors (no suite, broker binary missing, broker not listening).
#
# Only 127.0.0.1 is ever contacted.  The broker is started and stopped by its
# own pid.

set -u -o pipefail

die() { echo "paho-interop: $*" >&2; exit 2; }

[ $# -ge 1 ] || die "usage: $0 SUITE_DIR [BROKER_CMD...]"
SUITE_DIR=$1; shift
if [ -f "$SUITE_DIR/interoperability/client_test.py" ]; then SUITE_DIR=$SUITE_DIR/interoperability; fi
[ -f "$SUITE_DIR/client_test.py" ] && [ -f "$SUITE_DIR/client_test5.py" ] \
  || die "no client_test.py / client_test5.py in $SUITE_DIR"
SUITE_DIR=$(cd "$SUITE_DIR" && pwd)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
DRIVER=$SCRIPT_DIR/paho_driver.py
[ -f "$DRIVER" ] || die "missing $DRIVER"

PYTHON=${PYTHON:-python3}
SUITES=${PAHO_SUITES:-client_test client_test5}
ONLY_TESTS=${PAHO_TESTS:-}
EXPECTED=${PAHO_EXPECTED_FAILURES-test_subscribe_failure}
TEST_TIMEOUT=${PAHO_TEST_TIMEOUT:-60}
ISOLATION=${PAHO_ISOLATION:-suite}
STARTUP_TIMEOUT=${PAHO_STARTUP_TIMEOUT:-30}
VERBOSE=${PAHO_VERBOSE:-0}
case $ISOLATION in suite|test) ;; *) die "PAHO_ISOLATION must be suite or test";; esac

LOG_DIR=${PAHO_LOG_DIR:-$(mktemp -d /tmp/paho-interop.XXXXXX)}
mkdir -p "$LOG_DIR" || die "cannot create $LOG_DIR"
export PYTHONDONTWRITEBYTECODE=1   # leave SUITE_DIR untouched
export PYTHONUNBUFFERED=1

# ---- broker command ---------------------------------------------------------
if [ $# -gt 0 ]; then
  BROKER_TEMPLATE=("$@")
  DEFAULT_BROKER=0
else
  BIN=${BULWARK_BIN:-$REPO_ROOT/target/release/bulwark}
  BROKER_TEMPLATE=("$BIN" serve --config "{config:$REPO_ROOT/scripts/paho-bulwark.toml}")
  DEFAULT_BROKER=1
  if [ "${PAHO_BUILD:-0}" = 1 ]; then
    (cd "$REPO_ROOT" && cargo build --release --bin bulwark) || die "build failed"
  fi
  [ -x "$BIN" ] || die "broker binary $BIN not found (build it, set BULWARK_BIN, or pass BROKER_CMD)"
fi

HAS_PLACEHOLDER=0
for a in "${BROKER_TEMPLATE[@]}"; do
  case $a in *"{port}"*|*"{config:"*) HAS_PLACEHOLDER=1;; esac
done

FIXED_PORT=${PAHO_PORT:-}
if [ -z "$FIXED_PORT" ] && [ $HAS_PLACEHOLDER = 0 ]; then
  # mosquitto-style: -c FILE with "listener PORT" or "port PORT"
  prev=
  for a in "${BROKER_TEMPLATE[@]}"; do
    if [ "$prev" = "-c" ] && [ -f "$a" ]; then
      FIXED_PORT=$(awk '$1=="listener"||$1=="port"{print $2; exit}' "$a")
    fi
    prev=$a
  done
  [ -n "$FIXED_PORT" ] || die "BROKER_CMD has no {port}/{config:FILE} placeholder; set PAHO_PORT"
fi

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() {  # $1 port
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket(); s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1]))); sys.exit(0)
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

BROKER_PID=
PORT=
BROKER_RUN=0
BROKER_LOG=

render_cmd() {  # fills BROKER_CMD from BROKER_TEMPLATE for $PORT
  BROKER_CMD=()
  local a f out
  for a in "${BROKER_TEMPLATE[@]}"; do
    while [[ $a =~ \{config:([^}]*)\} ]]; do
      f=${BASH_REMATCH[1]}
      [ -f "$f" ] || die "config template $f not found"
      out=$LOG_DIR/broker-$BROKER_RUN-$(basename "$f")
      out=${out%.in}
      sed "s/{port}/$PORT/g" "$f" > "$out"
      a=${a/"{config:$f}"/$out}
    done
    a=${a//\{port\}/$PORT}
    BROKER_CMD+=("$a")
  done
}

stop_broker() {
  if [ -n "$BROKER_PID" ]; then
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      kill -TERM "$BROKER_PID" 2>/dev/null
      for _ in $(seq 1 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$BROKER_PID" 2>/dev/null && kill -KILL "$BROKER_PID" 2>/dev/null
    fi
    wait "$BROKER_PID" 2>/dev/null
    BROKER_PID=
  fi
}
trap 'stop_broker' EXIT
trap 'stop_broker; exit 130' INT TERM

start_broker() {  # $1 label for the log
  BROKER_RUN=$((BROKER_RUN + 1))
  if [ -n "$FIXED_PORT" ]; then PORT=$FIXED_PORT; else PORT=$(free_port) || die "no free port"; fi
  if [ -n "$FIXED_PORT" ]; then  # wait for a previous broker to let go of the port
    for _ in $(seq 1 50); do port_open "$PORT" || break; sleep 0.2; done
    port_open "$PORT" && die "port $PORT already in use on 127.0.0.1"
  fi
  render_cmd
  BROKER_LOG=$LOG_DIR/broker-$BROKER_RUN-$1.log
  echo "# broker run $BROKER_RUN ($1): ${BROKER_CMD[*]}" | tee "$BROKER_LOG"
  "${BROKER_CMD[@]}" >>"$BROKER_LOG" 2>&1 </dev/null &
  BROKER_PID=$!
  local waited=0
  until port_open "$PORT"; do
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
      wait "$BROKER_PID"; local rc=$?; BROKER_PID=
      tail -n 20 "$BROKER_LOG" >&2
      die "broker exited (status $rc) before listening on 127.0.0.1:$PORT"
    fi
    sleep 0.2; waited=$((waited + 1))
    if [ $waited -ge $((STARTUP_TIMEOUT * 5)) ]; then
      tail -n 20 "$BROKER_LOG" >&2
      die "broker not listening on 127.0.0.1:$PORT after ${STARTUP_TIMEOUT}s"
    fi
  done
}

is_expected() {  # $1 suite $2 test
  local e
  for e in $EXPECTED; do
    [ "$e" = "$2" ] || [ "$e" = "$1.$2" ] && return 0
  done
  return 1
}

wanted() {  # $1 test
  [ -z "$ONLY_TESTS" ] && return 0
  local t
  for t in $ONLY_TESTS; do [ "$t" = "$1" ] && return 0; done
  return 1
}

echo "# suite: $SUITE_DIR"
echo "# logs:  $LOG_DIR"
echo "# isolation: fresh broker per $ISOLATION; timeout ${TEST_TIMEOUT}s per test"

UNEXPECTED=0
SUMMARY=()
for suite in $SUITES; do
  case $suite in client_test|client_test5) ;; *) die "unknown suite $suite";; esac
  tests=$("$PYTHON" "$DRIVER" --suite-dir "$SUITE_DIR" --suite "$suite" --list) \
    || die "cannot list tests of $suite"
  passed=0 failed=0 xfail=0 xpass=0 timeouts=0 restarts=0
  [ "$ISOLATION" = suite ] && start_broker "$suite"
  for t in $tests; do
    wanted "$t" || continue
    if [ "$ISOLATION" = test ]; then
      stop_broker; start_broker "$suite.$t"
    elif ! kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "# broker died before $suite.$t (see $BROKER_LOG); restarting"
      restarts=$((restarts + 1))
      stop_broker; start_broker "$suite.after-crash"
    fi
    out=$LOG_DIR/$suite.$t.log
    start=$(date +%s)
    timeout -k 5 "$TEST_TIMEOUT" "$PYTHON" "$DRIVER" --suite-dir "$SUITE_DIR" \
      --suite "$suite" --port "$PORT" --test "$t" >"$out" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc = 0 ]; then
      status=PASS
    elif [ $rc = 124 ] || [ $rc = 137 ]; then
      status=TIMEOUT; timeouts=$((timeouts + 1))
    else
      status=FAIL
    fi
    if is_expected "$suite" "$t"; then
      case $status in PASS) status=XPASS;; *) status="XFAIL($status)";; esac
    fi
    case $status in
      PASS|XPASS) passed=$((passed + 1));;
      XFAIL*) failed=$((failed + 1)); xfail=$((xfail + 1));;
      *) failed=$((failed + 1)); UNEXPECTED=$((UNEXPECTED + 1));;
    esac
    [ "$status" = XPASS ] && xpass=$((xpass + 1))
    alive=; kill -0 "$BROKER_PID" 2>/dev/null || alive=" [broker died]"
    printf '%-8s %s.%s (%ss)%s\n' "$status" "$suite" "$t" "$secs" "$alive"
    if [ "$VERBOSE" = 1 ] || { [ "$status" != PASS ] && [ "$status" != XPASS ]; }; then
      grep -v '^$' "$out" | tail -n 25 | sed 's/^/    | /'
    fi
  done
  stop_broker
  line="$suite: $passed passed, $failed failed ($xfail expected, $timeouts timed out"
  [ $xpass -gt 0 ] && line+=", $xpass expected failures passed"
  [ $restarts -gt 0 ] && line+=", broker restarted $restarts times"
  line+=")"
  SUMMARY+=("$line")
done

echo
for l in "${SUMMARY[@]}"; do echo "$l"; done
echo "# logs in $LOG_DIR"
[ $UNEXPECTED = 0 ] || exit 1
exit 0
