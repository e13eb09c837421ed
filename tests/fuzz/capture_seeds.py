#!/usr/bin/python3
# capture_seeds.py: makes the fuzz targets' seed corpora from real client traffic. It starts cetcd on
# an ephemeral port behind a small TCP proxy that records what each client connection sends, runs
# etcdctl (ETCDCTL_API=3) and curl through it, and writes the seeds of tests/fuzz/corpus/<target>/.
# Usage: tests/fuzz/capture_seeds.py CETCD_BINARY [OUT_DIR]   (OUT_DIR: tests/fuzz/corpus)
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import hpack

HERE = os.path.dirname(os.path.abspath(__file__))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit("cetcd exited")
            time.sleep(0.05)
    sys.exit("cetcd did not start")


class Proxy:
    """Accepts on an ephemeral port, relays to the server, and keeps each connection's client bytes
    under the label current when it was accepted."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.label = "start"
        self.captures = []  # (label, bytearray)
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.sock.accept()
            u = socket.create_connection(("127.0.0.1", self.upstream))
            buf = bytearray()
            with self.lock:
                self.captures.append((self.label, buf))
            threading.Thread(target=self._pipe, args=(c, u, buf), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, None), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, record):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if record is not None:
                    record += d
                dst.sendall(d)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def h2_streams(data):
    """The gRPC calls of one HTTP/2 client capture: [(path, body bytes, ended)] in stream order."""
    if not data.startswith(PREFACE):
        return []
    dec = hpack.Decoder()
    dec.max_allowed_table_size = 1 << 16
    off, streams, block, block_sid = len(PREFACE), {}, b"", 0
    while off + 9 <= len(data):
        ln = int.from_bytes(data[off:off + 3], "big")
        typ, flags = data[off + 3], data[off + 4]
        sid = struct.unpack(">I", data[off + 5:off + 9])[0] & 0x7FFFFFFF
        payload = data[off + 9:off + 9 + ln]
        off += 9 + ln
        if typ in (0, 1) and flags & 0x8:  # PADDED
            pad = payload[0]
            payload = payload[1:len(payload) - pad]
        if typ == 1:
            if flags & 0x20:  # PRIORITY
                payload = payload[5:]
            block, block_sid = payload, sid
        elif typ == 9:
            block += payload
        if typ in (1, 9) and flags & 0x4:  # END_HEADERS
            hdrs = dict((k if isinstance(k, str) else k.decode(), v) for k, v in dec.decode(block))
            st = streams.setdefault(block_sid, {"path": None, "body": b"", "ended": False})
            if hdrs.get(":path"):
                st["path"] = hdrs[":path"] if isinstance(hdrs[":path"], str) else hdrs[":path"].decode()
            if typ == 1 and flags & 0x1:
                st["ended"] = True
        if typ == 0 and sid in streams:
            streams[sid]["body"] += payload
            if flags & 0x1:
                streams[sid]["ended"] = True
    return [(s["path"], s["body"], s["ended"]) for _, s in sorted(streams.items()) if s["path"]]


def grpc_messages(body):
    msgs, off = [], 0
    while off + 5 <= len(body):
        ln = struct.unpack(">I", body[off + 1:off + 5])[0]
        msgs.append(body[off + 5:off + 5 + ln])
        off += 5 + ln
    return msgs


def fuzz_methods():
    """The paths of src/net/methods.c's table in its order: the targets name a method by its index."""
    src = open(os.path.join(HERE, "..", "..", "src", "net", "methods.c")).read()
    return re.findall(r'^\s*\{"(/[^"]+)", RPC_', src, re.M)


def gateway_routes():
    """The JSON gateway's paths in the order fuzz_http1 numbers them (fz_routes.h, made by the Makefile):
    src/gateway/http_api.c's table, then gw_stream.c's."""
    routes = []
    for f in ("http_api.c", "gw_stream.c"):
        src = open(os.path.join(HERE, "..", "..", "src", "gateway", f)).read()
        routes += re.findall(r'^\s*\{"(/v3/[^"]+)"', src, re.M)
    return routes


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__ or "usage: capture_seeds.py CETCD_BINARY [OUT_DIR]")
    binary = os.path.abspath(sys.argv[1])
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus")
    tmp = tempfile.mkdtemp(prefix="cetcd-capture.")
    data_dir = os.path.join(tmp, "data")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "cetcd.log"), "wb")
    proc = subprocess.Popen([binary, "--data-dir", data_dir, "--listen-client-urls", url,
                             "--advertise-client-urls", url, "--unsafe-no-fsync"],
                            stdout=log, stderr=log)
    try:
        wait_port(port, proc)
        proxy = Proxy(port)
        ep = "127.0.0.1:%d" % proxy.port
        env = dict(os.environ, ETCDCTL_API="3")
        snaps = {}

        def ctl(label, *args, stdin=None, timeout=10, background=False):
            proxy.label = label
            argv = ["etcdctl", "--endpoints", ep, "--command-timeout=5s"] + list(args)
            if background:
                return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                r = subprocess.run(argv, env=env, input=stdin, capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return ""
            time.sleep(0.05)
            return r.stdout.decode(errors="replace")

        def curl(label, *args):
            proxy.label = label
            subprocess.run(["curl", "-s", "-o", "/dev/null"] + list(args), timeout=10)
            time.sleep(0.05)

        def snapshot_dir(name):
            time.sleep(0.2)
            snaps[name] = {f: open(os.path.join(data_dir, f), "rb").read() for f in sorted(os.listdir(data_dir))
                           if f.endswith(".log") or f == "MANIFEST"}

        ctl("put", "put", "foo", "bar")
        ctl("put-prev-kv", "put", "foo/a", "1", "--prev-kv")
        ctl("put-ignore-value", "put", "foo/a", "--ignore-value")
        ctl("get", "get", "foo")
        ctl("get-prefix-sort", "get", "foo", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--limit=1")
        ctl("get-keys-only", "get", "foo", "--prefix", "--keys-only")
        ctl("get-from-key-count", "get", "", "--from-key", "--count-only")
        ctl("get-rev", "get", "foo", "--rev=2")
        ctl("get-range", "get", "a", "zz", "--consistency=s")
        ctl("del-prev-kv", "del", "foo/a", "--prev-kv")
        ctl("txn", "txn", stdin=b'mod("foo") > "0"\nvalue("foo") = "bar"\n\nput foo txn\nget foo --prefix\n\n'
            b'del foo\n\n')
        ctl("txn-fail", "txn", stdin=b'create("nokey") > "5"\n\nput a b\n\nput c d\nget c\n\n')
        watch = ctl("watch", "watch", "foo", "--prefix", "--rev=1", "--prev-kv", background=True)
        time.sleep(0.5)
        proxy.label = "put"
        ctl("put", "put", "foo/w", "watched")
        ctl("del-prefix", "del", "foo/w", "--prefix")
        time.sleep(0.3)
        watch.send_signal(signal.SIGINT)
        watch.wait()
        lease_out = ctl("lease-grant", "lease", "grant", "100")
        lease = lease_out.split()[1] if lease_out.startswith("lease ") else "1"
        ctl("put-lease", "put", "leased", "v", "--lease=" + lease)
        ctl("lease-ttl", "lease", "timetolive", lease, "--keys")
        ctl("lease-list", "lease", "list")
        ctl("lease-keepalive", "lease", "keep-alive", "--once", lease)
        snapshot_dir("log-leases")
        ctl("lease-revoke", "lease", "revoke", lease)
        ctl("compaction", "compaction", "4")
        ctl("status", "endpoint", "status")
        ctl("hashkv", "endpoint", "hashkv")
        ctl("health", "endpoint", "health")
        ctl("alarm-list", "alarm", "list")
        ctl("alarm-disarm", "alarm", "disarm")
        ctl("member-list", "member", "list")
        ctl("member-add", "member", "add", "x", "--peer-urls=http://127.0.0.1:2390")
        ctl("move-leader", "move-leader", "1234")
        snapshot_dir("log-compacted")
        ctl("defrag", "defrag")
        snapshot_dir("log-defragged")
        ctl("snapshot", "snapshot", "save", os.path.join(tmp, "snap.db"))
        ctl("watch-progress", "watch", "--interactive", stdin=b"watch foo\nprogress\n", timeout=10)
        ctl("lock", "lock", "mylock", "echo", "locked", timeout=10)
        ctl("elect", "elect", "--listen", "myelection", timeout=2)
        ctl("user-add", "user", "add", "root:rootpw", "--interactive=false")
        ctl("user-add-2", "user", "add", "alice:pw", "--interactive=false")
        ctl("role-add", "role", "add", "reader")
        ctl("role-grant", "role", "grant-permission", "reader", "read", "foo", "--prefix=true")
        ctl("user-grant-role", "user", "grant-role", "alice", "reader")
        ctl("user-get", "user", "get", "alice", "--detail")
        ctl("role-list", "role", "list")
        ctl("auth-enable", "auth", "enable")
        ctl("get-as-user", "--user", "alice:pw", "get", "foo", "--prefix")
        ctl("put-denied", "--user", "alice:pw", "put", "foo", "x")
        ctl("auth-status", "--user", "root:rootpw", "auth", "status")
        ctl("user-passwd", "--user", "root:rootpw", "user", "passwd", "alice", "--interactive=false", stdin=b"pw2\n")
        ctl("role-revoke", "--user", "root:rootpw", "role", "revoke-permission", "reader", "foo", "--prefix=true")
        ctl("user-delete", "--user", "root:rootpw", "user", "delete", "alice")
        ctl("auth-disable", "--user", "root:rootpw", "auth", "disable")

        base = url.replace(str(port), str(proxy.port))
        curl("http-health", base + "/health")
        curl("http-version", base + "/version")
        curl("http-metrics", base + "/metrics")
        curl("http-put", "-X", "POST", "-d", '{"key":"Zm9v","value":"YmFy","prev_kv":true}', base + "/v3/kv/put")
        curl("http-range", "-X", "POST", "-d", '{"key":"Zm9v","range_end":"Zm9w","limit":"2","sort_order":"DESCEND"}',
             base + "/v3/kv/range")
        curl("http-txn", "-X", "POST", "-d", '{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE",'
             '"value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}],'
             '"failure":[{"request_range":{"key":"Zm9v"}}]}', base + "/v3/kv/txn")
        curl("http-delete", "-X", "POST", "-d", '{"key":"Zm9v","prev_kv":true}', base + "/v3/kv/deleterange")
        curl("http-status", "-X", "POST", "-d", "{}", base + "/v3/maintenance/status")
        curl("http-alarm", "-X", "POST", "-d", '{"action":"GET"}', base + "/v3/maintenance/alarm")
        curl("http-members", "-X", "POST", "-d", "{}", base + "/v3/cluster/member/list")
        curl("http-keepalive", base + "/health", "-o", "/dev/null", base + "/livez", "-o", "/dev/null",
             base + "/readyz?verbose")
        curl("http-expect", "-X", "POST", "-H", "Expect: 100-continue", "-d", '{"key":"YQ=="}',
             base + "/v3/kv/range")
        curl("http-watch", "-m", "1", "-X", "POST", "-d",
             '{"create_request":{"key":"Zm9v","range_end":"Zm9w","start_revision":"1","prev_kv":true}}',
             base + "/v3/watch")
        curl("http-lease-grant", "-X", "POST", "-d", '{"TTL":"60","ID":"4660"}', base + "/v3/lease/grant")
        curl("http-lease-keepalive", "-m", "1", "-X", "POST", "-d", '{"ID":"4660"}', base + "/v3/lease/keepalive")
        curl("http-lease-ttl", "-X", "POST", "-d", '{"ID":"4660","keys":true}', base + "/v3/lease/timetolive")
        curl("http-lease-leases", "-X", "POST", "-d", "{}", base + "/v3/lease/leases")
        curl("http-lease-revoke", "-X", "POST", "-d", '{"ID":"4660"}', base + "/v3/lease/revoke")
        curl("http-hashkv", "-X", "POST", "-d", '{"revision":"0"}', base + "/v3/maintenance/hashkv")
        curl("http-compaction", "-X", "POST", "-d", '{"revision":"3","physical":true}', base + "/v3/kv/compaction")
        curl("http-user-add", "-X", "POST", "-d", '{"name":"bob","password":"pw"}', base + "/v3/auth/user/add")
        curl("http-authenticate", "-X", "POST", "-d", '{"name":"bob","password":"pw"}',
             base + "/v3/auth/authenticate")
        curl("http-role-add", "-X", "POST", "-d", '{"name":"writer"}', base + "/v3/auth/role/add")
        curl("http-role-grant", "-X", "POST", "-d",
             '{"name":"writer","perm":{"permType":"READWRITE","key":"Zm9v","range_end":"Zm9w"}}',
             base + "/v3/auth/role/grant")
        curl("http-user-grant", "-X", "POST", "-d", '{"user":"bob","role":"writer"}', base + "/v3/auth/user/grant")
        curl("http-user-get", "-X", "POST", "-d", '{"name":"bob"}', base + "/v3/auth/user/get")
        curl("http-auth-status", "-X", "POST", "-d", "{}", base + "/v3/auth/status")
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

    methods = fuzz_methods()
    routes = gateway_routes()
    written = {t: 0 for t in ("h2", "grpc", "rpc", "http1", "log")}

    def write(target, name, blob):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)
        written[target] += 1

    seen = set()
    for label, buf in proxy.captures:
        data = bytes(buf)
        if not data:
            continue
        if data.startswith(PREFACE):
            if data not in seen:
                seen.add(data)
                write("h2", "%s-%d" % (label, len(seen)), data[len(PREFACE):])
            for i, (path, body, ended) in enumerate(h2_streams(data)):
                if path not in methods:
                    continue
                m = methods.index(path)
                short = path.rsplit("/", 1)[1].lower()
                key = ("g", m, body, ended)
                if key not in seen:
                    seen.add(key)
                    write("grpc", "%s-%s" % (label, short), bytes([m, 1 if ended else 0, 0]) + body)
                for j, msg in enumerate(grpc_messages(body)):
                    if ("r", m, msg) not in seen:
                        seen.add(("r", m, msg))
                        write("rpc", "%s-%s-%d" % (label, short, j), bytes([m]) + msg)
        elif data not in seen:
            seen.add(data)
            write("http1", label, b"\x00" + data)
            write("http1", label + "-bytewise", b"\x01" + data)
            body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
            path = data.split(b" ", 2)[1].decode() if data.count(b" ") >= 2 else ""
            if path in routes and body:
                write("http1", label + "-gateway", bytes([0x80 | routes.index(path)]) + body)

    # recovery seeds: the data dir at three moments, as [flags][kind][u16 length][bytes]... with
    # checksums to be recomputed (flags 3), and the same with each segment cut in two at a record
    def pack(files, flags):
        blob = bytes([flags])
        for name, content in files:
            kind = 0 if name == "MANIFEST" else int(name.split(".")[0])
            blob += bytes([kind]) + struct.pack("<H", len(content)) + content
        return blob

    def records(seg):
        off, recs = 16, []
        while off + 24 <= len(seg):
            ln = struct.unpack("<I", seg[off:off + 4])[0]
            recs.append(seg[off:off + 24 + ln])
            off += 24 + ln
        return recs

    def manifest(segs):  # its checksum is left to the target (flags 2)
        body = b"CETCDMAN" + struct.pack("<II", 1, len(segs))
        for sid, content in segs:
            body += struct.pack("<IIQ", sid, sid, len(content))
        return body + bytes(8)

    for name, files in snaps.items():
        items = [(f, c) for f, c in files.items() if len(c) < 65536]
        write("log", name, pack(items, 3))
        write("log", name + "-no-manifest", pack([(f, c) for f, c in items if f != "MANIFEST"], 3))
        segs = [(int(f.split(".")[0]), c) for f, c in items if f.endswith(".log")]
        if len(segs) == 1 and len(records(segs[0][1])) >= 2:
            sid, seg = segs[0]
            recs = records(seg)
            half = len(recs) // 2
            hdr = seg[:12] + bytes(4)
            a, b = hdr + b"".join(recs[:half]), hdr + b"".join(recs[half:])
            two = [(sid, a), (sid + 1, b)]
            write("log", name + "-two-segments",
                  pack([("MANIFEST", manifest(two))] + [("%016d.log" % i, c) for i, c in two], 3))
    shutil.rmtree(tmp, ignore_errors=True)
    print("seeds:", ", ".join("%s %d" % kv for kv in written.items()))


if __name__ == "__main__":
    main()
