#!/usr/bin/env bash
# Real programs inside the sandbox, each against itself run natively: every line of
# commands.txt is a bash command that runs Debian's own binaries (shells and pipelines, Python,
# Perl, Tcl, sqlite, git, make, gcc, tar and the compressors, coreutils, flock, timeout); its
# stdout and exit status under sandbox-run must be those of the same command run natively.
# @W@ in a line is a scratch directory, shown read-write. A program that is not installed
# fails alike both ways. Nothing host-specific is compared (CPU counts, limits, descriptors the
# caller left open, niceness).
#
#   tests/programs/run.sh BUILD_DIR [FIRST [LAST]]
#
# Exit 77 (skipped) without /dev/kvm; 1 if any command differs.
set -u
build=${1:?usage: run.sh BUILD_DIR [FIRST [LAST]]}
first=${2:-1}
last=${3:-100000}
here=$(cd "$(dirname "$0")" && pwd)
[ -c /dev/kvm ] || { echo "programs: skipped: no /dev/kvm"; exit 77; }
sbx=$build/sandbox-run
w=$(mktemp -d "$build/programs-scratch.XXXXXX")
trap 'rm -rf "$w"' EXIT
out=$w.out
mkdir -p "$out"
n=0
ran=0
bad=0
while IFS= read -r line; do
	n=$((n + 1))
	[ "$n" -lt "$first" ] || [ "$n" -gt "$last" ] && continue
	ran=$((ran + 1))
	cmd=${line//@W@/$w}
	rm -rf "${w:?}"/* "$out"/*
	(cd / && env -i PATH=/bin:/usr/bin timeout 120 bash -c "$cmd") >"$out/n.out" 2>"$out/n.err"
	nrc=$?
	rm -rf "${w:?}"/*
	timeout -s KILL 300 "$sbx" --ro /usr --ro /etc --ro /bin --ro /lib --ro /lib64 \
		--rw "$w" --tmp /tmp /usr/bin/bash -c "$cmd" >"$out/s.out" 2>"$out/s.err"
	src=$?
	if [ "$nrc" = "$src" ] && cmp -s "$out/n.out" "$out/s.out"; then
		echo "ok $n: $line"
	else
		bad=$((bad + 1))
		echo "DIFFERS $n (status native $nrc, sandboxed $src): $line"
		diff "$out/n.out" "$out/s.out" | head -10
		echo "-- sandboxed stderr:"
		head -8 "$out/s.err"
	fi
done <"$here/commands.txt"
rm -rf "$out"
echo "programs: $ran run, $bad differ"
[ "$bad" = 0 ]
