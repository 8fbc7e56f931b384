#!/usr/bin/env bash
# sandbox-serve end to end over HTTP: serve.sh BUILD_DIR MODE
#   cgi        the CGI/1.1 conformance table (methods, query strings, headers, bodies of 0 bytes
#              and 1 MiB, chunked uploads, HTTP/1.0), the access log and /-/metrics
#   isolation  --instances 1: nothing of a request (global, heap, --tmp file, environment) is
#              seen by the next, after a normal end, a crash and a timeout; getrandom and
#              AT_RANDOM differ between requests
#   bad        malformed HTTP, oversized headers and bodies, a slow client, handlers that write
#              no headers, invalid ones, no end of output, crash or hang, wreck their page
#              tables; a full queue (503);
#              SIGTERM finishing the request in flight; the server stays up throughout
#   load       wrk at twice the pool's size in connections, 5 s, every response checked
#   reload     SIGHUP under load: the new handler binary answers, no request fails; a binary
#              that cannot start keeps the old instances
#   warm       --warm: the framing, a slow-init handler, a reload, isolation, and a Go
#              handler whose threads start before the point (when Go is built)
#   children   a shell handler whose commands fork and exec, one left in the background: each
#              request's processes end with it
#   threads    CGI handlers that start threads (samples/threads cgi, and gowork cgi when Go is
#              built): every request's threads run and end with it, a timeout among them
#   clients    one client address flooding connections (1100 request heads dripped line by
#              line) leaves room for another address; a dripped request head is closed at
#              --header-timeout
# SERVE=path overrides the server (e.g. build/tests/serve/sandbox-serve-fake, no isolation).
# Prints "PASS ..." or "FAIL: why" last; exit 0 on PASS, 77 to skip.
#
# Nothing here depends on how fast the host is: the script waits for conditions (a log line,
# a response, the server's own gauges), never for a time, and a request that must stay in
# flight waits for a file the script creates (serve_bad ?mode=gate). Time limits given to the
# server or to curl only turn a hang into a failure, except where a timeout is what is tested.
set -u
B=$1
MODE=$2
WAIT=${SBX_TEST_WAIT:-300}
SERVE=${SERVE:-$B/sandbox-serve}
S=$B/samples
skip() { echo "SKIP: $*"; exit 77; }
case "$SERVE" in
*fake*) ;;
*) [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm" ;;
esac
command -v curl >/dev/null || skip "curl is not installed (scripts/setup.sh installs it)"
[ -x "$SERVE" ] || skip "$SERVE was not built (libmicrohttpd-dev missing?)"
D=$(mktemp -d /tmp/sbx-serve.XXXXXX)
SPID=
cleanup() {
  [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$D/server.log" ] && tail -15 "$D/server.log" | sed 's/^/  server: /'
  exit 1
}

. "$(dirname "$0")/../wait_for.sh"

# start [flags...] HANDLER [args]: starts the server on free ports, sets PORT, APORT, URL.
start() {
  : >"$D/server.log"
  "$SERVE" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --access-log "$D/access.log" "$@" \
    2>>"$D/server.log" &
  SPID=$!
  listening() {
    kill -0 "$SPID" 2>/dev/null || fail "the server did not start"
    grep -q "listening on port" "$D/server.log"
  }
  wait_for "listening server" listening
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$D/server.log" | head -1)
  APORT=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$D/server.log" | head -1)
  [ -n "$PORT" ] || fail "no port in the server's log"
  URL=http://127.0.0.1:$PORT
}

# stop: SIGTERM, which must end the server with status 0 (finish: once it was sent).
stop() {
  kill -TERM "$SPID"
  finish
}
finish() {
  wait "$SPID"
  local rc=$?
  SPID=
  [ "$rc" = 0 ] || fail "the server exited $rc after SIGTERM"
}

alive() {
  kill -0 "$SPID" 2>/dev/null || fail "the server died ($1)"
  local c
  c=$(curl -s -o /dev/null -w '%{http_code}' -m "$WAIT" "$URL/alive?token=alive") || true
  [ "$c" = 200 ] || fail "the server does not answer after $1 (got '$c')"
}

# get NAME EXPECTED_STATUS curl-args...: the body in $D/NAME.body, headers in $D/NAME.hdr.
get() {
  local name=$1 want=$2
  shift 2
  local code
  code=$(curl -s -m "$WAIT" -D "$D/$name.hdr" -o "$D/$name.body" -w '%{http_code}' "$@") || true
  [ "$code" = "$want" ] || fail "$name: status '$code', expected $want ($(head -c 200 "$D/$name.body" 2>/dev/null))"
}

has() { grep -qxF -- "$2" "$D/$1.body" || fail "$1: no line '$2' in the body: $(head -c 600 "$D/$1.body")"; }
hasnt() { ! grep -q -- "$2" "$D/$1.body" || fail "$1: '$2' should not be in the body"; }

mode_cgi() {
  head -c 1048576 /dev/urandom >"$D/1m"
  start --instances 2 --env FOO=from-policy "$S/serve_echo-glibc"
  get get 200 "$URL/some/path?token=t1&a=b"
  has get "env REQUEST_METHOD=GET"
  has get "env QUERY_STRING=token=t1&a=b"
  has get "env PATH_INFO=/some/path"
  has get "env SCRIPT_NAME="
  has get "env REQUEST_URI=/some/path?token=t1&a=b"
  has get "env GATEWAY_INTERFACE=CGI/1.1"
  has get "env SERVER_PROTOCOL=HTTP/1.1"
  has get "env SERVER_SOFTWARE=sandbox-serve"
  has get "env SERVER_NAME=127.0.0.1"
  has get "env SERVER_PORT=$PORT"
  has get "env REMOTE_ADDR=127.0.0.1"
  has get "env FOO=from-policy"
  has get "env HTTP_HOST=127.0.0.1:$PORT"
  has get "body_len=0"
  hasnt get "CONTENT_LENGTH"
  grep -qi '^X-Request-Id: ' "$D/get.hdr" || fail "no X-Request-Id"
  grep -qi '^X-Echo-Token: t1' "$D/get.hdr" || fail "the handler's own header was not passed on"
  grep -q "^env REMOTE_PORT=[0-9]" "$D/get.body" || fail "no REMOTE_PORT"
  get head 200 -I "$URL/h"
  for m in PUT DELETE PATCH OPTIONS; do
    get "m$m" 200 -X "$m" "$URL/m"
    has "m$m" "env REQUEST_METHOD=$m"
  done
  get empty 200 -X POST -H 'Content-Type: application/json' --data-binary '' "$URL/e"
  has empty "env CONTENT_LENGTH=0"
  has empty "env CONTENT_TYPE=application/json"
  has empty "body_len=0"
  get big 200 --data-binary @"$D/1m" "$URL/big"
  has big "env CONTENT_LENGTH=1048576"
  has big "body_len=1048576"
  sed -n '/^--body--$/,$p' "$D/big.body" | tail -c +10 | cmp -s - "$D/1m" || fail "the 1 MiB body came back changed"
  get chunked 200 -H 'Transfer-Encoding: chunked' --data-binary @"$D/1m" "$URL/chunked"
  has chunked "env CONTENT_LENGTH=1048576"
  has chunked "body_len=1048576"
  grep -q "HTTP_TRANSFER_ENCODING=chunked" "$D/chunked.body" || fail "no HTTP_TRANSFER_ENCODING"
  sed -n '/^--body--$/,$p' "$D/chunked.body" | tail -c +10 | cmp -s - "$D/1m" || fail "the chunked body came back changed"
  get hdrs 200 -H 'X-Custom-Thing: v1' -H 'X-Custom-Thing: v2' -H 'Proxy: http://evil/' \
    -H 'Accept-Language: de' "$URL/h"
  has hdrs "env HTTP_X_CUSTOM_THING=v1, v2"
  has hdrs "env HTTP_ACCEPT_LANGUAGE=de"
  hasnt hdrs "HTTP_PROXY"
  get post 200 -d 'a=1&b=2' "$URL/p"
  has post "env CONTENT_TYPE=application/x-www-form-urlencoded"
  hasnt post "HTTP_CONTENT_LENGTH"
  hasnt post "HTTP_CONTENT_TYPE"
  has post "a=1&b=2"
  get qs 200 "$URL/a%20b/c?q=a%20b&flag&x=%2F"
  has qs "env QUERY_STRING=q=a%20b&flag&x=%2F"
  has qs "env PATH_INFO=/a b/c"
  get noqs 200 "$URL/"
  has noqs "env QUERY_STRING="
  get http10 200 -0 "$URL/old"
  has http10 "env SERVER_PROTOCOL=HTTP/1.0"
  # A second server cannot take the port (no SO_REUSEPORT sharing of connections).
  if timeout "$WAIT" "$SERVE" --listen "127.0.0.1:$PORT" --instances 1 "$S/serve_echo-glibc" \
    >/dev/null 2>"$D/second.log"; then
    fail "a second server listened on the port in use"
  fi
  grep -q "cannot listen on 127.0.0.1:$PORT" "$D/second.log" || fail "second server: $(cat "$D/second.log")"
  curl -s -m "$WAIT" "http://127.0.0.1:$APORT/-/metrics" >"$D/metrics" || fail "no /-/metrics"
  for m in 'sandbox_serve_requests_total{code="200"}' sandbox_serve_request_duration_seconds_bucket \
    sandbox_serve_resets_total sandbox_serve_reset_dirty_pages_sum sandbox_serve_queue_depth \
    sandbox_serve_instances_busy sandbox_serve_vm_exits_total; do
    grep -qF "$m" "$D/metrics" || fail "metrics lack $m"
  done
  stop
  # The access log: one line per request, common log format + duration + instance. A line is
  # written once its response is sent, so it is read after the server has ended.
  local n
  n=$(wc -l <"$D/access.log")
  [ "$n" -ge 14 ] || fail "access log has $n lines"
  grep -Eq '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] "GET /some/path\?token=t1&a=b HTTP/1\.1" 200 [0-9]+ [0-9]+us instance=[0-9]+ id=[0-9a-f]+$' "$D/access.log" ||
    fail "access log line not in the expected format: $(head -1 "$D/access.log")"
  # The engine's messages (-v) carry the front end's name, not sandbox-run's.
  case "$SERVE" in
  *fake*) ;;
  *)
    start -v --instances 1 "$S/serve_echo-glibc"
    grep -q "instance 0: sandbox-serve: KVM backend: " "$D/server.log" ||
      fail "the engine's messages do not start with sandbox-serve: $(head -3 "$D/server.log")"
    ! grep -q "sandbox-run:" "$D/server.log" ||
      fail "sandbox-run in sandbox-serve's log: $(grep -m1 sandbox-run: "$D/server.log")"
    stop
    # A dynamic handler needs no flag: its interpreter and libc are shown read-only.
    start --instances 1 "$S/serve_echo-dyn-glibc"
    get dyn 200 "$URL/d?token=dyn"
    has dyn "env QUERY_STRING=token=dyn"
    stop
    ;;
  esac
  echo "PASS cgi: $n requests, conformance table and metrics"
}

iso_field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$D/$1.body"; }

mode_isolation() {
  # --timeout is what the hang meets; the other requests take milliseconds.
  start --instances 1 --tmp /tmp --timeout 3s "$@" "$S/serve_iso-glibc"
  local clean="global=none heap=none file=none env=none"
  get a 200 "$URL/?secret=AAA"
  grep -q "^$clean " "$D/a.body" || fail "first request not clean: $(cat "$D/a.body")"
  get b 200 "$URL/?secret=BBB"
  grep -q "^$clean " "$D/b.body" || fail "after a normal request: $(cat "$D/b.body")"
  [ "$(iso_field a random)" != "$(iso_field b random)" ] || fail "getrandom gave the same bytes twice"
  if [ "${WARM:-}" = "" ]; then
    [ "$(iso_field a at_random)" != "$(iso_field b at_random)" ] || fail "AT_RANDOM is the same in two requests"
  fi
  get c 502 "$URL/?secret=CCC&then=crash"
  get d 200 "$URL/?secret=DDD"
  grep -q "^$clean " "$D/d.body" || fail "after a crash: $(cat "$D/d.body")"
  get e 504 "$URL/?secret=EEE&then=hang"
  get f 200 "$URL/?secret=FFF"
  grep -q "^$clean " "$D/f.body" || fail "after a timeout: $(cat "$D/f.body")"
  grep -q "req [0-9a-f]*: .*SUMMARY: " "$D/server.log" || fail "no SUMMARY line with a request id in the log"
  stop
  echo "PASS isolation${WARM:+ (warm)}: clean after a normal request, a crash and a timeout; fresh random bytes"
}

mode_children() {
  [ -x /bin/busybox ] || skip "/bin/busybox is not installed (scripts/setup.sh installs busybox-static)"
  # A shell handler: command substitution forks, a command runs in the background and would
  # sleep on after the response; it must end with the request, and the next request's
  # processes are numbered as the first's.
  start --instances 1 --timeout 60s --ro /bin/busybox:/bin/busybox /bin/busybox sh -c \
    'echo "Content-Type: text/plain"; echo; echo "kid $(/bin/busybox echo "$QUERY_STRING")"; /bin/busybox sleep 1000 & echo "bg $!"'
  get a 200 "$URL/?one"
  has a "kid one"
  get b 200 "$URL/?two"
  has b "kid two"
  [ "$(grep '^bg ' "$D/a.body")" = "$(grep '^bg ' "$D/b.body")" ] ||
    fail "the second request's processes are numbered otherwise: $(cat "$D/a.body" "$D/b.body")"
  for i in 1 2 3 4 5 6 7 8; do get "c$i" 200 "$URL/?c$i"; has "c$i" "kid c$i"; done
  stop
  echo "PASS children: a handler's children run, and end with its request"
}

mode_threads() {
  # One instance, so that every request after the first reuses the vCPUs a request before it
  # made; a request whose threads never end meets --timeout, and the next one runs as well.
  start --instances 1 --timeout 5s "$S/threads-glibc" cgi 4
  for i in 1 2 3 4 5 6; do
    get "t$i" 200 "$URL/?t$i"
    has "t$i" "query t$i"
    has "t$i" "total: 15005000"
    has "t$i" "thread tids distinct: yes"
    hasnt "t$i" "WRONG"
  done
  get spin 504 "$URL/?spin"
  get after 200 "$URL/?after"
  has after "total: 15005000"
  # Every request's threads are numbered as the first's: nothing of a run reaches the next.
  [ "$(grep -c . "$D/t1.body")" = "$(grep -c . "$D/after.body")" ] || fail "after the timeout: $(cat "$D/after.body")"
  stop
  local with=C
  if [ -x "$S/gowork" ]; then
    with="C and Go"
    # The Go runtime starts its threads, netpoller and timers in every request.
    start --instances 1 --timeout 30s "$S/gowork" cgi
    for i in 1 2 3 4; do
      get "g$i" 200 "$URL/?g$i"
      has "g$i" "go cgi: g$i threads: true"
      hasnt "g$i" "WRONG"
    done
    stop
  fi
  echo "PASS threads: CGI handlers that start threads ($with), a timeout among them"
}

# send BYTES: to fd 3. bash writes them a line at a time, and the server may answer and close
# the connection before the last line (a 400 on the head): an EPIPE then, not the script's end.
send() { (trap '' PIPE; printf '%b' "$1" >&3) 2>/dev/null || true; }

# raw BYTES: sends them on a fresh connection, prints the status line's code.
raw() {
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect"
  send "$1"
  timeout "$WAIT" head -c 12 <&3 | sed -n 's/^HTTP\/1\.[01] \([0-9]*\).*/\1/p'
  exec 3<&- 3>&-
}

# rawall BYTES: sends them on a fresh connection, prints all it gets until the server closes it.
# The server may close before it has read them all (a bad head is answered at once): the write
# then fails in a subshell (SIGPIPE), not in this script.
rawall() {
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect"
  send "$1"
  timeout "$WAIT" cat <&3 | tr -d '\r'
  exec 3<&- 3>&-
}

mode_bad() {
  head -c 2097152 /dev/zero >"$D/2m"
  start --instances 1 --timeout 3s --max-body 1M --max-output 1M "$S/serve_bad-glibc"
  local c
  c=$(raw 'GARBAGE\r\n\r\n')
  [ "$c" = 400 ] || [ "$c" = "" ] || fail "malformed request line: '$c'"
  alive "a malformed request line"
  c=$(raw 'GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n')
  [ "$c" = 400 ] || [ "$c" = "" ] || fail "malformed header: '$c'"
  alive "a malformed header"
  # RFC 9112 6.3: a body length two headers disagree on is a 400 and the end of the
  # connection (what follows the head is never read as a request of its own).
  rawall 'POST /?mode=ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabcGET /?mode=ok HTTP/1.1\r\nHost: x\r\n\r\n' >"$D/cl2"
  grep -q '^HTTP/1.1 400' "$D/cl2" || fail "two different Content-Length headers: $(head -1 "$D/cl2")"
  [ "$(grep -c '^HTTP/1' "$D/cl2")" = 1 ] || fail "two different Content-Length headers: more than one response"
  rawall 'POST /?mode=ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' >"$D/clte"
  grep -q '^HTTP/1.1 400' "$D/clte" || fail "Content-Length with Transfer-Encoding: $(head -1 "$D/clte")"
  grep -q "two different Content-Length headers" "$D/server.log" || fail "no log line for two Content-Length headers"
  get samecl 200 -H 'Content-Length: 2' -H 'Content-Length: 2' -d 'ab' "$URL/?mode=ok"
  alive "ambiguous body lengths"
  local big
  big=$(head -c 70000 /dev/zero | tr '\0' a)
  get bighdr 431 -H "X-Big: $big" "$URL/"
  alive "oversized headers"
  get bigbody 413 --data-binary @"$D/2m" "$URL/"
  get bigchunked 413 -H 'Transfer-Encoding: chunked' --data-binary @"$D/2m" "$URL/"
  alive "oversized bodies"
  # A slow client holds a connection with half a request; others are served meanwhile.
  exec 4<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /?mode=ok HTTP/1.1\r\nHost: x\r\n' >&4
  alive "a slow client"
  printf 'X-Late: 1\r\n\r\n' >&4
  timeout "$WAIT" head -c 12 <&4 | grep -q '^HTTP/1.1 200' || fail "the slow client got no answer"
  exec 4<&- 4>&-
  for m in noheaders invalid infinite empty crash abort; do
    get "bad$m" 502 "$URL/?mode=$m"
    alive "mode=$m"
  done
  grep -q "bad CGI response" "$D/server.log" || fail "no log line for a bad CGI response"
  # --max-output is the response's (stdout): what the handler logs on stderr does not count.
  get stderr 200 "$URL/?mode=stderr"
  has stderr "ok"
  grep -q "req [0-9a-f]*: guest: eeee" "$D/server.log" || fail "the handler's stderr is not in the log"
  get hang 504 "$URL/?mode=hang"
  get exit3 200 "$URL/?mode=exit3"
  has exit3 "ok"
  alive "all of it"
  # A full queue: one instance, a queue of one, five requests held in the handler until the
  # gate opens: one runs, one waits, three are refused at once.
  stop
  mkdir "$D/gate"
  start --instances 1 --queue 1 --timeout "${WAIT}s" --ro "$D/gate:/gate" "$S/serve_bad-glibc"
  local pids=()
  for i in 1 2 3 4 5; do
    curl -s -o /dev/null -D "$D/q$i.hdr" -w '%{http_code}\n' -m "$WAIT" "$URL/?mode=gate" >"$D/q$i" &
    pids+=($!)
  done
  refused() { [ "$(cat "$D"/q? | grep -c 503)" -ge 3 ]; }
  wait_for "three 503s" refused
  touch "$D/gate/open"
  wait "${pids[@]}"
  [ "$(cat "$D"/q? | grep -c 503)" = 3 ] || fail "not three 503s for five requests, one instance and a queue of one: $(cat "$D"/q?)"
  [ "$(cat "$D"/q? | grep -c 200)" = 2 ] || fail "not two requests served: $(cat "$D"/q?)"
  [ "$(grep -ci '^Retry-After: 1' "$D"/q?.hdr | awk -F: '{ s += $NF } END { print s }')" = 3 ] ||
    fail "a 503 without Retry-After"
  # SIGTERM finishes the request in flight: held in the handler when the signal comes.
  rm "$D/gate/open"
  curl -s -m "$WAIT" -o "$D/term.body" -w '%{http_code}' "$URL/?mode=gate" >"$D/term.code" &
  local cpid=$!
  busy() { curl -s -m "$WAIT" "http://127.0.0.1:$APORT/-/metrics" | grep -q '^sandbox_serve_instances_busy 1$'; }
  wait_for "request in flight" busy
  kill -TERM "$SPID"
  touch "$D/gate/open"
  finish
  wait $cpid
  [ "$(cat "$D/term.code")" = 200 ] || fail "the request in flight at SIGTERM got '$(cat "$D/term.code")'"
  # A hostile handler that wrecks its page tables before faulting: each request a 502 with a
  # report, the same instance reset and reused.
  start --instances 1 --timeout "${WAIT}s" "$S/wreck-glibc" pagetables
  for i in 1 2 3; do get "wreck$i" 502 "$URL/"; done
  [ "$(grep -c "req [0-9a-f]*: instance [0-9]*: SUMMARY: " "$D/server.log")" = 3 ] || fail "not one SUMMARY per wrecked request"
  grep -q "req [0-9a-f]*: instance [0-9]*: DEDUP_TOKEN: " "$D/server.log" || fail "no DEDUP_TOKEN line"
  stop
  echo "PASS bad: malformed, oversized, slow, bad and hostile handlers, full queue, SIGTERM; the server stayed up"
}

mode_load() {
  command -v wrk >/dev/null || skip "wrk is not installed (scripts/setup.sh installs it)"
  start --instances 2 "$S/serve_echo-glibc"
  wrk -t 4 -c 4 -d "${LOAD_SECONDS:-5}s" --timeout "${WAIT}s" -s "$(dirname "$0")/token.lua" "$URL/" >"$D/wrk.out" 2>&1
  local line
  line=$(grep '^checked' "$D/wrk.out") || fail "wrk: $(cat "$D/wrk.out")"
  local ok bad req err
  ok=$(echo "$line" | sed 's/.*ok=\([0-9]*\).*/\1/')
  bad=$(echo "$line" | sed 's/.*bad=\([0-9]*\).*/\1/')
  req=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  err=$(echo "$line" | sed 's/.*errors=\([0-9]*\).*/\1/')
  [ "$bad" = 0 ] || fail "$bad responses mixed up or failed: $(grep 'first bad' "$D/wrk.out")"
  [ "$err" = 0 ] || fail "$err wrk errors: $(cat "$D/wrk.out")"
  [ "$ok" -gt 0 ] && [ "$ok" -ge $((req - 4)) ] || fail "only $ok of $req responses checked"
  stop
  local logged
  logged=$(grep -c 'GET /load?token=' "$D/access.log")
  [ "$logged" -ge "$ok" ] || fail "access log has $logged lines for $ok responses"
  echo "PASS load: $line"
}

mode_reload() {
  command -v wrk >/dev/null || skip "wrk is not installed"
  cp "$S/serve_echo-glibc" "$D/handler"
  start --instances 2 "$D/handler"
  # Load from before the reload until answers of the new binary have come: wrk runs until
  # told to stop (SIGINT: it prints its summary).
  wrk -t 2 -c 4 -d 3600s --timeout "${WAIT}s" "$URL/?token=x" >"$D/wrk.out" 2>&1 &
  local wpid=$!
  loaded() { [ "$(grep -c 'GET /?token=x' "$D/access.log" 2>/dev/null)" -ge 20 ]; }
  wait_for "requests from wrk" loaded
  local before
  before=$(grep -c '' "$D/access.log")
  cp "$S/serve_hello-glibc" "$D/handler.new" && mv "$D/handler.new" "$D/handler"
  kill -HUP "$SPID"
  wait_for "reload" grep -q "reloaded" "$D/server.log"
  # The new instances have answered wrk: a 200 of hello's size (13 bytes) after the reload.
  new_answers() { tail -n +"$((before + 1))" "$D/access.log" | grep -q '"GET /?token=x HTTP/1.1" 200 13 '; }
  wait_for "answers of the new handler" new_answers
  kill -INT $wpid
  wait $wpid
  grep -q "Non-2xx" "$D/wrk.out" && fail "non-2xx responses during the reload: $(cat "$D/wrk.out")"
  grep -q "Socket errors" "$D/wrk.out" && fail "socket errors during the reload: $(cat "$D/wrk.out")"
  get after 200 "$URL/"
  has after "hello, world"
  # A reload to a binary that cannot start keeps the instances there are.
  echo "not an ELF" >"$D/handler.new" && chmod +x "$D/handler.new" && mv "$D/handler.new" "$D/handler"
  kill -HUP "$SPID"
  wait_for "'reload failed'" grep -q "reload failed" "$D/server.log"
  grep -q "reload failed, the old instances stay" "$D/server.log" || fail "no 'reload failed' for a broken binary"
  get stays 200 "$URL/"
  has stays "hello, world"
  local n
  n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$D/wrk.out")
  stop
  echo "PASS reload: $n requests under SIGHUP, none failed; the new binary answers"
}

mode_warm() {
  start --warm --instances 1 "$S/serve_warm-glibc"
  get w 200 "$URL/?n=1000"
  grep -q "^prime 1000 = 7919;" "$D/w.body" || fail "warm: $(cat "$D/w.body")"
  stop
  start -v --warm --instances 1 "$S/serve_echo-glibc"
  # The instance's own first run (a framed GET /, its output dropped) ended as runs end.
  grep -q "instance 0: its first run (GET /, output dropped): ended" "$D/server.log" ||
    fail "warm: no first run: $(grep -i first "$D/server.log")"
  get we 200 -d 'warm body' "$URL/p/q?token=w1"
  has we "env REQUEST_METHOD=POST"
  has we "env PATH_INFO=/p/q"
  has we "env QUERY_STRING=token=w1"
  has we "env CONTENT_LENGTH=9"
  has we "body_len=9"
  has we "warm body"
  # SIGHUP in warm mode: new instances run the initialisation again and are snapshotted anew.
  kill -HUP "$SPID"
  wait_for "warm reload" grep -q "reloaded" "$D/server.log"
  get we2 200 -d 'again' "$URL/?token=w2"
  has we2 "env QUERY_STRING=token=w2"
  has we2 "again"
  stop
  # A program that ends without reading stdin has no snapshot point: refused at start.
  if timeout "$WAIT" "$SERVE" --warm --listen 127.0.0.1:0 "$S/hello-glibc" >/dev/null 2>"$D/nopoint.log"; then
    fail "warm: a handler that never reads stdin was accepted"
  fi
  grep -q "before its snapshot point" "$D/nopoint.log" || fail "warm: $(cat "$D/nopoint.log")"
  # Threads started before the point (Go's runtime, a pool of goroutines, a ticker) are in the
  # snapshot and come back with every request (a C pool: test_exec's warm_point_* tests).
  local with=
  if [ -x "$S/gowork" ]; then
    with=" (and a Go handler, its threads started before the point)"
    start --warm --instances 1 --timeout 30s "$S/gowork" warm
    for i in 1 2 3 4; do
      get "gw$i" 200 -d "body$i" "$URL/?gw$i"
      has "gw$i" "go warm: gw$i body=body$i runs=1 table=67108864 job=true ticking=true"
      hasnt "gw$i" "WRONG"
    done
    stop
  fi
  WARM=1 mode_isolation --warm
  echo "PASS warm: the point, a reload, a handler with no point refused$with"
}

# clients.py PORT flood|loris: one hostile client (see mode_clients). Prints one result line.
clients_py() {
  python3 - "$@" <<'PY'
import resource, select, socket, subprocess, sys, time
port, what = int(sys.argv[1]), sys.argv[2]
head = b"GET /?mode=ok HTTP/1.1\r\nHost: x\r\n"

def closed(s):
    """The server closed s (EOF or a reset), as far as can be seen now."""
    p = select.poll()
    p.register(s, select.POLLIN)
    if not p.poll(0):
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True

if what == "flood":
    # More connections than the server's 1024 in all, from 127.0.0.1, each a request head
    # that never ends, dripped a line at a time (every byte restarts libmicrohttpd's own
    # timeout); meanwhile a client at 127.0.0.2 asks for a page.
    n = 1100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        if hard != resource.RLIM_INFINITY and hard < n + 100:
            print("SKIP: the open files limit is %d" % hard)
            sys.exit(77)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, hard))
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(head)
        except OSError:
            pass
        socks.append(s)
    curl = subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "300",
                             "--interface", "127.0.0.2", "http://127.0.0.1:%d/?mode=ok" % port],
                            stdout=subprocess.PIPE)
    while curl.poll() is None:
        for s in socks:
            try:
                s.sendall(b"X-Drip: 1\r\n")
            except OSError:
                pass
        time.sleep(0.5)
    code = curl.stdout.read().decode()
    held = sum(1 for s in socks if not closed(s))
    print("served=%s held=%d of %d" % (code, held, n))
else:
    # One request head dripped a line every half second, until the server closes it (300 s
    # only bound a hang: --header-timeout is 10 s).
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    t0, result = time.monotonic(), "open"
    while time.monotonic() - t0 < 300:
        time.sleep(0.5)
        try:
            s.sendall(b"X-Drip: 1\r\n")
        except OSError:
            result = "closed"
            break
        if closed(s):
            result = "closed"
            break
    print("%s after %.0f s" % (result, time.monotonic() - t0))
PY
}

mode_clients() {
  command -v python3 >/dev/null || skip "python3 is not installed"
  start --instances 1 "$S/serve_bad-glibc"
  local out rc
  out=$(clients_py "$PORT" flood) && rc=0 || rc=$?
  [ "$rc" = 77 ] && skip "$out"
  echo "$out" | grep -q '^served=200 ' || fail "one client with 1100 connections locked another out: $out"
  local held
  held=$(echo "$out" | sed -n 's/.* held=\([0-9]*\) .*/\1/p')
  [ "$held" -le 64 ] || fail "one client address holds $held connections (--max-connections-per-client is 64): $out"
  alive "a flood of connections"
  # A request head dripped line by line is closed at --header-timeout (10 s), from the
  # connection's start, however often a byte comes.
  out=$(clients_py "$PORT" loris)
  echo "$out" | grep -q '^closed ' || fail "a request head dripped for 300 s was never closed: $out"
  grep -q "connection from 127.0.0.1: no complete request head within --header-timeout 10000 ms" \
    "$D/server.log" || fail "no log line for the connection closed at --header-timeout"
  curl -s -m "$WAIT" "http://127.0.0.1:$APORT/-/metrics" | grep -q '^sandbox_serve_header_timeouts_total [1-9]' ||
    fail "sandbox_serve_header_timeouts_total did not count it"
  alive "a slow request head"
  stop
  echo "PASS clients: $(echo "$out" | head -1); one client's flood left room for another"
}

case "$MODE" in
cgi | isolation | bad | load | reload | warm | clients | children | threads) "mode_$MODE" ;;
*) echo "FAIL: unknown mode $MODE"; exit 2 ;;
esac
