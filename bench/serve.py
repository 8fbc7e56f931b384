#!/usr/bin/env python3
"""sandbox-serve against the classic ways of serving a static CGI handler, in one run.

    python3 bench/serve.py [--build DIR] [--runs N] [--seconds S] [--quick]

Two handlers from samples/: serve_hello (answers at once) and serve_warm (a ~50-100 ms
initialisation: a sieve and a prime table, then one answer), and a third when Go is built:
gowork hello (a static Go program: the runtime's threads, timers and netpoller start before
its first read of stdin, so --warm snapshots them all). Each is served, on loopback, by
  - busybox httpd, CGI: fork+exec of the static handler per request, no isolation (baseline);
  - busybox httpd running a CGI wrapper script that execs bwrap --unshare-all ... handler;
  - sandbox-serve, CGI mode (a reset to the snapshot at the entry point per request);
  - sandbox-serve --warm (a reset to the snapshot at the first read of stdin);
and loaded with wrk at twice the pool's size in connections (--instances 2: -c 4, -t 2) for
--seconds per run, --runs rounds interleaved (A B C D, A B C D, ...). Figures: throughput and
wrk's p50/p99 latency, as medians over the rounds, with ratios to native CGI measured in the
same round. For sandbox-serve, the per-request cost breakdown comes from its /-/metrics
(reset time, pages put back, VM exits, copy in/out), as deltas over the wrk run.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BenchError, Report, summary  # noqa: E402

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


_given = set()


def free_port():
    """A port free now and not handed out before in this run (two calls in a row may get the
    same port from the kernel)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p not in _given:
            _given.add(p)
            return p


def wait_port(port, proc, what, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {port}")


def wrk(url, seconds, conns, threads, keepalive):
    p = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
                        "--timeout", "10s", "--latency", url], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"wrk {url}: {p.stderr.strip()[-300:]}")
    out = p.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    if not rps or "50" not in lat or "99" not in lat:
        raise BenchError(f"wrk output not understood:\n{out}")

    def ms(v):
        m = re.match(r"([\d.]+)(\w+)", v)
        return float(m[1]) * UNIT[m[2]]
    connect, read, write, timeout = map(int, errs.groups()) if errs else (0, 0, 0, 0)
    # busybox httpd ends every response by closing the connection (no Content-Length, no
    # keep-alive), which wrk counts as a read error: those are complete responses.
    return {"rps": float(rps[1]), "p50": ms(lat["50"]), "p99": ms(lat["99"]),
            "errors": (int(bad[1]) if bad else 0) + connect + write + timeout +
                      (read if keepalive else 0)}


def metrics(aport):
    text = urllib.request.urlopen(f"http://127.0.0.1:{aport}/-/metrics", timeout=5).read()
    out = {}
    for line in text.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


class Server:
    """One server process for one variant: start(), url, stop()."""

    def __init__(self, kind, build, handler, root):
        self.kind, self.build, self.handler, self.root = kind, build, handler, root
        self.proc, self.aport = None, None

    def start(self):
        port = free_port()
        name = os.path.basename(self.handler)
        if self.kind in ("native", "bwrap"):
            d = os.path.join(self.root, self.kind + "-" + name)
            os.makedirs(os.path.join(d, "cgi-bin"), exist_ok=True)
            target = os.path.join(d, "cgi-bin", "h")
            if self.kind == "native":
                shutil.copy(self.handler, target)
            else:
                with open(target, "w") as f:
                    f.write("#!/bin/sh\nexec bwrap --unshare-all --die-with-parent "
                            f"--ro-bind {self.handler} /handler --dev /dev --proc /proc "
                            "/handler\n")
            os.chmod(target, 0o755)
            cmd = ["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", d]
            self.url = f"http://127.0.0.1:{port}/cgi-bin/h?n=1000"
        else:
            self.aport = free_port()
            cmd = [os.path.join(self.build, "sandbox-serve"), "--listen", f"127.0.0.1:{port}",
                   "--admin", f"127.0.0.1:{self.aport}", "--instances", "2",
                   "--access-log", "/dev/null", "--timeout", "10s"]
            if self.kind == "warm":
                cmd.append("--warm")
            cmd.append(self.handler)
            if os.path.basename(self.handler) == "gowork":
                cmd.append("hello")  # natively, GATEWAY_INTERFACE picks it
            self.url = f"http://127.0.0.1:{port}/?n=1000"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(port, self.proc, " ".join(cmd[:2]))
        # One request first: the answer must be right before it is timed.
        body = urllib.request.urlopen(self.url, timeout=30).read().decode()
        if "hello" not in body and "prime" not in body:  # "hello from go" too
            raise BenchError(f"{self.kind}: unexpected answer {body[:100]!r}")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def breakdown(m0, m1):
    """Per request, from two /-/metrics scrapes."""
    def d(k):
        return m1.get(k, 0) - m0.get(k, 0)
    runs = d("sandbox_serve_runs_total") or 1
    return {"reset_us": d("sandbox_serve_reset_seconds_total") * 1e6 / runs,
            "pages": d("sandbox_serve_reset_dirty_pages_sum") / runs,
            "exits": d("sandbox_serve_vm_exits_total") / runs,
            "run_us": d("sandbox_serve_run_seconds_total") * 1e6 / runs,
            "copy_in_us": d("sandbox_serve_copy_in_seconds_total") * 1e6 / runs,
            "copy_out_us": d("sandbox_serve_copy_out_seconds_total") * 1e6 / runs,
            "slow": d("sandbox_serve_slow_resets_total") / runs,
            "runs": runs}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Benchmark sandbox-serve against CGI servers.")
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per run (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s")
    a = ap.parse_args()
    runs, secs = (1, 2) if a.quick else (max(a.runs, 1), min(max(a.seconds, 1), 10))
    build = os.path.abspath(a.build)
    handlers = {"hello": os.path.join(build, "samples", "serve_hello-glibc"),
                "slow-init": os.path.join(build, "samples", "serve_warm-glibc")}
    need = [os.path.join(build, "sandbox-serve"), *handlers.values()]
    gowork = os.path.join(build, "samples", "gowork")
    if os.access(gowork, os.X_OK):
        handlers["go-hello"] = gowork
    missing = [p for p in need if not os.access(p, os.X_OK)]
    for tool in ("wrk", "busybox"):
        if not shutil.which(tool):
            missing.append(tool)
    if missing:
        sys.exit("bench/serve.py: missing: " + ", ".join(missing))
    kinds = ["native", "bwrap", "cgi", "warm"]
    bwrap_ok = shutil.which("bwrap") and subprocess.run(
        ["bwrap", "--unshare-all", "--ro-bind", handlers["hello"], "/h", "/h"],
        capture_output=True, env={"GATEWAY_INTERFACE": "CGI/1.1"}).returncode == 0
    if not bwrap_ok:
        kinds.remove("bwrap")
    names = {"native": "busybox httpd CGI (native)", "bwrap": "busybox httpd CGI + bwrap",
             "cgi": "sandbox-serve CGI", "warm": "sandbox-serve --warm"}
    print(f"sandbox-serve benchmark: {build}\n{time.strftime('%Y-%m-%d %H:%M:%S')}, "
          f"{os.cpu_count()} CPUs, KVM: "
          f"{'PVM' if os.path.exists('/sys/module/kvm_pvm') else 'hardware'}, {runs} rounds "
          f"of wrk -t2 -c4 -d{secs}s, sandbox-serve --instances 2"
          f"{'' if bwrap_ok else '; bwrap does not run here: skipped'}")
    rep = Report()
    root = tempfile.mkdtemp(prefix="sbx-serve-bench.")
    costs = {}
    try:
        for hname, handler in handlers.items():
            res = {k: {"rps": [], "p50": [], "p99": [], "errors": []} for k in kinds}
            for _ in range(runs):
                for k in kinds:
                    s = Server(k, build, handler, root)
                    try:
                        s.start()
                        m0 = metrics(s.aport) if s.aport else None
                        w = wrk(s.url, secs, 4, 2, k in ("cgi", "warm"))
                        if s.aport:
                            costs.setdefault((hname, k), []).append(
                                breakdown(m0, metrics(s.aport)))
                    finally:
                        s.stop()
                    for f in w:
                        res[k][f].append(w[f])
            rep.section(f"{hname}: wrk on loopback, 4 connections",
                        "ratio: to busybox httpd CGI (native fork+exec) in the same rounds")
            base = res["native"]
            for k in kinds:
                r = res[k]
                goal, met = "", None
                if k == "cgi":
                    goal = ">= native req/s"
                    met = summary(r["rps"])["median"] >= summary(base["rps"])["median"]
                if k == "warm" and hname == "hello":
                    goal = ">= 5000 req/s"
                    met = summary(r["rps"])["median"] >= 5000
                if k == "warm" and hname == "slow-init":
                    goal = ">= 50x native"
                    met = summary(r["rps"])["median"] >= 50 * summary(base["rps"])["median"]
                if k == "warm" and hname == "go-hello":
                    # Its threads put back per request must cost less than the runtime's
                    # start-up that CGI mode pays.
                    goal = ">= sandbox-serve CGI"
                    met = (summary(r["rps"])["median"] >=
                           summary(res["cgi"]["rps"])["median"])
                rep.row(f"{names[k]} throughput", "req/s", r["rps"],
                        None if k == "native" else base["rps"], "native", goal, met)
                rep.row(f"{names[k]} p50", "ms", r["p50"],
                        None if k == "native" else base["p50"], "native", digits=3)
                goal, met = "", None
                if k == "warm" and hname == "hello":
                    goal = "<= 2 ms"
                    met = summary(r["p99"])["median"] <= 2
                rep.row(f"{names[k]} p99", "ms", r["p99"],
                        None if k == "native" else base["p99"], "native", goal, met, digits=3)
                if sum(r["errors"]):
                    rep.row(f"{names[k]} failed responses", "count", r["errors"])
            rep.table()
        print("\n== per-request cost in sandbox-serve (from /-/metrics, mean per run, median "
              "over rounds)")
        print("   handler    mode   run us  reset us  pages  VM exits  slow resets  "
              "copy-in us  copy-out us")
        for (hname, k), xs in costs.items():
            def med(f):
                return summary([x[f] for x in xs])["median"]
            print(f"   {hname:<10} {k:<5} {med('run_us'):7.1f} {med('reset_us'):9.1f} "
                  f"{med('pages'):6.1f} {med('exits'):9.2f} {med('slow'):12.2f} "
                  f"{med('copy_in_us'):11.2f} {med('copy_out_us'):12.2f}")
    except BenchError as e:
        sys.exit(f"bench/serve.py: {e}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
