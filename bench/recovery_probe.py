# recovery_probe.py: starts one server and times exec → TCP listening → first answered serializable Range,
# with a raw HTTP/2 gRPC client of a few lines so that no client start-up (etcdctl's ~50 ms) lands in the
# measure; then reads the server's RSS, stops it with SIGTERM and waits for it. Used by recovery_bench.sh.
#   recovery_probe.py PORT KEY_HEX MIN_BYTES LOG -- SERVER ARGV...   prints one JSON object
import json
import os
import signal
import socket
import subprocess
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, GOAWAY, RST = 0, 1, 4, 7, 3
END_STREAM, END_HEADERS, ACK = 1, 4, 1


def frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def literal(name, value):
    """HPACK 'literal header field without indexing, new name', no Huffman (lengths stay under 127)."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def range_request(port, key):
    headers = b"".join(literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", "/etcdserverpb.KV/Range"),
        (":authority", "127.0.0.1:%d" % port), ("content-type", "application/grpc"), ("te", "trailers")))
    msg = b"\x0a" + bytes([len(key)]) + key + b"\x38\x01"  # RangeRequest{key: key, serializable: true}
    body = b"\x00" + len(msg).to_bytes(4, "big") + msg
    return (PREFACE + frame(SETTINGS, 0, 0, b"") + frame(HEADERS, END_HEADERS, 1, headers) +
            frame(DATA, END_STREAM, 1, body))


def one_range(sock, port, key, deadline):
    """Sends one Range on a fresh connection; returns the bytes of response DATA on stream 1, or -1 if the
    connection closed or the stream ended without a response message."""
    sock.sendall(range_request(port, key))
    buf, got = b"", 0
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, OSError):
            return -1
        if not chunk:
            return -1
        buf += chunk
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + n:]
            if ftype == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0, b""))
            elif ftype == DATA and stream == 1:
                got += n
            elif ftype in (GOAWAY, RST) or (ftype == HEADERS and stream == 1 and flags & END_STREAM):
                return got if got else -1
            if ftype == DATA and flags & END_STREAM:
                return got if got else -1
    return -1


def connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None


def vm(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    port, key, min_bytes, logpath = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    argv = sys.argv[sys.argv.index("--") + 1:]
    log = open(logpath, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    deadline = t0 + 1200
    t_listen = t_ready = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            s = connect(port)
            if s is None:
                time.sleep(0.001)
                continue
            if t_listen is None:
                t_listen = time.monotonic() - t0
            with s:
                got = one_range(s, port, key, deadline)
            if got >= min_bytes:
                t_ready = time.monotonic() - t0
                break
            time.sleep(0.002)
        if t_ready is None:
            raise SystemExit("server did not answer a Range (exit %s); see %s" % (proc.poll(), logpath))
        rss_ready, anon_ready = vm(proc.pid, "VmRSS"), vm(proc.pid, "RssAnon")
        t1 = time.monotonic()  # the probe's own cost: the same Range on the ready server
        with connect(port) as s:
            rtt = one_range(s, port, key, deadline) >= min_bytes and time.monotonic() - t1
        time.sleep(1)
        rss_settled = vm(proc.pid, "VmRSS")
        t2 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        print(json.dumps({"listen_s": t_listen, "ready_s": t_ready, "probe_s": rtt, "rss_ready_kib": rss_ready,
                          "anon_ready_kib": anon_ready,
                          "rss_settled_kib": rss_settled, "stop_s": time.monotonic() - t2, "exit": code}))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
