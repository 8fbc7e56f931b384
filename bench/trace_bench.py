#!/usr/bin/env python3
"""The cost of --trace-exits: the same runs traced and untraced, interleaved (A B A B ...).

    python3 bench/trace_bench.py [--build DIR] [--runs N] [--json FILE]

Two workloads: compute-bound (samples/compute-glibc, the goal is under 5% overhead) and
syscall-heavy (bench sysbench getpid: a PVM trap per call, plus --io-poll off writes: a doorbell
exit per call). Figures are medians (p10, p90) of --runs runs of wall time, as traced/untraced
ratios. Needs root (BPF). See docs/tracing.md.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time


STATS_RE = re.compile(r"stats: setup ([\d.]+) ms, run ([\d.]+) ms")


def run(cmd):
    """Wall seconds of cmd, and the run phase (guest start to exit) in seconds from --stats."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"trace_bench: `{' '.join(cmd)}` exited with {p.returncode}: {p.stderr[-400:]}")
    if "cannot trace" in p.stderr:
        sys.exit(f"trace_bench: {p.stderr.strip()}")
    m = STATS_RE.search(p.stderr)
    return wall, float(m.group(2)) / 1e3


def summary(xs):
    xs = sorted(xs)
    q = lambda f: xs[min(len(xs) - 1, int(f * len(xs)))]
    return {"median": statistics.median(xs), "p10": q(0.1), "p90": q(0.9), "n": len(xs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--json")
    a = ap.parse_args()
    sbx = os.path.join(a.build, "sandbox-run")
    workloads = [
        ("compute (compute-glibc 20M)", [os.path.join(a.build, "samples", "compute-glibc")]),
        ("syscall-heavy (getpid x 200k)",
         [os.path.join(a.build, "bench", "guest", "sysbench-glibc"), "getpid", "200000"]),
        ("doorbell-heavy (--io-poll off, write x 2000)",
         [os.path.join(a.build, "samples", "traceme-glibc"), "write", "2000"]),
    ]
    out = {}
    print(f"{'workload':46} {'untraced s':>11} {'traced s':>11} {'ratio':>7} {'run-phase ratio':>16}")
    for name, prog in workloads:
        extra = ["--io-poll", "off"] if "io-poll" in name else []
        base, traced = [], []
        for _ in range(a.runs):
            base.append(run([sbx, "--stats", *extra, *prog]))
            traced.append(run([sbx, "--stats", *extra, "--trace-exits=/dev/null", *prog]))
        sb, st = summary([w for w, _ in base]), summary([w for w, _ in traced])
        rb, rt = summary([r for _, r in base]), summary([r for _, r in traced])
        out[name] = {"untraced_wall_s": sb, "traced_wall_s": st, "untraced_run_s": rb,
                     "traced_run_s": rt, "wall_ratio": st["median"] / sb["median"],
                     "run_ratio": rt["median"] / rb["median"]}
        print(f"{name:46} {sb['median']:11.4f} {st['median']:11.4f} "
              f"{st['median'] / sb['median']:7.3f} {rt['median'] / rb['median']:16.3f}")
    print("medians of wall time; traced wall time includes loading the BPF program (~40 ms on "
          "the PVM test machines) and the report; the run phase (--stats 'run') does not")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
