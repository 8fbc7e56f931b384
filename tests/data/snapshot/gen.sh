#!/bin/sh
# Regenerates the fuzz seeds here from v1.0-small.snap (which is written only if missing:
# it is format 1.0's fixture and stays as 1.0 wrote it). Run from the repository root.
set -eu
d=tests/data/snapshot
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=gnu17 -O1 -D_GNU_SOURCE -Imigrate -o "$tmp/gen" "$d/gen_fixtures.c" migrate/snap_*.c migrate/common.c \
	-lxxhash -lzstd
"$tmp/gen" "$d" "$tmp"
