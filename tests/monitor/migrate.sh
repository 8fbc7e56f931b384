#!/usr/bin/env bash
# Live-migration scenarios for test_snapshot.c: migrate.sh BUILD_DIR MODE
#   loopback  migrate a running heartbeat between two monitors over tcp on 127.0.0.1
#   unix      the same over a unix socket
#   netns     between two network namespaces joined by a veth pair (made here)
#   killdst   the destination is killed mid-stream: the source must go on
#   wrongkey  the destination holds another key: refused, the source goes on
#   corrupt   a proxy flips one byte of the stream: refused, the source goes on
#   guestexit the guest ends on its own during the pre-copy: the source ends as it would have
#   files     loopback, with the guest reading a file as it beats: the destination reopens it
#             under its own --ro mount at the same offset
#   dynamic   loopback, with the heartbeat linked dynamically (ld.so, libc.so in guest memory,
#             shown by the default view at the source)
#   stray     before the source, the destination gets an empty connection, random bytes and a
#             connection that says nothing: it logs each and goes on listening; then loopback
#   threads   loopback, with a multithreaded heartbeat (samples/threads beat: 4 threads and main
#             meet at a barrier twice a round): both outputs together must be a native run's
#   go        loopback, with a Go heartbeat (gowork beat: goroutines, a ticker, the runtime's
#             threads, epoll and pipe): both outputs together must be a native run's
# Prints "PASS ..." or "FAIL: why" as its last line; exit status 0 only on PASS.
#
# Nothing here depends on how fast the host is. The heartbeat holds its last beat until the
# file gate/go appears (on both sides, through the same --ro mount), so a migration always
# finds it running and the script decides when it ends. Where a scenario needs the stream cut
# or the guest ended at a given point of the pre-copy, a proxy stops forwarding 1 MiB into the
# first round (which holds all of the guest's touched RAM, far more than the socket buffers)
# until the script has done it. Every wait is for a condition, bounded by SBX_TEST_WAIT seconds
# only to turn a hang into a failure.
set -u
B=$1
MODE=$2
# Settings from the environment, by names no other program uses.
N=${MIG_BEATS:-2500}
RATE=${MIG_RATE:-10}
TOUCH=${MIG_TOUCH:-32}
WAIT=${SBX_TEST_WAIT:-300}
HB=$B/samples/heartbeat-glibc
[ "$MODE" = dynamic ] && HB=$B/samples/heartbeat-dyn-glibc
if [ "$MODE" = threads ]; then
  HB=$B/samples/threads-glibc
  N=${MIG_BEATS:-600}
elif [ "$MODE" = go ]; then
  HB=$B/samples/gowork
  [ -x "$HB" ] || { echo "SKIP: $HB was not built (golang-go missing?)"; exit 77; }
  N=${MIG_BEATS:-600}
fi
D=$(mktemp -d /tmp/sbx-mig.XXXXXX)
NS=sbxm$$
cleanup() {
  jobs -p | xargs -r kill -9 2>/dev/null
  if [ "$MODE" = netns ]; then ip netns del ${NS}a 2>/dev/null; ip netns del ${NS}b 2>/dev/null; fi
  rm -rf "$D"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$D"/*.err "$D"/ctl.out; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -${SBX_MIG_TAIL:-5}; done
  exit 1
}

. "$(dirname "$0")/../wait_for.sh"
running() { kill -0 "$1" 2>/dev/null || fail "$2 exited early"; }

head -c 48 /dev/urandom >"$D/key" && chmod 600 "$D/key"
head -c 48 /dev/urandom >"$D/otherkey" && chmod 600 "$D/otherkey"
DSTKEY=$D/key
[ "$MODE" = wrongkey ] && DSTKEY=$D/otherkey
SRCRUN=()
DSTRUN=()
mkdir "$D/gate"
MOUNT=(--ro "$D/gate:/gate")
HBFILE=-
REFFILE=-
if [ "$MODE" = files ]; then
  mkdir "$D/data" && seq -f 'line-%g' 1 "$N" >"$D/data/in.txt"
  MOUNT+=(--ro "$D/data:/data")
  HBFILE=/data/in.txt
  REFFILE=$D/data/in.txt
fi
SRCOPT=()
PROXY=
case "$MODE" in
killdst | guestexit)
  PROXY=stall
  # The first round must outlast what the kernel buffers between the source and the stalled
  # proxy (the source's send buffer can grow to tcp_wmem's maximum).
  WMEM=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_wmem 2>/dev/null || echo 4194304)
  NEED=$(((WMEM / 1048576 + 2) * 4 + 16))
  [ "$TOUCH" -ge "$NEED" ] || TOUCH=$NEED
  # The guest's exit hypercall is audited after the monitor marked the sandbox as ending.
  [ "$MODE" = guestexit ] && SRCOPT=(--audit "$D/audit" --audit-all)
  ;;
corrupt) PROXY=flip ;;
esac
MEM=${MIG_MEM:-$((TOUCH + 256))M}

LISTEN=tcp:127.0.0.1:0
case "$MODE" in
unix) LISTEN=unix:$D/mig.sock ;;
netns)
  ip netns add ${NS}a && ip netns add ${NS}b || fail "cannot make network namespaces"
  ip link add ${NS}x type veth peer name ${NS}y || fail "cannot make a veth pair"
  ip link set ${NS}x netns ${NS}a && ip link set ${NS}y netns ${NS}b
  ip -n ${NS}a addr add 10.231.0.1/24 dev ${NS}x && ip -n ${NS}a link set ${NS}x up
  ip -n ${NS}b addr add 10.231.0.2/24 dev ${NS}y && ip -n ${NS}b link set ${NS}y up
  ip -n ${NS}a link set lo up && ip -n ${NS}b link set lo up
  SRCRUN=(ip netns exec ${NS}a)
  DSTRUN=(ip netns exec ${NS}b)
  LISTEN=tcp:10.231.0.2:0 ;;
esac

# The reference: the same heartbeat without a migration (nor a hold), for its memory checksum
# (the threaded one's whole output).
if [ "$MODE" = threads ]; then
  "$HB" beat 4 "$N" / >"$D/want" &
  HBARGS=(beat 4 "$N" /gate/go)
elif [ "$MODE" = go ]; then
  "$HB" beat "$N" / >"$D/want" &
  HBARGS=(beat "$N" /gate/go)
else
  "$HB" "$N" "$RATE" "$TOUCH" "$REFFILE" | grep checksum | cut -d' ' -f2 >"$D/want" &
  HBARGS=("$N" "$RATE" "$TOUCH" "$HBFILE" /gate/go)
fi
REF=$!

# The destination, on a port of the kernel's choosing (no clash with anything else running).
"${DSTRUN[@]}" "$B/sandbox-run" --incoming "$LISTEN" --migrate-key "$DSTKEY" --mem "$MEM" \
  "${MOUNT[@]}" >"$D/dst.out" 2>"$D/dst.err" &
DST=$!
dst_listening() {
  running $DST "the destination"
  if [ "$MODE" = unix ]; then
    ss -Hlxp 2>/dev/null | grep -F "$D/mig.sock" | grep -q "pid=$DST,"
  else
    DPORT=$("${DSTRUN[@]}" ss -Hltnp 2>/dev/null |
      awk -v p="pid=$DST," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
    [ -n "$DPORT" ]
  fi
}
wait_for "listening destination" dst_listening
case "$MODE" in
unix) ADDR=$LISTEN ;;
netns) ADDR=tcp:10.231.0.2:$DPORT ;;
*) ADDR=tcp:127.0.0.1:$DPORT ;;
esac

if [ "$MODE" = stray ]; then
  (exec 5<>"/dev/tcp/127.0.0.1/$DPORT") 2>/dev/null || fail "cannot connect to the destination"
  head -c 100 /dev/urandom >"/dev/tcp/127.0.0.1/$DPORT" || fail "cannot connect to the destination"
  exec 6<>"/dev/tcp/127.0.0.1/$DPORT" || fail "cannot connect to the destination"
  # The silent one is refused by the destination's own handshake limit.
  refused3() {
    running $DST "the destination (on a stray connection)"
    [ "$(grep -c 'refused (' "$D/dst.err")" -ge 3 ]
  }
  wait_for "log line for each of 3 stray connections" refused3
  exec 6>&-
  [ "$(grep -c 'refused (' "$D/dst.err")" = 3 ] || fail "not one log line for each of 3 stray connections"
  grep -q 'refused (1 of 16): .*closed the connection during the handshake' "$D/dst.err" || fail "no line for the empty connection"
  grep -q 'refused (3 of 16): .*did not complete the handshake within 5000 ms' "$D/dst.err" || fail "no line for the silent connection"
fi

if [ -n "$PROXY" ]; then
  # flip: one byte 200 KiB into the source's stream flipped. stall: the source's stream
  # forwarded up to 1 MiB, then "stalled" written and nothing more until "go" appears.
  python3 - "$PROXY" "$DPORT" "$D" >"$D/proxy.err" 2>&1 <<'PY' &
import os, socket, sys, threading, time
mode, dport, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # inherited by the accepted one
ls.bind(("127.0.0.1", 0))
ls.listen(1)
with open(d + "/proxy.port.tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(d + "/proxy.port.tmp", d + "/proxy.port")
c, _ = ls.accept()
s = socket.create_connection(("127.0.0.1", dport))
FLIP, STALL = 200000, 1 << 20
def pump(a, b, upstream):
    seen = 0
    try:
        while True:
            want = 65536
            if upstream and mode == "stall" and seen < STALL:
                want = min(want, STALL - seen)
            x = a.recv(want)
            if not x:
                b.shutdown(socket.SHUT_WR)
                return
            if upstream and mode == "flip" and seen <= FLIP < seen + len(x):
                x = bytearray(x)
                x[FLIP - seen] ^= 0x40
                x = bytes(x)
            seen += len(x)
            b.sendall(x)
            if upstream and mode == "stall" and seen == STALL:
                open(d + "/stalled", "w").close()
                while not os.path.exists(d + "/go"):
                    time.sleep(0.01)
    except OSError:
        # A peer went away: the other one must see the connection end too.
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
t = threading.Thread(target=pump, args=(s, c, False))
t.start()
pump(c, s, True)
t.join()
PY
  wait_for "proxy port" test -s "$D/proxy.port"
  ADDR=tcp:127.0.0.1:$(cat "$D/proxy.port")
fi

"${SRCRUN[@]}" "$B/sandbox-run" --control "$D/ctl" --migrate-key "$D/key" --mem "$MEM" \
  "${SRCOPT[@]}" "${MOUNT[@]}" "$HB" "${HBARGS[@]}" \
  >"$D/src.out" 2>"$D/src.err" &
SRC=$!
# The control socket listens before the guest's first instruction: a beat means it is there.
beating() {
  running $SRC "the source"
  grep -q '^50\b' "$D/src.out"
}
wait_for "beat 50 from the source" beating
[ -S "$D/ctl" ] || fail "no control socket"

release() { touch "$D/gate/go"; }
CTL=
if [ -n "$PROXY" ]; then
  "${SRCRUN[@]}" "$B/sandbox-ctl" "$D/ctl" migrate "$ADDR" >"$D/ctl.out" 2>&1 &
  CTLPID=$!
  if [ "$PROXY" = stall ]; then
    wait_for "stalled stream" test -e "$D/stalled"
    # The pre-copy is in its first round and cannot leave it until "go".
    if [ "$MODE" = killdst ]; then
      kill -9 $DST
      wait $DST 2>/dev/null
    else
      release
      wait_for "end of the guest" grep -q '"call":"exit"' "$D/audit"
    fi
    touch "$D/go"
  fi
  wait $CTLPID
  CTL=$?
else
  "${SRCRUN[@]}" "$B/sandbox-ctl" "$D/ctl" migrate "$ADDR" >"$D/ctl.out" 2>&1
  CTL=$?
fi
release
wait $SRC
SRCST=$?
if [ "$MODE" = guestexit ]; then
  kill -9 $DST 2>/dev/null; wait $DST 2>/dev/null
  [ $CTL -ne 0 ] || fail "the migration of a guest that ended should have failed"
  [ $SRCST -eq 0 ] || fail "source exit status $SRCST"
  grep -q 'ended during the migration' "$D/ctl.out" || fail "sandbox-ctl did not say the guest ended"
elif [ "$MODE" = loopback ] || [ "$MODE" = unix ] || [ "$MODE" = netns ] || [ "$MODE" = files ] ||
  [ "$MODE" = stray ] || [ "$MODE" = dynamic ] || [ "$MODE" = threads ] || [ "$MODE" = go ]; then
  wait $DST; DSTST=$?
  [ $CTL -eq 0 ] || fail "sandbox-ctl migrate failed ($CTL)"
  [ $SRCST -eq 0 ] || fail "source exit status $SRCST"
  [ $DSTST -eq 0 ] || fail "destination exit status $DSTST"
  grep -q 'migrated to' "$D/src.err" || fail "the source did not say it migrated"
  [ -s "$D/dst.out" ] || fail "the destination printed nothing"
else
  kill -9 $DST 2>/dev/null; wait $DST 2>/dev/null
  [ $CTL -ne 0 ] || fail "the migration should have failed"
  [ $SRCST -eq 0 ] || fail "source exit status $SRCST after a failed migration"
  grep -q 'migrated to' "$D/src.err" && fail "the source claims it migrated"
  [ -s "$D/dst.out" ] && fail "the destination ran the guest"
  case "$MODE" in
  wrongkey) grep -q 'same key' "$D/dst.err" || fail "the destination did not name the key" ;;
  corrupt) grep -q 'authentication' "$D/dst.err" || fail "the destination did not name the altered stream" ;;
  esac
fi
wait $REF
cat "$D/src.out" "$D/dst.out" >"$D/all"
if [ "$MODE" = threads ] || [ "$MODE" = go ]; then
  cmp -s "$D/all" "$D/want" || fail "the outputs together are not a native run's ($(wc -l <"$D/all") lines, $(wc -l <"$D/want") natively)"
  echo "PASS $MODE: $(grep -h 'migrated to' "$D/src.err" | head -1)"
  exit 0
fi
grep -v '^checksum' "$D/all" >"$D/seq"
if [ "$MODE" = files ]; then
  # Each beat printed the line of the file it read: the offset went along.
  awk '{ if ($1 != NR || $2 != "line-" NR) { print "bad line " NR ": " $0; exit 1 } }' "$D/seq" ||
    fail "a beat read the wrong line of the file after the migration"
  cut -d' ' -f1 "$D/seq" >"$D/seq1" && mv "$D/seq1" "$D/seq"
fi
seq 1 "$N" | cmp -s - "$D/seq" || fail "the outputs together are not 1..$N exactly once, in order"
GOT=$(grep '^checksum' "$D/all" | cut -d' ' -f2)
[ "$GOT" = "$(cat "$D/want")" ] || fail "memory checksum $GOT, a run without migration has $(cat "$D/want")"
echo "PASS $MODE: $(grep -h 'migrated to\|migrate' "$D/src.err" "$D/ctl.out" | head -1)"
