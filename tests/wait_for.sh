# Sourced by the test scripts (tests/monitor/migrate.sh, tests/serve/serve.sh).
# wait_for WHAT CMD...: runs CMD until it succeeds. Tests wait for conditions, never for a time;
# the bound (WAIT seconds, which the scripts take from SBX_TEST_WAIT, default 300) only turns a
# hang into a failure: fail (the caller's) names WHAT.
wait_for() {
  local what=$1 t0=$SECONDS
  shift
  until "$@"; do
    [ $((SECONDS - t0)) -lt "${WAIT:-300}" ] || fail "no $what after ${WAIT:-300} s"
    sleep 0.02
  done
}
