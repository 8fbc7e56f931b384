#!/usr/bin/env bash
# sandbox-ctl's failures, for test_snapshot.c: ctl.sh BUILD_DIR MODE
#   deadsock  a control socket nobody listens on: exit 2, and neither the migration
#             destination (a listener of our own) nor the snapshot file is touched; with a
#             live sandbox, an unreachable destination or a file that cannot be made: exit 1,
#             and the sandbox runs on
#   killctl   sandbox-ctl killed while the monitor writes the snapshot (the monitor held with
#             SIGSTOP meanwhile, so the write is surely in progress): nothing is left in the
#             directory, and the sandbox, which was to stop after the snapshot, runs to its end
# Prints "PASS ..." or "FAIL: why" as its last line ("SKIP: why" and exit 77 when the case
# could not be set up); exit status 0 only on PASS.
set -u
B=$1
MODE=$2
WAIT=${SBX_TEST_WAIT:-300}
HB=$B/samples/heartbeat-glibc
CTL=$B/sandbox-ctl
D=$(mktemp -d /tmp/sbx-ctl.XXXXXX)
SRC=
cleanup() {
  [ -n "$SRC" ] && kill -CONT "$SRC" 2>/dev/null
  jobs -p | xargs -r kill -9 2>/dev/null
  wait 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$D"/*.err "$D"/*.out; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -5; done; exit 1; }
. "$(dirname "$0")/../wait_for.sh"

# [MEM=SIZE] start ARGS...: a heartbeat with a control socket at $D/c.
start() {
  "$B/sandbox-run" --control "$D/c" --mem "${MEM:-256M}" "$HB" "$@" >"$D/src.out" 2>"$D/src.err" &
  SRC=$!
  # The control socket listens before the guest's first instruction: a beat means it is there.
  beating() {
    kill -0 $SRC 2>/dev/null || fail "the sandbox exited early"
    grep -q '^5\b' "$D/src.out" 2>/dev/null
  }
  wait_for "beat 5 from the sandbox" beating
}

mode_deadsock() {
  # A listener of our own at the destination: it says whether anyone connected.
  python3 - "$D/dst.sock" >"$D/dst.out" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
open(sys.argv[1] + ".ready", "w").close()
while not os.path.exists(sys.argv[1] + ".done"):
    time.sleep(0.02)
s.setblocking(False)
try:
    s.accept()
    print("connected")
except BlockingIOError:
    print("untouched")
PY
  local py=$! st
  wait_for "listener" test -e "$D/dst.sock.ready"
  "$CTL" "$D/nosuch.sock" migrate "unix:$D/dst.sock" >"$D/m.out" 2>&1
  st=$?
  touch "$D/dst.sock.done"
  wait $py
  [ $st = 2 ] || fail "migrate through a dead control socket: exit $st, expected 2"
  grep -q 'nosuch.sock' "$D/m.out" || fail "migrate did not name the dead socket: $(cat "$D/m.out")"
  [ "$(cat "$D/dst.out")" = untouched ] || fail "a dead control socket cost the destination its connection ($(cat "$D/dst.out"))"
  "$CTL" "$D/nosuch.sock" snapshot "$D/s.snap" >"$D/s.out" 2>&1
  st=$?
  [ $st = 2 ] || fail "snapshot through a dead control socket: exit $st, expected 2"
  [ -z "$(ls "$D" | grep '^s\.snap')" ] || fail "snapshot through a dead control socket left $(ls "$D" | grep '^s\.snap')"
  # A live sandbox: a destination nobody listens at, a file that cannot be made.
  start 100000 1 4
  "$CTL" "$D/c" migrate "unix:$D/nobody.sock" >"$D/m2.out" 2>&1
  st=$?
  [ $st = 1 ] || fail "migrate to a destination nobody listens at: exit $st, expected 1"
  "$CTL" "$D/c" snapshot "$D/no/such/dir/s.snap" >"$D/s2.out" 2>&1
  st=$?
  [ $st = 1 ] || fail "snapshot to a directory that does not exist: exit $st, expected 1"
  "$CTL" "$D/c" stats >"$D/stats.out" 2>&1 || fail "the sandbox does not answer after the failed commands"
  echo "PASS deadsock: exit 2 with a dead socket and the destination untouched; 1 for a bad destination or file"
}

mode_killctl() {
  # 1 GiB of RAM to write: the write lasts long enough to be caught in progress.
  MEM=2G start 4000 1 1024
  "$CTL" "$D/c" snapshot "$D/s.snap" >"$D/ctl.out" 2>&1 &
  local ctl=$! fdpath= size=0
  growing() {
    for f in /proc/$ctl/fd/*; do
      case "$(readlink "$f" 2>/dev/null)" in "$D"/*) fdpath=$f ;; esac
    done
    [ -n "$fdpath" ] && size=$(stat -L -c %s "$fdpath" 2>/dev/null || echo 0)
    [ "${size:-0}" -gt 0 ] || ! kill -0 $ctl 2>/dev/null
  }
  wait_for "snapshot being written" growing
  [ "${size:-0}" -gt 0 ] || fail "the snapshot's file never grew (ctl: $(cat "$D/ctl.out"))"
  kill -STOP "$SRC"
  kill -9 $ctl
  wait $ctl 2>/dev/null
  kill -CONT "$SRC"
  if [ -e "$D/s.snap" ]; then
    echo "SKIP: the snapshot was written and put in place before sandbox-ctl could be killed"
    exit 77
  fi
  wait "$SRC"
  local st=$?
  SRC=
  [ $st = 0 ] || fail "the sandbox exited $st; it should have run on to its end"
  tail -1 "$D/src.out" | grep -q '^checksum ' || fail "the sandbox did not run to its end"
  grep -q 'stopped after a snapshot' "$D/src.err" && fail "the sandbox stopped although its snapshot was lost"
  grep -Eq 'snapshot abandoned: sandbox-ctl hung up|did not put the file in place' "$D/src.err" ||
    fail "the monitor did not say why the snapshot was dropped"
  [ -z "$(ls "$D" | grep '^s\.snap')" ] || fail "a killed sandbox-ctl left $(ls -s "$D" | grep 's\.snap')"
  echo "PASS killctl: nothing left behind at ${size} bytes written; the sandbox ran on"
}

case "$MODE" in
deadsock | killctl) "mode_$MODE" ;;
*) echo "FAIL: unknown mode $MODE"; exit 2 ;;
esac
