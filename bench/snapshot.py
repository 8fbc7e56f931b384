#!/usr/bin/env python3
"""Snapshots, restore, reset and live migration: figures and their baselines, in one run.

    python3 bench/snapshot.py [--build DIR] [--runs N] [--quick] [--dir DIR]

1. Snapshot write and restore of a heartbeat guest with 16, 64 and 256 MiB touched (p50/p90/p99
   over --runs, via build/bench/snap_bench), against writing the same bytes to a fresh file with
   plain write(2) (the floor any checkpointer pays), against a cold start of the same program,
   and against CRIU dump/restore of it running natively where CRIU runs.
2. Snapshots of running programs by kind: the single-threaded heartbeat, a 5-thread program
   parked at barriers (threads beat 4) and a Go program (the runtime's threads, epoll and pipe):
   the pause, the write and a restore to the end, as ratios to the heartbeat's; CRIU dump of the
   threaded program natively where CRIU runs.
3. Reset latency against the number of pages the run dirtied (1 .. 10000).
4. Live migration of a heartbeat guest with 256 MiB touched, dirtying 1, 10 and 100 MB/s, on
   loopback: total time, rounds, bytes, downtime as the monitors measure it (source's last exit
   to destination's first KVM_RUN) and as the guest sees it (largest gap between 1 ms beats),
   against the gap the guest sees without a migration and with a cold one (snapshot, restore).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BenchError, Report, entry, summary  # noqa: E402

MIGRATED_RE = re.compile(r"downtime ([\d.]+) ms \(([\d.]+) ms paused before READY\), (\d+) rounds, "
                         r"([\d.]+) MiB in (\d+) ms")
GAP_RE = re.compile(r"max-gap-us (\d+)")


def raw_line(f):
    """A line read from f's descriptor without buffering past its newline."""
    b = b""
    while not b.endswith(b"\n"):
        c = os.read(f.fileno(), 1)
        if not c:
            break
        b += c
    return b.decode()


def snap_bench(build, args):
    p = subprocess.run([f"{build}/bench/snap_bench", *map(str, args)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise BenchError(f"snap_bench {' '.join(map(str, args))}: {p.stderr.strip()[-400:]}")
    out = {}
    for line in p.stdout.splitlines():
        name, p50, p90, p99, unit = line.split()
        out[name] = (float(p50), float(p90), float(p99), unit)
    return out


def plain_write_ms(directory, mib, runs):
    """write(2) of mib MiB of non-zero data to a fresh file, then unlink: the floor."""
    buf = os.urandom(1 << 20)
    xs = []
    for _ in range(runs):
        path = os.path.join(directory, "plain.bin")
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for _ in range(mib):
            os.write(fd, buf)
        os.close(fd)
        xs.append((time.perf_counter() - t0) * 1e3)
        os.unlink(path)
    return xs


def cold_start_ms(build, runs):
    xs = []
    for _ in range(runs):
        p = subprocess.run([f"{build}/sandbox-run", "--stats", f"{build}/samples/hello-glibc"],
                           capture_output=True, text=True)
        m = re.search(r"setup ([\d.]+) ms", p.stderr)
        if m:
            xs.append(float(m[1]))
    return xs


def criu_works():
    if not shutil.which("criu"):
        return "criu is not installed"
    p = subprocess.run(["criu", "check"], capture_output=True, text=True)
    if p.returncode != 0:
        errs = [l for l in (p.stdout + p.stderr).splitlines() if "Error" in l]
        return errs[0] if errs else "criu check failed"
    return None


def criu_times(build, mib, runs, directory):
    """criu dump and restore of the heartbeat running natively with mib MiB touched."""
    dumps, restores = [], []
    for _ in range(runs):
        d = tempfile.mkdtemp(dir=directory)
        p = subprocess.Popen([f"{build}/samples/heartbeat-glibc", "100000000", "0", str(mib)],
                             stdout=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.3 + mib / 500)
        t0 = time.perf_counter()
        subprocess.run(["criu", "dump", "-t", str(p.pid), "-D", d, "--shell-job"], check=True,
                       capture_output=True)
        dumps.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        subprocess.run(["criu", "restore", "-D", d, "--shell-job", "-d"], check=True,
                       capture_output=True)
        restores.append((time.perf_counter() - t0) * 1e3)
        subprocess.run(["pkill", "-9", "-f", "heartbeat-glibc 100000000"])
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    return dumps, restores


SNAP_RE = re.compile(r"written in ([\d.]+) ms \(pause ([\d.]+) ms\)")


def program_snapshots(build, argv, ready, runs, directory):
    """Snapshots of a running program that holds its last line until /gate/go exists: runs
    left-running snapshots (pause and write, as sandbox-ctl reports them), then one that stops
    it and a restore of that to the program's end (wall time). Returns (pause, write, restore)
    lists in ms."""
    d = tempfile.mkdtemp(dir=directory)
    gate = os.path.join(d, "gate")
    os.mkdir(gate)
    ctl = os.path.join(d, "c")
    pauses, writes, restores = [], [], []
    try:
        p = subprocess.Popen([f"{build}/sandbox-run", "--control", ctl, "--ro", f"{gate}:/gate",
                              *argv, "/gate/go"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        while True:
            line = p.stdout.readline()
            if not line:
                raise BenchError(f"{' '.join(argv)} ended before {ready!r}")
            if re.match(ready, line):
                break
        snap = os.path.join(d, "s.snap")
        for i in range(runs + 1):
            last = i == runs
            c = subprocess.run([f"{build}/sandbox-ctl", ctl, "snapshot", snap,
                                *([] if last else ["--leave-running"])], capture_output=True,
                               text=True)
            m = SNAP_RE.search(c.stdout)
            if c.returncode != 0 or not m:
                raise BenchError(f"snapshot of {' '.join(argv)}: {c.stdout} {c.stderr}")
            writes.append(float(m[1]))
            pauses.append(float(m[2]))
        p.communicate()
        open(os.path.join(gate, "go"), "w").close()
        for _ in range(max(3, runs // 2)):
            t0 = time.perf_counter()
            r = subprocess.run([f"{build}/sandbox-run", "--restore", snap, "--ro",
                                f"{gate}:/gate"], capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError(f"restore of {' '.join(argv)}: {r.stderr.strip()[-300:]}")
            restores.append((time.perf_counter() - t0) * 1e3)
    finally:
        subprocess.run(["pkill", "-9", "-f", ctl], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    return pauses, writes, restores


def criu_program(argv, runs, directory):
    """criu dump of a program running natively (it holds until its gate: a missing file)."""
    dumps = []
    for _ in range(runs):
        d = tempfile.mkdtemp(dir=directory)
        p = subprocess.Popen([*argv, os.path.join(d, "never")], stdout=subprocess.DEVNULL,
                             start_new_session=True)
        time.sleep(0.5)
        t0 = time.perf_counter()
        r = subprocess.run(["criu", "dump", "-t", str(p.pid), "-D", d, "--shell-job"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            dumps.append((time.perf_counter() - t0) * 1e3)
        p.kill()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    return dumps


def migrate_once(build, rate, touch, count, directory, key, cold=False, none=False):
    """One heartbeat run migrated (or snapshotted and restored: cold, or left alone: none).
    Returns a dict of figures."""
    hb = f"{build}/samples/heartbeat-glibc"
    d = tempfile.mkdtemp(dir=directory)
    ctl, port = os.path.join(d, "ctl"), 20000 + os.getpid() % 20000
    addr = f"tcp:127.0.0.1:{port}"
    src_cmd = [f"{build}/sandbox-run", "--control", ctl, "--migrate-key", key, "--mem", "512M",
               hb, str(count), str(rate), str(touch)]
    try:
        if none:
            p = subprocess.run([f"{build}/sandbox-run", "--mem", "512M", hb, str(count), str(rate),
                                str(touch)], capture_output=True, text=True)
            return {"gap_ms": int(GAP_RE.search(p.stdout)[1]) / 1e3}
        dst = None
        if not cold:
            dst = subprocess.Popen([f"{build}/sandbox-run", "--incoming", addr, "--migrate-key",
                                    key, "--mem", "512M"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        src = subprocess.Popen(src_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Wait for the guest to be past its first touch of the buffer and beating.
        # One byte at a time from the descriptor: a buffered readline may take the next
        # beats too, which communicate() (reading the descriptor) would then never see.
        first = raw_line(src.stdout)
        if not first:
            raise BenchError(f"heartbeat did not start: {src.stderr.read()[-300:]}")
        time.sleep(0.5)
        t0 = time.perf_counter()
        if cold:
            snap = os.path.join(d, "s.snap")
            c = subprocess.run([f"{build}/sandbox-ctl", ctl, "snapshot", snap],
                               capture_output=True, text=True)
            src_out = first + src.communicate()[0]
            r = subprocess.run([f"{build}/sandbox-run", "--restore-lazy", snap, "--mem", "512M"],
                               capture_output=True, text=True)
            out = src_out + r.stdout
            return {"gap_ms": int(GAP_RE.search(out)[1]) / 1e3,
                    "total_ms": (time.perf_counter() - t0) * 1e3}
        c = subprocess.run([f"{build}/sandbox-ctl", ctl, "migrate", addr], capture_output=True,
                           text=True)
        total = (time.perf_counter() - t0) * 1e3
        src_out, src_err = src.communicate()
        dst_out, dst_err = dst.communicate()
        m = MIGRATED_RE.search(c.stdout)
        if c.returncode != 0 or not m:
            raise BenchError(f"migration failed: {c.stdout.strip()} {dst_err.strip()[-300:]}")
        out = first + src_out + dst_out
        beats = [line for line in out.splitlines() if not line.startswith("checksum")]
        if beats != [str(i) for i in range(1, count + 1)]:
            bad = next((i for i, b in enumerate(beats) if b != str(i + 1)), len(beats))
            raise BenchError(f"the heartbeat lost or repeated a beat across the migration: "
                             f"line {bad + 1} is {beats[bad:bad + 3]!r} of {len(beats)}")
        return {"downtime_ms": float(m[1]), "paused_before_ready_ms": float(m[2]),
                "rounds": int(m[3]), "mib": float(m[4]), "total_ms": total,
                "gap_ms": int(GAP_RE.search(out)[1]) / 1e3}
    finally:
        subprocess.run(["pkill", "-9", "-f", ctl], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="3 runs, small sizes: a smoke test")
    ap.add_argument("--dir", default="/tmp", help="where snapshot files go (default /tmp)")
    a = ap.parse_args()
    build, runs = os.path.abspath(a.build), (3 if a.quick else a.runs)
    sizes = [16] if a.quick else [16, 64, 256]
    rep = Report()
    print(f"snapshot benchmark: {runs} runs, snapshots in {a.dir}, "
          f"{os.cpu_count()} CPUs, {os.uname().release}")

    rep.section("Snapshot write and restore (heartbeat guest, N MiB touched)",
                "write: all state + RAM, before fsync (fsync separately); restore: to the first "
                "KVM_RUN, eager (RAM read and verified) and lazy (RAM mapped MAP_PRIVATE)")
    cold = cold_start_ms(build, 10)
    criu_err = criu_works()
    for mib in sizes:
        r = snap_bench(build, ["write-restore", f"{build}/samples/heartbeat-glibc", mib, runs,
                               a.dir])
        plain = plain_write_ms(a.dir, mib, max(3, runs // 5))
        w = r[f"write_{mib}M"]
        rep.row(f"write {mib} MiB", "ms", [w[0]], plain, "plain write(2)",
                goal="<100 ms at 256" if mib == 256 else "", met=(w[0] < 100) if mib == 256 else None)
        print(f"   write {mib} MiB p50/p90/p99 {w[0]:.2f}/{w[1]:.2f}/{w[2]:.2f} ms; "
              f"fsync p50 {r[f'fsync_{mib}M'][0]:.2f} ms; plain write(2) median "
              f"{summary(plain)['median']:.2f} ms")
        for key, label in (("restore_first_insn", "restore eager, to first insn"),
                           ("restore_lazy_first_insn", "restore lazy, to first insn"),
                           ("restore_lazy_first_call", "restore lazy, to first hypercall")):
            v = r[f"{key}_{mib}M"]
            lazy_insn = key == "restore_lazy_first_insn"
            rep.row(f"{label} {mib} MiB", "ms", [v[0]], cold, "cold start",
                    goal="<2 ms" if lazy_insn else "", met=(v[0] < 2) if lazy_insn else None)
            print(f"   {label} {mib} MiB p50/p90/p99 {v[0]:.2f}/{v[1]:.2f}/{v[2]:.2f} ms")
        if criu_err is None:
            dumps, restores = criu_times(build, mib, max(3, runs // 5), a.dir)
            rep.row(f"CRIU dump {mib} MiB (native)", "ms", dumps)
            rep.row(f"CRIU restore {mib} MiB (native)", "ms", restores)
    if criu_err:
        print(f"   CRIU: not runnable here: {criu_err}")
    rep.table()

    rep.section("Snapshots of running programs by kind: one thread, five threads, Go",
                "pause: to every vCPU stopped; write: the whole file (left running); restore: "
                "wall time of sandbox-run --restore to the program's end (its last beat)")
    # Each holds before its last beat: the snapshots find it waiting there, and a restore
    # runs only that beat.
    progs = [("heartbeat (1 thread)", [f"{build}/samples/heartbeat-glibc", "100", "0", "1",
                                      "-"], "^99$"),
             ("threads beat 4 (5 threads)", [f"{build}/samples/threads-glibc", "beat", "4",
                                            "100"], "^99 "),
             ("Go beat (runtime threads, epoll, pipe)", [f"{build}/samples/gowork", "beat",
                                                        "100"], "^98$")]
    base = None
    for name, argv, ready in progs:
        if not os.access(argv[0], os.X_OK):
            print(f"   {name}: {argv[0]} was not built")
            continue
        pa, wr, rs = program_snapshots(build, argv, ready, max(3, runs // 3), a.dir)
        rep.row(f"{name}: pause", "ms", pa, base[0] if base else None,
                "1 thread" if base else "")
        rep.row(f"{name}: write", "ms", wr, base[1] if base else None,
                "1 thread" if base else "")
        rep.row(f"{name}: restore to end", "ms", rs, base[2] if base else None,
                "1 thread" if base else "")
        base = base or (pa, wr, rs)
    if criu_err is None:
        dumps = criu_program([f"{build}/samples/threads-glibc", "beat", "4", "100"],
                             max(3, runs // 5), a.dir)
        if dumps:
            rep.row("CRIU dump, threads beat 4 (native)", "ms", dumps)
    rep.table()

    rep.section("Reset to a snapshot against pages dirtied (dirty guest)",
                "sbx_reset: dirty log + monitor writes, pages put back, vCPU, handle table")
    pages = [1, 10, 100] if a.quick else [1, 10, 100, 1000, 10000]
    r = snap_bench(build, ["reset", f"{build}/bench/guest/dirty-glibc", max(runs, 100) if not
                           a.quick else runs, *pages])
    for n in pages:
        v = r[f"reset_{n}_pages"]
        rep.row(f"reset after {n} dirtied pages", "us", [v[0]],
                goal="<50 us" if n == 100 else "", met=(v[0] < 50) if n == 100 else None)
        print(f"   {n} pages: p50/p90/p99 {v[0]:.1f}/{v[1]:.1f}/{v[2]:.1f} us, "
              f"{r[f'reset_{n}_pages_put_back'][0]:.0f} pages put back")
    rep.table()

    rep.section("Live migration on loopback (heartbeat, 256 MiB touched, 1 ms beats)",
                "downtime: source's last vCPU exit to destination's first KVM_RUN; gap: the "
                "largest gap between beats the guest saw (CLOCK_REALTIME)")
    d = tempfile.mkdtemp(dir=a.dir)
    key = os.path.join(d, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    touch = 32 if a.quick else 256
    count = 3000
    mruns = 3 if a.quick else max(5, runs // 6)
    try:
        for rate in ([10] if a.quick else [1, 10, 100]):
            base = [migrate_once(build, rate, touch, count, a.dir, key, none=True)["gap_ms"]
                    for _ in range(mruns)]
            coldm = [migrate_once(build, rate, touch, count, a.dir, key, cold=True)
                     for _ in range(mruns)]
            live = [migrate_once(build, rate, touch, count, a.dir, key) for _ in range(mruns)]
            col = {k: [x[k] for x in live] for k in live[0]}
            rep.row(f"{rate} MB/s downtime (monitors)", "ms", col["downtime_ms"],
                    goal="<10 ms at 10 MB/s" if rate == 10 else "",
                    met=(summary(col["downtime_ms"])["median"] < 10) if rate == 10 else None)
            rep.row(f"{rate} MB/s largest beat gap", "ms", col["gap_ms"], base, "no migration")
            rep.row(f"{rate} MB/s cold (snapshot+restore) gap", "ms",
                    [x["gap_ms"] for x in coldm], col["gap_ms"], "live")
            rep.row(f"{rate} MB/s total time", "ms", col["total_ms"])
            rep.row(f"{rate} MB/s rounds", "", col["rounds"], digits=0)
            rep.row(f"{rate} MB/s sent", "MiB", col["mib"], digits=1)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    rep.table()


if __name__ == "__main__":
    entry(main, "snapshot.py")
