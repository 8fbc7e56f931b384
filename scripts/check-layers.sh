#!/usr/bin/env bash
# Holds monitor/'s folders to their order (docs/architecture.md, "Which module may include
# which"): a file includes headers of its own folder or of folders below it, never above or
# beside; cmd/ never includes the library's internal headers. Prints each offending include
# and exits 1; run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# A folder's floor: a file may include from a lower floor, or from its own folder.
declare -A floor=([core]=0 [calls]=1 [report]=1 [confine]=2 [sandbox]=3 [persist]=4 [trace]=4 [exec]=5)
declare -A where # header name -> folder
for h in monitor/*/*.h; do
  d=${h#monitor/}
  where[$(basename "$h")]=${d%%/*}
done

bad=0
for f in monitor/*/*.[ch] monitor/*/*/*.[ch]; do
  [ -e "$f" ] || continue
  d=${f#monitor/}
  d=${d%%/*}
  [ -n "${floor[$d]:-}" ] || { echo "check-layers: $f: folder monitor/$d has no floor in this script"; bad=1; continue; }
  while read -r inc; do
    t=${where[$inc]:-}
    [ -n "$t" ] && [ "$t" != "$d" ] || continue
    if [ "${floor[$t]}" -ge "${floor[$d]}" ]; then
      echo "check-layers: $f includes $inc of monitor/$t/, which is not below monitor/$d/"
      bad=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | xargs -r -n1 basename)
done
for f in $(find cmd -name '*.[ch]'); do
  if grep -Eq '^#include "(vm|[a-z_]*_priv)\.h"' "$f"; then
    echo "check-layers: $f includes the library's internal state: $(grep -Eo '^#include "(vm|[a-z_]*_priv)\.h"' "$f" | head -1)"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "check-layers: monitor/ folders include downwards only; cmd/ uses public headers"
exit "$bad"
