# abuse_conn_lib.py: what the connection abuse suites (test_abuse_conn.py, test_abuse_slow.py) share:
# raw HTTP/2 frames, a server started under a lowered descriptor limit, the server's CPU and log
# size, and a prober that measures another client's latency while an attack runs.
import os
import socket
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lib  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 4, 6, 7
ACK = 1
ENHANCE_YOUR_CALM = 11


def frame(ftype, flags=0, stream=0, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


OPENING = PREFACE + frame(SETTINGS)  # what an HTTP/2 client sends first


def parse_frames(buf):
    """(frames, rest): the complete frames at the head of buf as (type, flags, stream, payload)."""
    out = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
        buf = buf[9 + n:]
    return out, buf


def start_server(kind="cetcd", *flags, nofile=None):
    """A lib.Server; with nofile, cetcd runs with soft and hard RLIMIT_NOFILE = nofile (both, because
    cetcd raises its soft limit to the hard one at start, as Go programs do)."""
    if nofile is None:
        return lib.Server(kind, *flags)
    wrapper = os.path.join(lib.TMP, "nofile-%d.sh" % nofile)
    with open(wrapper, "w") as f:
        f.write('#!/bin/bash\nulimit -n %d || exit 1\nexec "%s" "$@"\n' % (nofile, os.path.abspath(lib.CETCD_BIN)))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    real, lib.CETCD_BIN = lib.CETCD_BIN, wrapper
    try:
        return lib.Server(kind, *flags)
    finally:
        lib.CETCD_BIN = real


def raise_own_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(srv):
    with open(srv.log, "rb") as f:
        return sum(1 for _ in f)


def log_text(srv):
    with open(srv.log, "rb") as f:
        return f.read().decode("utf-8", "replace")


def h2_connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(OPENING)
    return s


def state(sock, wait=0.0):
    """'closed' if the server closed sock (EOF or reset) within wait seconds, else 'open'. What the
    server sent meanwhile is read and dropped."""
    deadline = time.monotonic() + wait
    while True:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return "closed"
        except socket.timeout:
            return "open"
        except OSError:
            return "closed"


def seconds_until_closed(sock, limit):
    """Seconds until the server closes sock (reading and dropping what it sends), or None."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
    return None


class Prober:
    """Another client's puts and gets, back to back with a short pause, timed while an attack runs."""

    def __init__(self, port, prefix="probe"):
        import etcd3
        self.client = etcd3.client(host="127.0.0.1", port=port, timeout=5)
        self.prefix = prefix
        self.client.put(prefix + "/warm", "up")  # connect now, before any attack fills the server
        self.latencies, self.errors, self.written = [], [], {}
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        i = 0
        while not self._stop.is_set():
            key, value = "%s/%d" % (self.prefix, i % 50), "v%d" % i
            t0 = time.monotonic()
            try:
                self.client.put(key, value)
                got, _ = self.client.get(key)
                if got != value.encode():
                    self.errors.append("read %r after writing %r" % (got, value))
                self.written[key] = value
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
            self.latencies.append(time.monotonic() - t0)
            i += 1
            time.sleep(0.01)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        return self

    def p99(self):
        if not self.latencies:
            return float("inf")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def intact(self):
        """True when every key this prober wrote reads back with its last value."""
        for key, value in self.written.items():
            got, _ = self.client.get(key)
            if got != value.encode():
                return False
        return True

    def close(self):
        self.client.close()
