#!/usr/bin/python3
# test_abuse_slow.py: slow and silent clients cannot hold connections forever (issue 11). A client
# trickling the HTTP/2 preface or an HTTP/1 head one byte a second is closed at the opening or head
# deadline (10 s), a trickled body or an `Expect: 100-continue` with no body at the body deadline
# (30 s), while another client is served; set-up connections that are merely idle stay, as in
# grpc-go and Go's net/http. Keepalive as etcd configures grpc-go: the server pings a silent
# connection and closes it when nothing answers; a client pinging too often gets GOAWAY
# ENHANCE_YOUR_CALM "too_many_pings" (compared with Debian's etcd).
import os
import socket
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuse_conn_lib as al  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
from lib import Tally  # noqa: E402

t = Tally()
OPENING_S, HEAD_S, BODY_S = 10, 10, 30  # cetcd's deadlines (src/net/conn_timeout.c)
SLACK = 3.0


def trickle(sock, data, stop_after):
    """Sends data one byte a second; stops early when the server closes. Returns when it closed
    (seconds since the first byte) or None."""
    start = time.monotonic()
    for b in data:
        if time.monotonic() - start > stop_after:
            return None
        try:
            sock.sendall(bytes([b]))
        except OSError:
            return time.monotonic() - start
        if al.state(sock, 1.0) == "closed":
            return time.monotonic() - start
    return al.seconds_until_closed(sock, stop_after - (time.monotonic() - start))


def http1(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_response(sock):
    """One HTTP/1.1 response with a Content-Length body; returns (status line, body)."""
    sock.settimeout(5)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b"\r\n")[0], rest


# --- attacks, each in its own thread; results land in a dict ---


def silent(port, out):
    s = socket.create_connection(("127.0.0.1", port))
    out["silent"] = al.seconds_until_closed(s, OPENING_S + 10)


def preface_trickle(port, out):
    s = socket.create_connection(("127.0.0.1", port))
    out["preface"] = trickle(s, al.OPENING, OPENING_S + 10)


def head_trickle(port, out):
    s = http1(port)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _ = read_response(s)
    out["first request"] = status
    out["head"] = trickle(s, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60 + b"\r\n\r\n", HEAD_S + 10)


def body_trickle(port, out):
    s = http1(port)
    s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    out["body"] = trickle(s, b'{"key":"' + b"a" * 90, BODY_S + 10)


def expect_continue(port, out):
    s = http1(port)
    s.sendall(b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
    s.settimeout(5)
    try:
        out["continue"] = s.recv(100)
    except OSError:
        out["continue"] = b""
    out["expect"] = al.seconds_until_closed(s, BODY_S + 10)


def many_tricklers(port, out, n=200):
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    start, closed, sent = time.monotonic(), {}, 0
    while len(closed) < n and time.monotonic() - start < OPENING_S + 10:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if sent < len(al.OPENING) - 1:
                    s.sendall(al.OPENING[sent:sent + 1])
            except OSError:
                closed[i] = time.monotonic() - start
                continue
            if al.state(s) == "closed":
                closed[i] = time.monotonic() - start
        sent += 1
        time.sleep(1)
    out["many"] = (len(closed), max(closed.values()) if closed else None)


# --- clients that are slow or idle but honest: they stay ---


class H2Client:
    """A small HTTP/2 client (python-h2) that answers the server's pings while it pumps."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.events, self.closed = [], False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def pump(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed = True
                break
            try:
                self.events += self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                pass
            self.flush()
        return self

    def ping(self):
        self.conn.ping(os.urandom(8))
        self.flush()

    def open_stream(self, path, body=None):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "x"), (":path", path),
                                     ("content-type", "application/grpc"), ("te", "trailers")])
        if body is not None:
            self.conn.send_data(sid, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
        self.flush()
        return sid

    def unary(self, path, body):
        sid = self.open_stream(path, body)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.ended(sid):
            self.pump(0.1)
        return self.ended(sid)

    def ended(self, sid):
        return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in self.events)

    def goaway(self):
        return next(((e.error_code, e.additional_data) for e in self.events
                     if isinstance(e, h2.events.ConnectionTerminated)), None)

    def count(self, kind):
        return sum(1 for e in self.events if isinstance(e, kind))


def idle_h2(port, out):
    c = H2Client(port).pump(OPENING_S + 5)
    c.ping()
    c.pump(1)
    out["idle h2"] = (c.closed, c.count(h2.events.PingAckReceived))


def idle_http1(port, out):
    s = http1(port)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    read_response(s)
    time.sleep(HEAD_S + 5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    out["idle http1"] = read_response(s)[0]


def slow_honest_body(port, out):
    body = b'{"key":"c2xvdw==","value":"eWVz"}'
    s = http1(port)
    s.sendall(b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
    time.sleep(8)
    s.sendall(body[10:])
    out["slow body"] = read_response(s)[0]


def slowloris():
    srv = al.start_server("cetcd")
    probe = al.Prober(srv.port, "slow").start()
    cpu0, out = al.cpu_seconds(srv.pid), {}
    jobs = [silent, preface_trickle, head_trickle, body_trickle, expect_continue, many_tricklers, idle_h2, idle_http1,
            slow_honest_body]
    threads = [threading.Thread(target=j, args=(srv.port, out), daemon=True) for j in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(BODY_S + 30)
    probe.stop()
    cpu = al.cpu_seconds(srv.pid) - cpu0

    def within(name, limit):
        v = out.get(name)
        t.check("slowloris: %s closed after %s s (deadline %d s)" % (name, "%.1f" % v if v else v, limit),
                v is not None and limit - 1.5 <= v <= limit + SLACK, v)

    within("silent", OPENING_S)
    within("preface", OPENING_S)
    t.check("slowloris: a first HTTP/1 request is answered", b"200" in (out.get("first request") or b""), out)
    within("head", HEAD_S)
    within("body", BODY_S)
    t.check("slowloris: Expect: 100-continue gets 100 Continue", out.get("continue", b"").startswith(b"HTTP/1.1 100"),
            out.get("continue"))
    within("expect", BODY_S)
    n, last = out.get("many", (0, None))
    t.check("slowloris: 200 preface tricklers all closed by %s s" % last, n == 200 and last <= OPENING_S + SLACK, (n, last))
    t.eq("slowloris: an idle HTTP/2 connection stays past the opening deadline and answers a ping", (False, 1),
         out.get("idle h2"))
    t.check("slowloris: an idle HTTP/1 keep-alive connection stays (as in Go's net/http)",
            b"200" in (out.get("idle http1") or b""), out.get("idle http1"))
    t.check("slowloris: a body sent in two halves 8 s apart is served", b"200" in (out.get("slow body") or b""),
            out.get("slow body"))
    t.check("slowloris: another client's put+get p99 %.0f ms over %d ops (< 500 ms), no errors"
            % (probe.p99() * 1e3, len(probe.latencies)), probe.p99() < 0.5 and not probe.errors, probe.errors[:3])
    t.check("slowloris: %.2f s of server CPU over the %d s attack" % (cpu, BODY_S), cpu < 3, cpu)
    t.check("slowloris: server alive, other client's keys intact", srv.alive() and probe.intact(), srv.log_tail())
    probe.close()
    srv.stop()


# --- keepalive ---


def keepalive_pings():
    srv = al.start_server("cetcd", "--grpc-keepalive-interval=1s", "--grpc-keepalive-timeout=1s",
                          "--grpc-keepalive-min-time=1s")
    mute = al.h2_connect(srv.port)  # never answers
    start, got, pinged = time.monotonic(), b"", False
    closed_after = None
    mute.settimeout(0.1)
    while time.monotonic() - start < 6:
        try:
            data = mute.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            closed_after = time.monotonic() - start
            break
        got += data
        frames, _ = al.parse_frames(got)
        pinged = pinged or any(f[0] == al.PING and not f[1] & al.ACK for f in frames)
    t.check("keepalive: a silent connection is pinged after --grpc-keepalive-interval", pinged)
    t.check("keepalive: and closed when the ping is not answered within --grpc-keepalive-timeout (%s s)"
            % ("%.1f" % closed_after if closed_after else None),
            closed_after is not None and 1.5 <= closed_after <= 4.5, closed_after)
    c = H2Client(srv.port).pump(5)
    t.check("keepalive: a client that answers stays (%d pings answered in 5 s)" % c.count(h2.events.PingReceived),
            not c.closed and c.count(h2.events.PingReceived) >= 2)
    sid = c.open_stream("/etcdserverpb.Watch/Watch")
    for _ in range(5):
        c.ping()
        c.pump(1.2)
    t.check("keepalive: pings 1.2 s apart with a stream open and --grpc-keepalive-min-time=1s are fine",
            c.goaway() is None and not c.closed, c.goaway())
    for _ in range(4):
        c.ping()
    c.pump(1)
    t.eq("keepalive: 4 pings at once with a stream open: GOAWAY ENHANCE_YOUR_CALM too_many_pings",
         (al.ENHANCE_YOUR_CALM, b"too_many_pings"), c.goaway())
    del sid
    t.check("keepalive: server alive", srv.alive(), srv.log_tail())
    srv.stop()


def ping_policy(kind):
    """What a default server does with client pings: returns the outcomes of three clients."""
    srv = al.start_server(kind)
    if not srv.ok():
        return None
    res = {}
    c = H2Client(srv.port).pump(0.3)
    for _ in range(3):
        c.ping()
    res["3 pings, no stream"] = c.pump(1).goaway()
    c = H2Client(srv.port).pump(0.3)
    for _ in range(4):
        c.ping()
    res["4 pings, no stream"] = c.pump(1).goaway()
    c.pump(1)
    res["closed after GOAWAY"] = c.closed
    c = H2Client(srv.port).pump(0.3)
    for _ in range(6):  # each ping follows a reply (HEADERS + DATA): grpc-go resets the strikes
        c.ping()
        c.unary("/etcdserverpb.KV/Range", b"\x0a\x01k")
    res["6 pings between replies"] = c.pump(0.5).goaway()
    srv.stop()
    return res


def compare_ping_policy():
    mine, ref = ping_policy("cetcd"), ping_policy("etcd")
    calm = (al.ENHANCE_YOUR_CALM, b"too_many_pings")
    t.eq("ping policy: GOAWAY only for the 4th quick ping without streams, closed after; none between replies",
         {"3 pings, no stream": None, "4 pings, no stream": calm, "closed after GOAWAY": True,
          "6 pings between replies": None}, mine)
    if ref is None:
        return t.ok("ping policy: Debian's etcd not available, comparison skipped")
    t.eq("ping policy: the same as Debian's etcd", ref, mine)


def main():
    for part in (keepalive_pings, compare_ping_policy, slowloris):
        try:
            part()
        except Exception:  # noqa: BLE001
            t.fail("%s ran to its end" % part.__name__, traceback.format_exc())


main()
t.finish()
