#!/usr/bin/env python3
"""sandbox-fuzz: executions per second against native libFuzzer and native AFL++, in one run.

    python3 bench/fuzz.py [--build DIR] [--runs N] [--seconds S] [--quick]

For a no-op target, for the planted-bug parser (samples/fuzz/; its throughput build has the
bug defused so a find does not cut the run short) and for an AddressSanitizer target
(samples/fuzz/heap.c, defused the same way; against libFuzzer with ASan), each variant fuzzes for --seconds, --runs
times, interleaved (A B C ... A B C ...), and the median exec/s is compared with the baselines
measured in the same run:
  - native libFuzzer, in process (clang -fsanitize=fuzzer): the upper bound, no isolation;
  - native AFL++ forkserver (afl-clang-fast, one fork per input): the usual out-of-process
    executor;
  - sandbox-fuzz (libFuzzer drives the guest; reset in place, no VM exit per input);
  - sandbox-fuzz --strict-reset (every input ends in a VM exit and the vCPU's registers are put
    back by the monitor: for targets that may be hostile to the harness);
  - afl-fuzz driving sandbox-fuzz --afl.
The per-input breakdown (reset time, pages put back, VM exits) is sandbox-fuzz's own account.
Then the no-op target with two threads started before its point (held at the point, put back
for every input), against the same target without them and native libFuzzer. Then the time
each engine takes to find the planted bug (seeds 1..--runs, from one seed input).
"""
import argparse
import os
import re
import shutil
import subprocess
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BenchError, Report, entry, interleave  # noqa: E402

EPS_RE = re.compile(r"stat::average_exec_per_sec:\s+(\d+)")
BREAK_RE = re.compile(r"per input: reset ([\d.]+) us, ([\d.]+) pages, ([\d.]+) VM exits")
AFL_ENV = {"AFL_SKIP_CPUFREQ": "1", "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES": "1",
           "AFL_NO_UI": "1", "AFL_NO_AFFINITY": "1", "AFL_BENCH_UNTIL_CRASH": "0"}


def libfuzzer(cmd, seconds, work, env=None):
    """exec/s of a libFuzzer run (native or sandbox-fuzz), and sandbox-fuzz's breakdown."""
    corpus = os.path.join(work, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    with open(os.path.join(corpus, "seed"), "wb") as f:
        f.write(b"SBXF\x01\x00hello")
    p = subprocess.run([*cmd, f"-max_total_time={seconds}", "-print_final_stats=1", "-seed=1",
                        f"-artifact_prefix={work}/", corpus], capture_output=True, text=True,
                       cwd=work, env=dict(os.environ, **(env or {})))
    m = EPS_RE.findall(p.stderr)
    if not m:
        raise BenchError(f"{' '.join(cmd)}: no exec/s (exit {p.returncode}): "
                         f"{p.stderr.strip()[-600:]}")
    out = {"exec/s": float(m[-1])}
    b = BREAK_RE.findall(p.stderr)
    if b:
        out["reset us"], out["pages"], out["exits"] = map(float, b[-1])
    return out


def find_libfuzzer(cmd, seed, limit, work):
    """Seconds until a libFuzzer run (native or sandbox-fuzz) finds the planted bug."""
    corpus = os.path.join(work, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    with open(os.path.join(corpus, "seed"), "wb") as f:
        f.write(b"hello")
    t0 = time.perf_counter()
    p = subprocess.run([*cmd, f"-max_total_time={limit}", f"-seed={seed}",
                        f"-artifact_prefix={work}/", corpus], capture_output=True, text=True,
                       cwd=work)
    t = time.perf_counter() - t0
    # A crash artifact, whatever the exit code (native libFuzzer exits 1 on a SIGSEGV it
    # catches, sandbox-fuzz 77).
    found = any(n.startswith("crash-") for n in os.listdir(work))
    for n in os.listdir(work):
        if n.startswith("crash-"):
            os.unlink(os.path.join(work, n))
    return t if found and p.returncode != 0 else float("inf")


def afl_dirs(work, seed):
    """afl-fuzz's input folder holding seed, and an output folder emptied of an earlier run."""
    out_dir = os.path.join(work, "afl-out")
    in_dir = os.path.join(work, "afl-in")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(in_dir, exist_ok=True)
    with open(os.path.join(in_dir, "seed"), "wb") as f:
        f.write(seed)
    return in_dir, out_dir


def find_afl(cmd, seed, limit, work):
    """Seconds until afl-fuzz saves its first crash."""
    in_dir, out_dir = afl_dirs(work, b"hello")
    env = dict(os.environ, **dict(AFL_ENV, AFL_BENCH_UNTIL_CRASH="1"))
    t0 = time.perf_counter()
    subprocess.run(["afl-fuzz", "-V", str(limit), "-s", str(seed), "-i", in_dir, "-o", out_dir,
                    "--", *cmd], capture_output=True, text=True, env=env, cwd=work)
    t = time.perf_counter() - t0
    crashes = os.path.join(out_dir, "default", "crashes")
    found = os.path.isdir(crashes) and any(n.startswith("id:") for n in os.listdir(crashes))
    return t if found else float("inf")


def afl(cmd, seconds, work, one_cpu=False):
    """exec/s of afl-fuzz over seconds (its own execs_per_sec)."""
    in_dir, out_dir = afl_dirs(work, b"SBXF\x01\x00hello")
    env = dict(os.environ, **AFL_ENV)
    pin = ["taskset", "-c", "0"] if one_cpu else []
    p = subprocess.run([*pin, "afl-fuzz", "-V", str(seconds), "-s", "1", "-i", in_dir, "-o",
                        out_dir, "--", *cmd], capture_output=True, text=True, env=env, cwd=work)
    try:
        with open(os.path.join(out_dir, "default", "fuzzer_stats")) as f:
            stats = {k.strip(): v.strip() for k, v in
                     (line.split(":", 1) for line in f if ":" in line)}
        done = float(stats["execs_done"])
        secs = float(stats["last_update"]) - float(stats["start_time"])
        return {"exec/s": done / secs if secs > 0 else float(stats["execs_per_sec"])}
    except (OSError, KeyError, ValueError):
        raise BenchError(f"afl-fuzz {' '.join(cmd)}: no stats (exit {p.returncode}): "
                         f"{p.stdout.strip()[-600:]}")


def threads_before_point(rep, b, fuzz, runs, secs, work):
    """The no-op target with two threads started before its point (NOOP_THREADS=2): the point
    is taken with every vCPU paused and each input ends by a stop and a full reset that puts
    the threads back, against the same target without them and native libFuzzer with them."""
    t = f"{b}/samples/fuzz-noop"
    env = {"NOOP_THREADS": "2"}
    res = interleave({
        "libfuzzer": lambda: libfuzzer([f"{t}-libfuzzer"], secs, work, env),
        "threads": lambda: libfuzzer([fuzz, "--env", "NOOP_THREADS=2", t], secs, work),
        "one": lambda: libfuzzer([fuzz, t], secs, work),
    }, runs)
    rep.section("no-op target with 2 threads started before the point: executions per second",
                "ratio: sandbox-fuzz's median over the baseline's")
    lf = res["libfuzzer"]["exec/s"]
    rep.row("native libFuzzer, 2 threads (in process)", "exec/s", lf)
    rep.row("sandbox-fuzz, 2 threads vs native libFuzzer", "exec/s", res["threads"]["exec/s"],
            base=lf, base_name="libFuzzer")
    rep.row("sandbox-fuzz, 2 threads vs no thread", "exec/s", res["threads"]["exec/s"],
            base=res["one"]["exec/s"], base_name="no thread")
    r = res["threads"]
    if "reset us" in r:
        rep.row("2 threads: reset per input", "us", r["reset us"], digits=1)
        rep.row("2 threads: VM exits per input", "exits", r["exits"], digits=2)
    rep.table()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="2 runs of 3 s: a smoke test")
    ap.add_argument("--find-runs", type=int, default=3, help="seeds per engine for the find")
    ap.add_argument("--find-limit", type=int, default=300, help="seconds before giving up")
    ap.add_argument("--no-throughput", action="store_true", help="only the time to find")
    a = ap.parse_args()
    runs, secs = (2, 3) if a.quick else (a.runs, a.seconds)
    b = os.path.abspath(a.build)
    fuzz = f"{b}/sandbox-fuzz"
    for path in (fuzz, f"{b}/samples/fuzz-noop"):
        if not os.path.exists(path):
            raise BenchError(f"{path} is missing: build the project first")
    have_afl = shutil.which("afl-fuzz") and os.path.exists(f"{b}/samples/fuzz-noop-afl")
    rep = Report()
    print(f"fuzz benchmark: {runs} runs of {secs} s per variant, {os.cpu_count()} CPUs, "
          f"{os.uname().release}")
    work = tempfile.mkdtemp(prefix="sbx-fuzzbench.")
    try:
        for target in () if a.no_throughput else ("noop", "parser", "heap-asan-safe"):
            t = f"{b}/samples/fuzz-{target}"
            afl_here = have_afl and os.path.exists(f"{t}-afl")
            variants = {
                "libfuzzer": lambda t=t: libfuzzer([f"{t}-libfuzzer"], secs, work),
                "sandbox": lambda t=t: libfuzzer([fuzz, t], secs, work),
                "strict": lambda t=t: libfuzzer([fuzz, "--strict-reset", t], secs, work),
                "sandbox-1cpu": lambda t=t: libfuzzer(["taskset", "-c", "0", fuzz, t], secs,
                                                      work),
            }
            if afl_here:
                variants["afl"] = lambda t=t: afl([f"{t}-afl"], secs, work)
                variants["sandbox-afl"] = lambda t=t: afl([fuzz, "--afl", t], secs, work)
                variants["afl-1cpu"] = lambda t=t: afl([f"{t}-afl"], secs, work, one_cpu=True)
            res = interleave(variants, runs)
            rep.section(f"{target} target: executions per second (higher is better)",
                        "ratio: sandbox-fuzz's median over the baseline's")
            lf = res["libfuzzer"]["exec/s"]
            rep.row("native libFuzzer (in process, no isolation)", "exec/s", lf)
            if afl_here:
                rep.row("native AFL++ forkserver (fork per input)", "exec/s",
                        res["afl"]["exec/s"])
            goal = "10000" if target == "noop" else ""
            rep.row("sandbox-fuzz vs native libFuzzer", "exec/s", res["sandbox"]["exec/s"],
                    base=lf, base_name="libFuzzer")
            if afl_here:
                s = rep.row("sandbox-fuzz vs native AFL++", "exec/s", res["sandbox"]["exec/s"],
                            base=res["afl"]["exec/s"], base_name="AFL++",
                            goal=(">= 10000, > AFL++" if goal else "> AFL++"))
                afl_med = statistics.median(res["afl"]["exec/s"])
                rep.rows[-1]["met"] = s["median"] > afl_med and (
                    not goal or s["median"] >= 10000)
                rep.row("afl-fuzz + sandbox-fuzz --afl vs native AFL++", "exec/s",
                        res["sandbox-afl"]["exec/s"], base=res["afl"]["exec/s"],
                        base_name="AFL++")
            rep.row("sandbox-fuzz --strict-reset vs native libFuzzer", "exec/s",
                    res["strict"]["exec/s"], base=lf, base_name="libFuzzer")
            if afl_here:
                rep.row("one core (taskset -c 0): sandbox-fuzz vs native AFL++", "exec/s",
                        res["sandbox-1cpu"]["exec/s"], base=res["afl-1cpu"]["exec/s"],
                        base_name="AFL++ 1 core")
            for v, name in (("sandbox", "sandbox-fuzz"), ("strict", "--strict-reset"),
                            ("sandbox-1cpu", "one core")):
                r = res[v]
                if "reset us" in r:
                    rep.row(f"{name}: reset per input", "us", r["reset us"], digits=1)
                    rep.row(f"{name}: pages put back per input", "pages", r["pages"],
                            digits=1)
                    rep.row(f"{name}: VM exits per input", "exits", r["exits"], digits=2)
            rep.table()
        if not a.no_throughput:
            threads_before_point(rep, b, fuzz, runs, secs, work)
        limit = 30 if a.quick else a.find_limit
        t = f"{b}/samples/fuzz-planted"
        finders = {"native libFuzzer": lambda s: find_libfuzzer([f"{t}-libfuzzer"], s, limit,
                                                                 work),
                   "sandbox-fuzz": lambda s: find_libfuzzer([fuzz, t], s, limit, work)}
        if have_afl:
            finders["native AFL++"] = lambda s: find_afl([f"{t}-afl"], s, limit, work)
            finders["afl-fuzz + sandbox-fuzz --afl"] = lambda s: find_afl([fuzz, "--afl", t],
                                                                          s, limit, work)
        fruns = 1 if a.quick else a.find_runs
        times = {name: [fn(seed) for seed in range(1, fruns + 1)] for name, fn in
                 finders.items()}
        rep.section("Time to find the planted bug (lower is better; inf: not within "
                    f"{limit} s)", "ratio: over the same engine run natively")
        rep.row("native libFuzzer", "s", times["native libFuzzer"], digits=2)
        rep.row("sandbox-fuzz vs native libFuzzer", "s", times["sandbox-fuzz"],
                base=times["native libFuzzer"], base_name="libFuzzer", digits=2)
        if have_afl:
            rep.row("native AFL++", "s", times["native AFL++"], digits=2)
            rep.row("afl-fuzz + sandbox-fuzz --afl vs native AFL++", "s",
                    times["afl-fuzz + sandbox-fuzz --afl"], base=times["native AFL++"],
                    base_name="AFL++", digits=2)
        rep.table()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    entry(main, "fuzz.py")
