# bash's process machinery, each line's output the same natively and in the sandbox (with
# busybox's applets as the external commands): command and process substitution, pipelines
# and PIPESTATUS, background jobs and wait -n, kill and traps, coproc, exec redirections,
# /dev/fd, here-strings, tar through gzip, and an alarm cutting a read short.
# tests/monitor/test_procs.c runs it under bash-static.
set -u
T=${TMPDIR:-/tmp}
echo "1 subst: $(echo a $(echo b)) `echo c`"
echo "2 pipe: $(seq 1 100 | grep 7 | wc -l)"
false | true; echo "3 pipestatus: ${PIPESTATUS[*]}"
set -o pipefail; false | true; echo "4 pipefail: $?"; set +o pipefail
diff <(printf 'a\nb\n') <(printf 'a\nc\n') > /dev/null; echo "5 procsubst: $?"
mapfile -t L < <(printf 'x\ny\nz\n'); echo "6 mapfile: ${#L[@]} ${L[2]}"
cat <<EOT | tr a-z A-Z
7 heredoc $((6*7))
EOT
while read -r a b; do echo "8 read: $a-$b"; done <<< "one two"
( exit 7 ); echo "9 subshell: $?"
sleep 0.2 & p=$!; wait $p; echo "10 wait: $?"
( sleep 0.1; exit 3 ) & ( sleep 0.3; exit 4 ) & wait -n; echo "11 wait-n: $?"; wait
sleep 10 & p=$!; kill $p; wait $p; echo "12 killed: $?"
trap 'echo "14 trap exit in sub"' EXIT; ( trap 'echo "14 trap exit in sub"' EXIT; true ); trap - EXIT
coproc C { read x; echo "got $x"; }; echo hi >&"${C[1]}"; read -r y <&"${C[0]}"; echo "15 coproc: $y"; wait
exec 3>$T/f3; echo "16 fd3" >&3; exec 3>&-; cat $T/f3
f() { local v=$1; echo "17 func $v $BASH_SUBSHELL"; }; f x; (f y)
echo "18 bashpid differs: $([ "$BASHPID" != "$(echo $BASHPID)" ] && echo yes)"
x=$(trap 'echo "19 trap TERM"' TERM; kill -TERM $BASHPID; echo after); echo "$x"
echo "20 xargs: $(printf '1 2 3' | xargs -n1 echo | tr '\n' ,)"
r=$( { echo out; echo err >&2; } 2>&1 >/dev/null ); echo "21 redirect: $r"
type -t ls; command -v cat >/dev/null && echo "22 command -v"
n=0; for i in $(seq 1 30); do /bin/true; n=$((n+1)); done; echo "23 loop $n"
set +e; bash -c 'exit 42'; echo "25 child bash: $?"
echo "26 nested: $(bash -c 'echo $(echo deep | cat)')"
printf '%s\n' c b a | sort | head -1 | sed 's/^/27 sort: /'
{ sleep 0.1; echo "28 group bg"; } & wait
trap 'echo "29 chld"' CHLD; true & wait; trap - CHLD
ulimit -n >/dev/null && echo "30 ulimit"
time (true) 2>/dev/null; times > /dev/null; echo "31 time"
echo "32 dev fd: $(echo viafd | cat /dev/fd/0) $(cat /dev/stdin <<< stdin)"
tar czf - -C /bin busybox | tar tzf - ; echo "33 tar ${PIPESTATUS[*]}"
set -e; false || echo "35 set -e ok"; set +e
kill -0 $$ && echo "36 kill -0"
v=$(exec echo execd); echo "37 $v"
echo "38 exit in pipe: $(exit 5 | cat; echo $?)"
bash -c 'kill -9 $$'; echo "40 sig9: $?"
trap 'echo "41 alarm trap"' ALRM; read -r -t 0.2 x < <(sleep 2); echo "41 read -t: $?"; trap - ALRM
bash -c 'echo $PPID' > $T/ppid; echo "42 ppid of a child: $([ "$(cat $T/ppid)" = $$ ] && echo the shell)"
echo done
