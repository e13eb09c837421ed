# lib.py: the Python twin of lib.sh for the Python integration suites: ephemeral ports, temp dirs,
# starting and stopping cetcd and the real etcd by PID (never by name, never on port 2379), and the
# pass/fail count each suite ends with ("N passed, N failed", exit 1 on any failure).
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CETCD_BIN = os.environ.get("CETCD_BIN", os.path.join(ROOT, "build", "cetcd"))
TMP = tempfile.mkdtemp(prefix="cetcd-pytest.")
_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Server:
    """One server process (kind 'cetcd' or 'etcd') on an ephemeral port with a fresh data dir."""

    def __init__(self, kind, *flags, data_dir=None):
        self.kind = kind
        self.port = free_port()
        self.ep = "127.0.0.1:%d" % self.port
        self.dir = data_dir or os.path.join(tempfile.mkdtemp(dir=TMP, prefix=kind + "."), "data")
        self.log = os.path.join(TMP, "%s.%d.log" % (kind, self.port))
        url = "http://" + self.ep
        if kind == "etcd":
            peer = "http://127.0.0.1:%d" % free_port()
            argv = ["etcd", "--name", "ref", "--data-dir", self.dir, "--listen-client-urls", url,
                    "--advertise-client-urls", url, "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer, "--initial-cluster", "ref=" + peer]
        else:
            argv = [CETCD_BIN, "--data-dir", self.dir, "--listen-client-urls", url,
                    "--advertise-client-urls", url]
        argv += list(flags)
        self.argv = argv
        self._launch()

    def _launch(self):
        kind, argv = self.kind, self.argv
        with open(self.log, "ab") as log:
            try:
                self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            except OSError as e:
                self.proc = None
                self.error = str(e)
                return
        _procs.append(self.proc)
        self.pid = self.proc.pid
        self.error = None
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.error = "%s exited with %s" % (kind, self.proc.returncode)
                return
            if port_open(self.port):
                break
            time.sleep(0.05)
        else:
            self.error = "%s did not listen on %s" % (kind, self.ep)
            return
        if kind == "etcd":  # the port opens before the single member has elected itself
            import etcd3
            c = etcd3.client(host="127.0.0.1", port=self.port, timeout=2)
            while time.time() < deadline:
                try:
                    c.get("health-probe")
                    break
                except Exception:
                    time.sleep(0.1)
            c.close()

    def restart(self, sig=signal.SIGTERM):
        """Stops the process (SIGTERM, or e.g. SIGKILL) and starts it again on the same port and dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait()
        self._launch()
        return self.ok()

    def ok(self):
        return self.proc is not None and self.error is None and self.proc.poll() is None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=5):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        print("ok   - " + name, flush=True)

    def fail(self, name, detail=""):
        self.failed += 1
        print("FAIL - " + name, flush=True)
        for line in str(detail).splitlines()[:20]:
            print("       " + line)

    def check(self, name, cond, detail=""):
        self.ok(name) if cond else self.fail(name, detail)

    def eq(self, name, expected, actual):
        if expected == actual:
            self.ok(name)
        else:
            self.fail(name, "expected: %r\nactual:   %r" % (expected, actual))

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def range_all(kvstub, key=b"\0", range_end=b"\0", page=1000, revision=0, timeout=10, keys_only=False):
    """Yields every KeyValue in [key, range_end) in key order, read in pages of `page` keys with a
    moving start key, so no single reply grows past gRPC's 4 MiB receive limit however large the
    store is. All pages are read at one revision (the first page's, unless `revision` is given).
    kvstub is etcd3's client.kvstub or etcdrpc.KVStub(channel)."""
    from etcd3 import etcdrpc
    start = key
    while True:
        resp = kvstub.Range(etcdrpc.RangeRequest(key=start, range_end=range_end, limit=page,
                                                 revision=revision, keys_only=keys_only), timeout)
        if not revision:
            revision = resp.header.revision
        for kv in resp.kvs:
            yield kv
        if not resp.more or not resp.kvs:
            return
        start = resp.kvs[-1].key + b"\0"


def dir_usage(path):
    """(bytes, files): the sum of the sizes of the regular files under path, and how many there are."""
    total = files = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue  # renamed or removed meanwhile (log compaction)
            total += st.st_size
            files += 1
    return total, files


def proc_usage(pid):
    """(open fds, VmRSS in KiB) of a running process, from /proc; (-1, -1) if it is gone."""
    try:
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/status" % pid) as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), -1)
        return fds, rss
    except OSError:
        return -1, -1


def _read_varint(buf, i):
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7


def pb_items(buf):
    """(field number, value) of every field of a protobuf message in order, repeats kept: int for
    varints, bytes for length-delimited."""
    out, i = [], 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wire)
        out.append((field, value))
    return out


def pb_fields(buf):
    """Field number -> value (int for varints, bytes for length-delimited) of a protobuf message; a
    repeated field keeps its last value."""
    return dict(pb_items(buf))
