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
#   stray     before the source, the destination gets an empty connection, random bytes and a
#             connection that says nothing: it logs each and goes on listening; then loopback
# Prints "PASS ..." or "FAIL: why" as its last line; exit status 0 only on PASS.
set -u
B=$1
MODE=$2
N=${N:-2500}
RATE=${RATE:-10}
TOUCH=${TOUCH:-32}
HB=$B/samples/heartbeat-glibc
D=$(mktemp -d /tmp/sbx-mig.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
NS=sbxm$$
cleanup() {
  jobs -p | xargs -r kill -9 2>/dev/null
  if [ "$MODE" = netns ]; then ip netns del ${NS}a 2>/dev/null; ip netns del ${NS}b 2>/dev/null; fi
  rm -rf "$D"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$D"/*.err "$D"/ctl.out; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" | tail -5; done; exit 1; }

head -c 48 /dev/urandom >"$D/key" && chmod 600 "$D/key"
head -c 48 /dev/urandom >"$D/otherkey" && chmod 600 "$D/otherkey"
DSTKEY=$D/key
[ "$MODE" = wrongkey ] && DSTKEY=$D/otherkey
SRCRUN=()
DSTRUN=()
MOUNT=()
HBFILE=()
if [ "$MODE" = files ]; then
  mkdir "$D/data" && seq -f 'line-%g' 1 "$N" >"$D/data/in.txt"
  MOUNT=(--ro "$D/data:/data")
  HBFILE=(/data/in.txt)
fi
ADDR=tcp:127.0.0.1:$PORT
LISTEN=$ADDR
case "$MODE" in
unix) ADDR=unix:$D/mig.sock; LISTEN=$ADDR ;;
netns)
  ip netns add ${NS}a && ip netns add ${NS}b || fail "cannot make network namespaces"
  ip link add ${NS}x type veth peer name ${NS}y || fail "cannot make a veth pair"
  ip link set ${NS}x netns ${NS}a && ip link set ${NS}y netns ${NS}b
  ip -n ${NS}a addr add 10.231.0.1/24 dev ${NS}x && ip -n ${NS}a link set ${NS}x up
  ip -n ${NS}b addr add 10.231.0.2/24 dev ${NS}y && ip -n ${NS}b link set ${NS}y up
  ip -n ${NS}a link set lo up && ip -n ${NS}b link set lo up
  SRCRUN=(ip netns exec ${NS}a)
  DSTRUN=(ip netns exec ${NS}b)
  ADDR=tcp:10.231.0.2:$PORT
  LISTEN=$ADDR ;;
corrupt)
  # The proxy listens where the source connects and flips one byte 200 KiB into the stream.
  PPORT=$((PORT + 1))
  python3 - "$PPORT" "$PORT" >"$D/proxy.err" 2>&1 <<'PY' &
import socket, sys, threading
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1]))); ls.listen(1)
c, _ = ls.accept()
d = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
def pump(a, b, flip):
    seen = 0
    while True:
        x = a.recv(65536)
        if not x:
            break
        if flip and seen <= 200000 < seen + len(x):
            x = bytearray(x); x[200000 - seen] ^= 0x40; x = bytes(x)
        seen += len(x)
        try: b.sendall(x)
        except OSError: break
    try: b.shutdown(socket.SHUT_WR)
    except OSError: pass
t = threading.Thread(target=pump, args=(d, c, False)); t.start()
pump(c, d, True); t.join()
PY
  ADDR=tcp:127.0.0.1:$PPORT ;;
esac

# The reference: the same heartbeat without a migration, for its memory checksum.
"$HB" "$N" "$RATE" "$TOUCH" "${HBFILE[@]/#/$D}" | grep checksum | cut -d' ' -f2 >"$D/want" &
REF=$!

"${DSTRUN[@]}" "$B/sandbox-run" --incoming "$LISTEN" --migrate-key "$DSTKEY" --mem ${MEM:-512M} "${MOUNT[@]}" >"$D/dst.out" 2>"$D/dst.err" &
DST=$!
if [ "$MODE" = stray ]; then
  # The first connection that gets through is an empty one (it also waits for the listener).
  for _ in $(seq 200); do (exec 5<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
  head -c 100 /dev/urandom >"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect to the destination"
  exec 6<>"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect to the destination"
  for _ in $(seq 1200); do
    [ "$(grep -c 'refused (' "$D/dst.err")" -ge 3 ] && break
    kill -0 $DST 2>/dev/null || fail "the destination ended on a stray connection"
    sleep 0.05
  done
  exec 6>&-
  [ "$(grep -c 'refused (' "$D/dst.err")" = 3 ] || fail "not one log line for each of 3 stray connections"
  grep -q 'refused (1 of 16): .*closed the connection during the handshake' "$D/dst.err" || fail "no line for the empty connection"
  grep -q 'refused (3 of 16): .*did not complete the handshake within 5000 ms' "$D/dst.err" || fail "no line for the silent connection"
fi
"${SRCRUN[@]}" "$B/sandbox-run" --control "$D/ctl" --migrate-key "$D/key" --mem ${MEM:-512M} \
  "${MOUNT[@]}" "$HB" "$N" "$RATE" "$TOUCH" "${HBFILE[@]}" >"$D/src.out" 2>"$D/src.err" &
SRC=$!
for _ in $(seq 100); do [ -S "$D/ctl" ] && grep -q '^50\b' "$D/src.out" 2>/dev/null && break; sleep 0.02; done
[ -S "$D/ctl" ] || fail "no control socket"
sleep 0.2
if [ "$MODE" = killdst ]; then
  (sleep 0.03; kill -9 $DST) &
  TOUCH_NOTE="destination killed"
fi
"${SRCRUN[@]}" "$B/sandbox-ctl" "$D/ctl" migrate "$ADDR" >"$D/ctl.out" 2>&1
CTL=$?
wait $SRC; SRCST=$?
if [ "$MODE" = guestexit ]; then
  kill -9 $DST 2>/dev/null; wait $DST 2>/dev/null
  [ $CTL -ne 0 ] || fail "the migration of a guest that ended should have failed"
  [ $SRCST -eq 0 ] || fail "source exit status $SRCST"
  grep -q 'ended during the migration' "$D/ctl.out" || fail "sandbox-ctl did not say the guest ended"
elif [ "$MODE" = loopback ] || [ "$MODE" = unix ] || [ "$MODE" = netns ] || [ "$MODE" = files ] ||
  [ "$MODE" = stray ]; then
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
