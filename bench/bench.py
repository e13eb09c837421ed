#!/usr/bin/python3
# bench.py: runs the same workloads against cetcd and etcd side by side (alternating order,
# fresh data dirs on the same disk, fsync on), parses etcd's `benchmark` output and prints one
# table with medians, min/max and the cetcd:etcd ratio; writes it into RESULTS.md between its own
# markers (other scripts' sections of that file are kept byte for byte) with an SVG chart of the
# ratios beside it. Called by bench/run.sh (which installs the tools first); configuration is by
# environment.
import datetime
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
CACHE = os.environ.get("CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cetcd-bench")
BENCHMARK = os.environ.get("BENCHMARK_BIN", os.path.join(CACHE, "benchmark"))
PHYS = os.path.join(CACHE, "physlimits")
CETCD = os.environ.get("CETCD_BIN", os.path.join(REPO_DIR, "build", "cetcd"))
ETCD = os.environ.get("ETCD_BIN", shutil.which("etcd") or "/usr/bin/etcd")
ETCDCTL = os.environ.get("ETCDCTL_BIN", shutil.which("etcdctl") or "/usr/bin/etcdctl")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS", "1" if QUICK else "3"))
CTL_N = int(os.environ.get("BENCH_ETCDCTL_N", "50" if QUICK else "1000"))
CTL_RUNS = int(os.environ.get("BENCH_ETCDCTL_RUNS", "1"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "60" if QUICK else "120"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]  # workload name filter
DATA_ROOT = os.environ.get("BENCH_DATA_DIR", os.path.join(CACHE, "data"))
RESULTS = os.environ.get("BENCH_RESULTS") or (
    os.path.join(CACHE, "RESULTS-quick.md") if QUICK else os.path.join(BENCH_DIR, "RESULTS.md"))
SERVERS = ["cetcd", "etcd"]
CETCD_DESC = "not built"


def q(full, quick):
    return quick if QUICK else full


BIG_PUTS = q(100000, 10000)

# (name, benchmark args, total) — the benchmark tool's own flags; --endpoints is added per server
WORKLOADS = [
    ("put 1/1", ["put", "--clients", "1", "--conns", "1", "--val-size", "256",
                 "--key-space-size", "100000", "--total", str(q(5000, 300))]),
    ("put 64/8", ["put", "--clients", "64", "--conns", "8", "--val-size", "256",
                  "--key-space-size", "100000", "--total", str(q(30000, 2000))]),
    ("put 256/16", ["put", "--clients", "256", "--conns", "16", "--val-size", "256",
                    "--key-space-size", "100000", "--total", str(q(40000, 3000))]),
    ("range l 1/1", ["range", "bench-range-key", "--consistency", "l", "--clients", "1",
                     "--conns", "1", "--total", str(q(10000, 500))]),
    ("range l 64/8", ["range", "bench-range-key", "--consistency", "l", "--clients", "64",
                      "--conns", "8", "--total", str(q(30000, 3000))]),
    ("range s 1/1", ["range", "bench-range-key", "--consistency", "s", "--clients", "1",
                     "--conns", "1", "--total", str(q(10000, 500))]),
    ("range s 64/8", ["range", "bench-range-key", "--consistency", "s", "--clients", "64",
                      "--conns", "8", "--total", str(q(30000, 3000))]),
    ("txn-put 64/8", ["txn-put", "--clients", "64", "--conns", "8", "--val-size", "256",
                      "--key-space-size", "100000", "--total", str(q(20000, 2000))]),
    # 1000 watchers on one key (key-space-size 1): each put fans out to 1000 events
    ("watch 1000 watchers (events/s)", ["watch", "--clients", "8", "--conns", "2", "--streams", "10",
                                        "--watch-per-stream", "100", "--watched-key-total", "1",
                                        "--put-total", str(q(500, 100)), "--put-rate", "5000"]),
    ("watch-latency (mean)", ["watch-latency", "--clients", "10", "--conns", "2", "--put-rate", "500",
                       "--total", str(q(2000, 200))]),
    ("lease-keepalive 16/4", ["lease-keepalive", "--clients", "16", "--conns", "4",
                              "--total", str(q(30000, 2000))]),
]
BIG_PUT = ("put %dk 64/8 (for RSS)" % (BIG_PUTS // 1000),
           ["put", "--clients", "64", "--conns", "8", "--val-size", "256",
            "--key-space-size", str(BIG_PUTS), "--sequential-keys", "--total", str(BIG_PUTS)])


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in (2379, 2380):
            return p


def run(cmd, timeout=TIMEOUT, **kw):
    """Runs cmd in its own process group; returns (rc, output). rc None means timeout."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, out.decode("utf-8", "replace")
    except BaseException:  # interrupted: leave no client behind
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise


class Server:
    def __init__(self, name, binary):
        self.name, self.binary = name, binary
        self.proc = None
        self.port = None
        self.dir = None
        self.log = None
        self.broken = None  # reason this server can't be benchmarked at all
        self.etcd_flags = None  # needs etcd's peer flags (etcd itself, or etcd posing as cetcd)

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.port

    def is_etcd(self):
        if self.etcd_flags is None:
            try:
                self.etcd_flags = os.path.samefile(self.binary, ETCD)
            except OSError:
                self.etcd_flags = False
        return self.etcd_flags

    def start(self):
        """Starts on a fresh data dir; returns (seconds to TCP listen, seconds to healthy)."""
        if not os.access(self.binary, os.X_OK):
            self.broken = "not built (%s missing)" % self.binary
            raise RuntimeError(self.broken)
        os.makedirs(DATA_ROOT, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir=DATA_ROOT)
        self.port = free_port()
        url = "http://127.0.0.1:%d" % self.port
        cmd = [self.binary, "--data-dir", os.path.join(self.dir, "data"),
               "--listen-client-urls", url, "--advertise-client-urls", url]
        if self.is_etcd():
            peer = "http://127.0.0.1:%d" % free_port()
            cmd += ["--name", "bench", "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer, "--initial-cluster", "bench=" + peer]
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        t_listen = None
        deadline = t0 + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("exited rc=%s at start: %s" % (self.proc.returncode, self.tail()))
            if t_listen is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.05).close()
                    t_listen = time.monotonic() - t0
                except OSError:
                    time.sleep(0.001)
                    continue
            rc, _ = run([ETCDCTL, "--endpoints", self.endpoint, "--dial-timeout=1s",
                         "--command-timeout=1s", "endpoint", "health"], timeout=5)
            if rc == 0:
                return t_listen, time.monotonic() - t0
            time.sleep(0.005)
        self.stop()
        raise RuntimeError("not healthy after 30s: " + self.tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n=3):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                lines = f.read().decode("utf-8", "replace").strip().splitlines()
            return " | ".join(lines[-n:])[-300:]
        except OSError:
            return ""

    def rss_kib(self, field="VmRSS"):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        if self.dir and not os.environ.get("BENCH_KEEP_DATA"):
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


# ---------------------------------------------------------------- benchmark output parsing
NUM = r"([0-9.]+(?:[eE][-+]?[0-9]+)?)"  # --precise prints Go's %v floats, e.g. 4.9e-08


def parse_benchmark(out):
    """Returns dict with rps, avg, p50, p99 (seconds) from the last Summary in out, or None."""
    out = out.replace("\r", "\n")
    i = out.rfind("Summary:")
    if i < 0:
        return None
    tail = out[i:]
    r = {}
    for key, pat in (("total", r"Total:\s*" + NUM), ("slowest", r"Slowest:\s*" + NUM),
                     ("fastest", r"Fastest:\s*" + NUM), ("avg", r"Average:\s*" + NUM),
                     ("stddev", r"Stddev:\s*" + NUM), ("rps", r"Requests/sec:\s*" + NUM)):
        m = re.search(pat, tail)
        if m:
            r[key] = float(m.group(1))
    for m in re.finditer(r"^\s*([\d.]+)% in " + NUM + " secs", tail, re.M):
        r["p" + m.group(1)] = float(m.group(2))
    return r if "rps" in r else None


def classify_error(out, rc):
    if re.search(r"Unimplemented|UNIMPLEMENTED|unknown service|unknown method", out):
        return "n/a (UNIMPLEMENTED)"
    if rc is None:
        return "timeout (>%ds)" % TIMEOUT
    m = re.search(r"Error distribution:\s*\n\s*\[(\d+)\]\s*(.*)", out)
    if m:
        return "error: %s x%s" % (m.group(2).strip()[:80], m.group(1))
    lines = [l for l in out.strip().splitlines() if l.strip() and "Bom" not in l]
    return "error rc=%s: %s" % (rc, (lines[-1] if lines else "")[:100])


def watch_probe(srv):
    """None if a watch delivers a put's event, else why not. The benchmark tool treats a watch
    stream the server refuses as a closed channel and reports nonsense, so ask etcdctl first."""
    w = subprocess.Popen([ETCDCTL, "--endpoints", srv.endpoint, "watch", "bench-watch-probe"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    time.sleep(0.5)
    run([ETCDCTL, "--endpoints", srv.endpoint, "put", "bench-watch-probe", "x"], timeout=10)
    try:
        out, _ = w.communicate(timeout=1.5)
    except subprocess.TimeoutExpired:
        os.killpg(w.pid, signal.SIGKILL)
        out, _ = w.communicate()
    out = out.decode("utf-8", "replace")
    if "PUT" in out and "bench-watch-probe" in out:
        return None
    if re.search(r"Unimplemented|UNIMPLEMENTED", out):
        return "n/a (UNIMPLEMENTED)"
    return "error: watch delivered no event: " + " ".join(out.split())[:100]


def cpu_seconds(srv):
    """User + system CPU the server process has used so far (clock ticks from /proc)."""
    try:
        with open("/proc/%d/stat" % srv.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return None


def bench_workload(srv, args):
    if args[0].startswith("watch"):
        err = watch_probe(srv)
        if err:
            return {"error": err}
    cpu0 = cpu_seconds(srv)
    rc, out = run([BENCHMARK, "--endpoints", srv.endpoint, "--precise"] + args)
    cpu1 = cpu_seconds(srv)
    if args[0] == "watch":  # only the second report counts, the first times Watch() calls
        i = out.find("Watch events received summary:")
        out = out[i:] if i >= 0 else ""
    res = parse_benchmark(out) if rc == 0 else None
    if res is not None and "Error distribution:" in out:
        res = None
    if res is None:
        return {"error": classify_error(out, rc)}
    ops = res.get("rps", 0) * res.get("total", 0)
    if cpu0 is not None and cpu1 is not None and ops > 0:
        res["cpu_us"] = (cpu1 - cpu0) * 1e6 / ops
    if args[0] == "watch-latency":  # rate-limited: its throughput says nothing, its latency does
        res.pop("rps")
        res["ms"] = res["avg"] * 1000
    return res


def etcdctl_micro(srv, n):
    """Sequential etcdctl processes: n put, n get, n//10 get --prefix, n del. Returns ms/op."""
    base = [ETCDCTL, "--endpoints", srv.endpoint]
    val = "v" * 256
    res = {}
    for op, count, mk in (
            ("put", n, lambda i: ["put", "ctl-%06d" % i, val]),
            ("get", n, lambda i: ["get", "ctl-%06d" % i]),
            ("get --prefix", max(1, n // 10), lambda i: ["get", "--prefix", "ctl-"]),
            ("del", n, lambda i: ["del", "ctl-%06d" % i])):
        t0 = time.monotonic()
        for i in range(count):
            p = subprocess.run(base + mk(i), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, timeout=30)
            if p.returncode != 0:
                err = p.stderr.decode("utf-8", "replace").strip().splitlines()
                msg = err[-1] if err else "rc=%d" % p.returncode
                res[op] = {"error": ("n/a (UNIMPLEMENTED)" if "nimplemented" in msg
                                     else "error: " + msg[:100])}
                break
        else:
            res[op] = {"ms": (time.monotonic() - t0) / count * 1000}
    return res


def physlimits():
    out = {}
    os.makedirs(DATA_ROOT, exist_ok=True)
    for cmd in ([PHYS, "fsync", DATA_ROOT, str(q(2000, 300))], [PHYS, "tcp", str(q(20000, 2000))]):
        rc, text = run(cmd)
        for line in text.splitlines():
            parts = line.split()
            if len(parts) > 1 and all("=" in p for p in parts[1:]):
                out[parts[0]] = {k: float(v) for k, v in (p.split("=") for p in parts[1:])}
        if rc != 0:
            log("physlimits %s failed: %s" % (cmd[1], text.strip()[-200:]))
    return out


# ---------------------------------------------------------------- the run
def main():
    for tool in (BENCHMARK, ETCDCTL, ETCD):
        if not os.access(tool, os.X_OK):
            sys.exit("bench.py: %s is missing; run bench/run.sh" % tool)
    servers = {"cetcd": Server("cetcd", CETCD), "etcd": Server("etcd", ETCD)}
    # benchmark a snapshot: build/cetcd may be relinked by someone else while this runs
    global CETCD_DESC
    cet = servers["cetcd"]
    if os.access(CETCD, os.X_OK):
        cet.is_etcd()
        snap = os.path.join(CACHE, "cetcd-under-test")
        shutil.copy2(CETCD, snap + ".tmp")
        os.replace(snap + ".tmp", snap)
        cet.binary = snap
        h = hashlib.sha256(open(snap, "rb").read()).hexdigest()[:12]
        CETCD_DESC = "%s built %s, sha256 %s (benchmarked from a copy taken at the start)" % (
            os.path.relpath(CETCD, REPO_DIR) if CETCD.startswith(REPO_DIR) else CETCD,
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.path.getmtime(CETCD))), h)
    # samples[row][server] = list of dicts (one per run) ; rows keep insertion order
    samples = {}
    notes = []

    def add(row, srv, val):
        samples.setdefault(row, {s: [] for s in SERVERS})[srv].append(val)

    def wanted(name):
        return not ONLY or any(o in name for o in ONLY)

    phys = []
    t_begin = time.monotonic()
    # a TERM (make interrupted, CI timeout) must still stop the servers this script started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench.py: terminated"))
    try:
        run_all(servers, samples, notes, phys, add, wanted)
    finally:
        for srv in servers.values():
            srv.stop()
    elapsed = time.monotonic() - t_begin
    finish(servers, samples, notes, phys, add, elapsed)


def run_all(servers, samples, notes, phys, add, wanted):
    for r in range(RUNS):
        order = SERVERS if r % 2 == 0 else SERVERS[::-1]
        log("run %d/%d, order %s" % (r + 1, RUNS, " then ".join(order)))
        phys.append(physlimits())
        up = {}
        for name in order:
            srv = servers[name]
            try:
                t_listen, t_health = srv.start()
                up[name] = True
                add("startup: exec to TCP listen", name, {"ms": t_listen * 1000})
                add("startup: exec to first healthy etcdctl", name, {"ms": t_health * 1000})
            except Exception as e:  # noqa: BLE001 - a server that won't start is a table row
                up[name] = False
                msg = srv.broken or "did not start: %s" % e
                log("%s: %s" % (name, msg))
                if not srv.broken:
                    notes.append("run %d: %s %s" % (r + 1, name, msg))
                add("startup: exec to TCP listen", name, {"error": msg})
                add("startup: exec to first healthy etcdctl", name, {"error": msg})
                srv.stop()
        time.sleep(1)
        for name in order:
            if up[name] and servers[name].rss_kib() is not None:
                add("RSS idle", name, {"mib": servers[name].rss_kib() / 1024})

        def each_server(fn):
            """Calls fn(srv) for the live servers, alternating the order by run."""
            for name in order:
                srv = servers[name]
                if not up[name]:
                    yield name, {"error": servers[name].broken or "server did not start"}
                    continue
                if not srv.alive():
                    msg = "server exited rc=%s: %s" % (srv.proc.returncode, srv.tail(2))
                    notes.append("run %d: %s %s; restarted on a fresh data dir" % (r + 1, name, msg))
                    log("%s: %s" % (name, msg))
                    srv.stop()
                    try:
                        srv.start()
                    except Exception as e:  # noqa: BLE001
                        up[name] = False
                        yield name, {"error": "server down: %s" % e}
                        continue
                res = fn(srv)
                if isinstance(res, dict) and str(res.get("error", "")).startswith("timeout"):
                    rc, _ = run([ETCDCTL, "--endpoints", srv.endpoint, "--command-timeout=3s",
                                 "endpoint", "health"], timeout=10)
                    if rc != 0:
                        notes.append("run %d: %s unresponsive after a timeout; killed, restarted on a "
                                     "fresh data dir" % (r + 1, name))
                        srv.stop()
                        try:
                            srv.start()
                        except Exception as e:  # noqa: BLE001
                            up[name] = False
                            log("%s: restart failed: %s" % (name, e))
                yield name, res

        # 100k sequential-key puts first, then RSS: the same data set for both servers
        if wanted(BIG_PUT[0]) or wanted("RSS"):
            for name, res in each_server(lambda s: bench_workload(s, BIG_PUT[1])):
                add(BIG_PUT[0], name, res)
                srv = servers[name]
                if "error" not in res and srv.alive() and srv.rss_kib() is not None:
                    add("RSS after %dk puts" % (BIG_PUTS // 1000), name,
                        {"mib": srv.rss_kib() / 1024})
                log("%-24s %-5s %s" % (BIG_PUT[0], name, fmt_one(res)))
        # the key the range workloads read
        for name, res in each_server(lambda s: {"rc": run(
                [ETCDCTL, "--endpoints", s.endpoint, "put", "bench-range-key", "r" * 256],
                timeout=10)[0]}):
            pass
        for wname, args in WORKLOADS:
            if not wanted(wname):
                continue
            for name, res in each_server(lambda s: bench_workload(s, args)):
                add(wname, name, res)
                if "cpu_us" in res:
                    add(wname + ": server CPU per op", name, {"us": res["cpu_us"]})
                log("%-24s %-5s %s" % (wname, name, fmt_one(res)))
        if r < CTL_RUNS and wanted("etcdctl"):
            for name, res in each_server(lambda s: etcdctl_micro(s, CTL_N)):
                if "error" in res:
                    res = {op: res for op in ("put", "get", "get --prefix", "del")}
                for op, v in res.items():
                    row = "etcdctl %s (x%d)" % (op, CTL_N if op != "get --prefix" else max(1, CTL_N // 10))
                    add(row, name, v)
                    log("%-24s %-5s %s" % (row, name, fmt_one(v)))
        for name in order:
            if up[name] and servers[name].alive() and servers[name].rss_kib("VmHWM") is not None:
                add("peak RSS (VmHWM) over the run", name,
                    {"mib": servers[name].rss_kib("VmHWM") / 1024})
            servers[name].stop()


def finish(servers, samples, notes, phys, add, elapsed):
    for name, srv in servers.items():
        path = srv.binary
        if os.access(path, os.X_OK):
            add("binary size", name, {"mib": os.path.getsize(path) / 2 ** 20})
            stripped = stripped_size(path)
            if stripped:
                add("binary size, stripped", name, {"mib": stripped / 2 ** 20})
        else:
            add("binary size", name, {"error": "not built"})

    chart = chart_path(RESULTS)
    text = render(samples, phys, notes, elapsed, os.path.basename(chart))
    print(text)
    write_file(chart, ratio_chart(ratios(samples)))
    write_results(RESULTS, text)
    log("wrote %s and %s" % (RESULTS, chart))


# ---------------------------------------------------------------- RESULTS.md: only bench.py's part
BEGIN = "<!-- bench.py:begin (written by bench/bench.py: make bench; the rest of the file is other scripts') -->"
END = "<!-- bench.py:end -->"
OLD_TITLE = "# cetcd vs etcd benchmark"  # how the part began before it had markers


def splice_results(old, part):
    """old (the file's text, or None) with bench.py's part replaced by part; everything outside the
    markers is kept byte for byte. A file without markers gets them once: its leading part written by
    an older bench.py (from its title to the first other script's marker comment) is replaced, or, if
    it has none, the new part goes first."""
    block = BEGIN + "\n" + part.rstrip("\n") + "\n" + END
    if old is None:
        return block + "\n"
    i = old.find("<!-- bench.py:begin")
    if i >= 0:
        j = old.find(END, i)
        if j < 0:
            raise ValueError("RESULTS.md has bench.py's begin marker but not its end marker")
        return old[:i] + block + old[j + len(END):]
    if old.startswith(OLD_TITLE):
        k = old.find("\n<!-- ")
        rest = old[k + 1:] if k >= 0 else ""
        return block + "\n\n" + rest if rest else block + "\n"
    return block + "\n\n" + old


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(path, part):
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = None
    write_file(path, splice_results(old, part))


# ---------------------------------------------------------------- the chart of the ratios
def chart_path(results):
    return os.path.splitext(results)[0] + "-ratios.svg"


def advantage(per):
    """etcd's cost over cetcd's for one row (above 1: cetcd better), or None."""
    key, _, up = row_kind("", per["cetcd"] + per["etcd"])
    if key is None:
        key = "rps"
    c_med, _ = summarize(per["cetcd"], key)
    e_med, _ = summarize(per["etcd"], key)
    if not c_med or not e_med:
        return None
    return (c_med / e_med) if up else (e_med / c_med)


def ratios(samples):
    return [(row, r) for row, r in ((row, advantage(per)) for row, per in samples.items()) if r]


def xml_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def ratio_chart(rows):
    """A horizontal bar chart of (label, ratio) on a log scale around 1x, as a standalone SVG."""
    import math
    label_w, bar_w, row_h, top, pad = 390, 440, 18, 40, 10
    lo_l = math.log10(min([0.5] + [r for _, r in rows])) - 0.05
    hi_l = math.log10(max([2.0] + [r for _, r in rows])) + 0.05
    x_of = lambda r: label_w + (math.log10(r) - lo_l) / (hi_l - lo_l) * bar_w
    height = top + row_h * max(1, len(rows)) + 30
    width = label_w + bar_w + 70
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="13" font-weight="bold">cetcd advantage over etcd '
           '(etcd\'s cost / cetcd\'s; log scale; right of 1x is cetcd better)</text>' % pad]
    for e in range(math.floor(lo_l), math.ceil(hi_l) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if not lo_l <= math.log10(v) <= hi_l:
                continue
            x = x_of(v)
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>'
                       % (x, top - 6, x, height - 24, "#999" if m == 1 else "#e4e4e4"))
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%gx</text>'
                       % (x, height - 10, v))
    one = x_of(1.0)
    for i, (label, r) in enumerate(rows):
        y = top + i * row_h
        x = x_of(r)
        x0, x1 = min(one, x), max(one, x)
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                   % (label_w - 6, y + 12, xml_escape(label)))
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                   % (x0, y + 3, max(x1 - x0, 1.0), row_h - 6, "#3a7d44" if r >= 1 else "#c0392b"))
        out.append('<text x="%.1f" y="%d" fill="#222">%.2fx</text>' % (max(x, one) + 4, y + 12, r))
    out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>' % (one, top - 6, one, height - 24))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def stripped_size(path):
    if not shutil.which("strip"):
        return None
    with tempfile.TemporaryDirectory() as d:
        dst = os.path.join(d, "b")
        shutil.copy(path, dst)
        if subprocess.run(["strip", "--strip-all", dst], stderr=subprocess.DEVNULL).returncode:
            return None
        return os.path.getsize(dst)


# ---------------------------------------------------------------- rendering
# per row kind: (value key, unit, higher is better)
def row_kind(row, vals):
    for key, unit, up in (("rps", "req/s", True), ("ms", "ms", False), ("mib", "MiB", False),
                          ("us", "µs", False)):
        if any(key in v for v in vals):
            return key, unit, up
    return None, "", True


def fmt_num(x):
    if x >= 1000:
        return "%.0f" % x
    if x >= 100:
        return "%.1f" % x
    if x >= 10:
        return "%.2f" % x
    return "%.3f" % x


def fmt_one(res):
    if "error" in res:
        return res["error"]
    if "rps" in res:
        return "%s req/s p50 %s ms p99 %s ms" % (fmt_num(res["rps"]), fmt_num(res.get("p50", 0) * 1000),
                                                fmt_num(res.get("p99", 0) * 1000))
    for k in ("ms", "mib", "us"):
        if k in res:
            return "%s %s" % (fmt_num(res[k]), k)
    return str(res)


def summarize(vals, key):
    ok = [v[key] for v in vals if key in v]
    if not ok:
        errs = [v["error"] for v in vals if "error" in v]
        return None, (errs[-1] if errs else "-")
    return statistics.median(ok), ok


def cell(vals, key, unit):
    med, ok = summarize(vals, key)
    if med is None:
        return ok
    s = "%s %s" % (fmt_num(med), unit)
    if len(ok) > 1:
        s += " (%s–%s)" % (fmt_num(min(ok)), fmt_num(max(ok)))
    if len(ok) < len(vals):
        errs = [v["error"] for v in vals if "error" in v]
        s += " [%d of %d runs; else %s]" % (len(ok), len(vals), errs[-1][:40])
    return s


def pct_cell(vals, row):
    if row.startswith("watch "):
        return ""
    p50, _ = summarize(vals, "p50")
    p99, _ = summarize(vals, "p99")
    if p50 is None:
        return ""
    return "%s / %s" % (fmt_num(p50 * 1000), fmt_num(p99 * 1000) if p99 is not None else "?")


def render(samples, phys, notes, elapsed, chart=None):
    rows = []
    for row, per in samples.items():
        key, unit, up = row_kind(row, per["cetcd"] + per["etcd"])
        if key is None:
            key, unit = "rps", ""
        adv = advantage(per)
        ratio = "%.2f×" % adv if adv else ""
        rows.append([row, cell(per["cetcd"], key, unit), cell(per["etcd"], key, unit), ratio,
                     pct_cell(per["cetcd"], row), pct_cell(per["etcd"], row)])
    head = ["workload", "cetcd", "etcd", "cetcd advantage", "cetcd p50/p99 ms", "etcd p50/p99 ms"]
    table = md_table(head, rows)

    prows = []
    for name, label in (("fdatasync_append_4k", "write 4 KiB + fdatasync, appending"),
                        ("fdatasync_overwrite_4k", "write 4 KiB + fdatasync, preallocated file"),
                        ("tcp_loopback_rtt", "loopback TCP round trip (32 B, NODELAY)")):
        vals = [p[name] for p in phys if name in p]
        if not vals:
            prows.append([label, "failed", "", ""])
            continue
        mean = [v["mean_us"] for v in vals]
        ops = [v["ops_per_sec"] for v in vals]
        rng = lambda xs: "" if len(xs) < 2 else " (%s–%s)" % (fmt_num(min(xs)), fmt_num(max(xs)))
        prows.append([label, fmt_num(statistics.median(mean)) + rng(mean),
                      "%s / %s" % (fmt_num(statistics.median(v["p50_us"] for v in vals)),
                                   fmt_num(statistics.median(v["p99_us"] for v in vals))),
                      fmt_num(statistics.median(ops)) + rng(ops)])
    ptable = md_table(["physical limit (same run, same disk)", "mean µs", "p50 / p99 µs", "ops/s"], prows)

    info = machine_info()
    buildinfo = ""
    try:
        buildinfo = open(os.path.join(CACHE, "benchmark.buildinfo")).read().strip()
    except OSError:
        pass
    out = []
    out.append("# cetcd vs etcd benchmark%s\n" % (" (BENCH_QUICK smoke run)" if QUICK else ""))
    out.append("Generated by `make bench` (bench/run.sh → bench/bench.py); do not edit by hand.\n")
    out.append("- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    out.append("- git commit: %s" % info["commit"])
    out.append("- machine: %s, %s cores, %s GiB RAM, kernel %s" % (info["cpu"], info["cores"], info["mem"], info["kernel"]))
    out.append("- data dirs: %s (%s), both servers with fsync on (no --unsafe-no-fsync)" % (DATA_ROOT, info["fs"]))
    out.append("- load average at the end: %s" % info["load"])
    out.append("- cetcd: %s" % CETCD_DESC)
    out.append("- etcd: %s; etcdctl and etcd's `benchmark` tool (%s)" % (info["etcd"], buildinfo or "built from Debian's etcd source"))
    out.append("- runs: %d (table: median, (min–max) over runs); etcdctl microbenchmark: %d run(s) of N=%d; wall time %.0f s"
               % (RUNS, min(CTL_RUNS, RUNS), CTL_N, elapsed))
    out.append("")
    out.append(table)
    out.append("")
    if chart:
        out.append("![cetcd advantage per row, log scale](%s)\n" % chart)
    out.append("'cetcd advantage' is etcd's cost / cetcd's cost: above 1× cetcd is better (more req/s, "
               "fewer ms, fewer MiB). Workloads are `benchmark [cmd] --clients C --conns N`, shown as C/N; "
               "put values are 256 bytes over 100k keys; range reads one key; 'l' is linearizable, "
               "'s' serializable. p50/p99 are the benchmark tool's latency distribution, medians over runs. "
               "watch's req/s is watch events received per second (1000 watchers on one key; its latencies are not meaningful and not shown); "
               "watch-latency is put→event delay for 10 watchers. The etcdctl rows are wall time per "
               "`etcdctl` process, sequential (mostly process start-up). Server and benchmark client share "
               "the machine's cores; the order of servers alternates from run to run.")
    out.append("")
    out.append(ptable)
    out.append("")
    out.append("Goals from the bench issue, judged on this run:\n")
    out.append(goals_section(samples, phys))
    out.append("")
    if notes:
        out.append("Notes from this run:\n")
        out.extend("- " + n for n in notes)
        out.append("")
    return "\n".join(out) + "\n"


def med(samples, row, server, key):
    vals = samples.get(row, {}).get(server, [])
    m, _ = summarize(vals, key)
    return m


def goals_section(samples, phys):
    """The issue's goals, each judged from this run's numbers, with the reason where one is missed."""
    client_bound = ("the benchmark client shares the 2 cores and spends more CPU per request than the "
                    "server; the 'server CPU per op' rows show the server's own cost against etcd's")
    fsync_p50 = [p["fdatasync_append_4k"]["p50_us"] for p in phys if "fdatasync_append_4k" in p]
    fsync_ms = statistics.median(fsync_p50) / 1000 if fsync_p50 else None

    def ratio(row, key="rps", up=True):
        c, e = med(samples, row, "cetcd", key), med(samples, row, "etcd", key)
        if not c or not e:
            return None
        return c / e if up else e / c

    put_p99 = ratio("put 64/8", "p99", up=False)
    one_put = med(samples, "put 1/1", "cetcd", "p50")
    checks = [
        ("put 64/8 ≥ 8× etcd", ratio("put 64/8"), lambda v: v >= 8, "%.2f×", client_bound),
        ("put 64/8 p99 ≤ etcd's / 5", put_p99, lambda v: v >= 5, "%.2f× lower", client_bound),
        ("range 64/8 ≥ 5× etcd", ratio("range l 64/8"), lambda v: v >= 5, "%.2f×", client_bound),
        ("watch events ≥ 10× etcd", ratio("watch 1000 watchers (events/s)"), lambda v: v >= 10, "%.2f×",
         client_bound),
        ("1-client put p50 within 10% of one fdatasync p50",
         (one_put * 1000 / fsync_ms) if one_put and fsync_ms else None, lambda v: v <= 1.1,
         "%.2f× one fdatasync", "a put's round trip through the Go client costs about 0.2 ms of its own "
         "here (measure it with --unsafe-no-fsync), on top of the fdatasync"),
        ("idle RSS ≤ 2 MB", med(samples, "RSS idle", "cetcd", "mib"), lambda v: v <= 2 * 1e6 / 2 ** 20,
         "%.2f MiB", "about 1.9 MiB of it are shared, clean library pages (mostly libc) that other "
         "processes map too; cetcd's private memory at idle is about 0.2 MiB (see smaps_rollup)"),
        ("start ≤ 5 ms (exec to listening)", med(samples, "startup: exec to TCP listen", "cetcd", "ms"),
         lambda v: v <= 5, "%.2f ms", "replaying the log of a new data dir is not the cost; process start "
         "and the noisy machine are"),
        ("binary ≤ 1 MB, dynamically linked", med(samples, "binary size", "cetcd", "mib"),
         lambda v: v <= 1e6 / 2 ** 20, "%.2f MiB", "debug line tables (-g1) are kept; the stripped size "
         "is in the table"),
    ]
    rows = []
    for name, val, ok, fmt, why in checks:
        if val is None:
            rows.append([name, "not measured", "", ""])
        else:
            met = ok(val)
            rows.append([name, fmt % val, "met" if met else "not met", "" if met else why])
    return md_table(["goal", "this run", "", "why not"], rows)


def md_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in rows])


def machine_info():
    info = {"cpu": "?", "cores": os.cpu_count(), "kernel": platform.release(), "fs": "?",
            "commit": "?", "mem": "?", "etcd": "?", "load": "?"}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem"] = "%.0f" % (int(line.split()[1]) / 2 ** 20)
        info["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        pass
    rc, out = run(["df", "--output=fstype,source", DATA_ROOT], timeout=10)
    if rc == 0 and len(out.splitlines()) > 1:
        info["fs"] = " on ".join(out.splitlines()[1].split())
    rc, out = run(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"], timeout=10)
    if rc == 0:
        info["commit"] = out.strip()
        rc, st = run(["git", "-C", REPO_DIR, "status", "--porcelain", "--untracked-files=no"], timeout=10)
        if rc == 0 and st.strip():
            info["commit"] += " (with uncommitted changes)"
    rc, out = run([ETCD, "--version"], timeout=10)
    if rc == 0 and out:
        info["etcd"] = out.splitlines()[0].strip()
    return info


if __name__ == "__main__":
    main()
