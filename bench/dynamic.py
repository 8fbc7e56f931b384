#!/usr/bin/env python3
"""Dynamic programs and the memory model, against native runs and bubblewrap, interleaved.

    python3 bench/dynamic.py [--build DIR] [--runs N] [--quick] [--json FILE]

1. start-up of Debian's dynamic /bin/true: native, bwrap with /usr, /lib, /lib64 and /bin
   bound read-only, sandbox-run with no flag (its default view). Goal: no slower than bwrap.
2. mprotect of 1 and 1,000 touched pages there and back (bench/guest/ptflush), ns per call,
   timed in the program.
3. python3 -c 'x = list(range(10**7))' (page-fault heavy) with --ro /usr. Goal: <= 1.5x native.
4. first touch of MAP_NORESERVE memory (pages on first touch, bench/guest/touch), ns per touch:
   every page of 64 MiB (a fault maps 64 KiB: the cost a page), and one byte every 64 KiB (each
   touch a fault of its own: the cost of the guest's page-fault path), against native and
   against ordinary memory (pages taken at mmap).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BenchError, Report, entry, interleave, run  # noqa: E402


def timed(cmd):
    return lambda: {"ms": run(cmd)[0] * 1e3}


def op_ns(cmd):
    def f():
        p = subprocess.run(cmd, capture_output=True, text=True)
        out = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("mprotect ")]
        if p.returncode != 0 or not out:
            raise BenchError(f"`{' '.join(cmd)}` exited with {p.returncode} without a "
                             f"'mprotect PAGES ns' line: {p.stderr[-300:]}")
        return {"ns": float(out[-1][2])}
    return f


def touch_ns(cmd):
    def f():
        p = subprocess.run(cmd, capture_output=True, text=True)
        n = [ln.split() for ln in p.stderr.splitlines() if ln.startswith("touches ")]
        t = [ln.split() for ln in p.stderr.splitlines() if ln.startswith("touch ")]
        if p.returncode != 0 or not n or not t:
            raise BenchError(f"`{' '.join(cmd)}` exited with {p.returncode} without its "
                             f"'touches N' and 'touch MIB ns' lines: {p.stderr[-300:]}")
        return {"ns": float(t[-1][2]) / float(n[-1][1])}
    return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = 3 if a.quick else a.runs
    sbx = os.path.join(a.build, "sandbox-run")
    ptflush = os.path.join(a.build, "bench", "guest", "ptflush-glibc")
    touch = os.path.join(a.build, "bench", "guest", "touch-glibc")
    for f in (sbx, ptflush, touch):
        if not os.access(f, os.X_OK):
            raise BenchError(f"{f} is missing: build the project first")
    rep = Report()

    rep.section("1. start-up: /bin/true (dynamic), wall time",
                "bwrap = bwrap --unshare-all --ro-bind /usr /usr --ro-bind /lib /lib "
                "--ro-bind /lib64 /lib64 --ro-bind /bin /bin --dev /dev --proc /proc /bin/true")
    v = {"native": timed(["/bin/true"]), "sandbox": timed([sbx, "/bin/true"])}
    bwrap = shutil.which("bwrap")
    if bwrap:
        v["bwrap"] = timed([bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr", "--ro-bind",
                            "/lib", "/lib", "--ro-bind", "/lib64", "/lib64", "--ro-bind", "/bin",
                            "/bin", "--dev", "/dev", "--proc", "/proc", "/bin/true"])
    r = interleave(v, runs)
    nat = r["native"]["ms"]
    rep.row("/bin/true native", "ms", nat)
    if bwrap:
        rep.row("/bin/true bwrap", "ms", r["bwrap"]["ms"], nat, "native")
    rep.row("/bin/true sandbox", "ms", r["sandbox"]["ms"], nat, "native")
    if bwrap:
        rep.row("/bin/true sandbox vs bwrap", "ms", r["sandbox"]["ms"], r["bwrap"]["ms"],
                "bwrap", goal="<= bwrap")
        rep.rows[-1]["met"] = rep.rows[-1]["ratio"] <= 1.0
    rep.table()

    rep.section("2. mprotect there and back, ns per call (timed in the program)")
    rounds = "200" if a.quick else "2000"
    for pages in ("1", "1000"):
        cmd = [ptflush, "mprotect", pages, rounds if pages == "1" else "50"]
        r = interleave({"native": op_ns(cmd), "sandbox": op_ns([sbx, *cmd])}, runs)
        rep.row(f"{pages} page(s) native", "ns", r["native"]["ns"])
        rep.row(f"{pages} page(s) sandbox", "ns", r["sandbox"]["ns"], r["native"]["ns"],
                "native")
    rep.table()

    rep.section("3. python3 -c 'x = list(range(N))', wall time",
                "sandbox: --ro /usr --mem 1G; page-fault heavy")
    n = "10**6" if a.quick else "10**7"
    py = ["/usr/bin/python3", "-c", f"x = list(range({n}))"]
    r = interleave({"native": timed(py),
                    "sandbox": timed([sbx, "--ro", "/usr", "--mem", "1G", *py])}, runs)
    rep.row(f"list(range({n})) native", "ms", r["native"]["ms"])
    rep.row(f"list(range({n})) sandbox", "ms", r["sandbox"]["ms"], r["native"]["ms"], "native",
            goal="ratio <= 1.5")
    rep.rows[-1]["met"] = rep.rows[-1]["ratio"] <= 1.5
    rep.table()

    rep.section("4. first touch, ns per touch (timed in the program)",
                "sandbox: --mem 512M; noreserve = MAP_NORESERVE (pages on first touch, 64 KiB "
                "a fault), plain = pages taken at mmap")
    mib = "16" if a.quick else "64"
    for stride, what in (("4096", "every page"), ("65536", "every 64 KiB")):
        cmds = {"native": [touch, mib, "noreserve", stride],
                "sandbox": [sbx, "--mem", "512M", touch, mib, "noreserve", stride],
                "sandbox plain": [sbx, "--mem", "512M", touch, mib, "plain", stride]}
        r = interleave({k: touch_ns(c) for k, c in cmds.items()}, runs)
        rep.row(f"{what}: native", "ns", r["native"]["ns"], digits=0)
        rep.row(f"{what}: sandbox noreserve", "ns", r["sandbox"]["ns"], r["native"]["ns"],
                "native", digits=0)
        rep.row(f"{what}: sandbox plain", "ns", r["sandbox plain"]["ns"], r["native"]["ns"],
                "native", digits=0)
    rep.table()

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"sections": rep.sections, "samples": rep.series}, f, indent=1)


if __name__ == "__main__":
    entry(main, "bench/dynamic.py")
