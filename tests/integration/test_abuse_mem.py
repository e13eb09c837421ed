#!/usr/bin/python3
# test_abuse_mem.py: issue 11's memory and fairness attacks, each from outside against a running cetcd:
# a Txn of 128 full Ranges, 600 pipelined HTTP/1 ranges nobody reads, 1,000 HTTP/2 streams of
# unfinished 2 MB messages, 3,000 full Ranges reset in the same write (and reset late), 200 pipelined
# HashKV calls. For each: the server stays up, another client's p99 latency during the attack stays
# under a bound, the peak RSS (VmHWM, reset before each attack) stays under a bound, and the data is
# intact afterwards. Error codes and texts are compared with Debian's etcd where both answer.
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
import grpc  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402
from lib import Server, Tally, range_all  # noqa: E402

T = Tally()
KEYS = int(os.environ.get("ABUSE_KEYS", "20000"))  # 300-byte values: ~6 MB per full range
VALUE = b"v" * 300
P99_BOUND = float(os.environ.get("ABUSE_P99_MS", "250"))  # another client's p99 during an attack
RSS_BOUND_MB = float(os.environ.get("ABUSE_RSS_MB", "200"))  # peak RSS during an attack


# ---------- the other client: a separate process, so the attacker's Python work cannot stall it ----------

def victim_main(port, seconds):
    c = etcd3.client(host="127.0.0.1", port=int(port), timeout=60)
    lat, errors, end = [], 0, time.time() + float(seconds)
    while time.time() < end:
        t0 = time.time()
        try:
            c.get("victim/key")
        except Exception:
            errors += 1
        lat.append(time.time() - t0)
        time.sleep(0.01)
    lat.sort()
    print(json.dumps({"n": len(lat), "errors": errors, "p99": lat[int(len(lat) * 0.99)] * 1000 if lat else -1,
                      "max": lat[-1] * 1000 if lat else -1}))


class Victim:
    def __init__(self, port, seconds):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--victim", str(port), str(seconds)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # connected and measuring before the attack starts

    def result(self):
        out, _ = self.p.communicate(timeout=120)
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"n": 0, "errors": -1, "p99": -1, "max": -1}


# ---------- measuring the server ----------

def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def reset_peak(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")  # VmHWM := VmRSS


def data_digest(srv):
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    h = hashlib.sha256()
    n = 0
    for kv in range_all(c.kvstub, key=b"k/", range_end=b"k0"):
        h.update(kv.key + b"=" + kv.value + b";")
        n += 1
    c.close()
    return n, h.hexdigest()


def preload(srv):
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    for base in range(0, KEYS, 128):
        ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"k/%07d" % i, value=VALUE))
               for i in range(base, min(base + 128, KEYS))]
        c.kvstub.Txn(etcdrpc.TxnRequest(success=ops), timeout=30)
    c.put("victim/key", "x")
    c.close()


ONLY = os.environ.get("ABUSE_ONLY", "")  # a comma list of words: run only the attacks named with one


def attack(srv, name, fn, victim_seconds=6.0, unit=None):
    """Runs fn(srv) while another client measures its latency; checks up, p99, peak RSS, data.
    The p99 bound is P99_BOUND plus the p99 of the control run (the machine's noise), or, when one
    of the attack's calls alone (unit) takes long, four of them: another client waits for at most the
    attacker's call under way and the one of its next turn (each slower while both run), whatever the
    attacker queues."""
    if ONLY and not any(w in name for w in ONLY.split(",")):
        return False
    one = unit(srv) * 1000 if unit else 0
    bound = max(P99_BOUND, 4 * one) + getattr(srv, "control_p99", 0)
    reset_peak(srv.pid)
    rss0 = status_kb(srv.pid, "VmRSS")
    v = Victim(srv.port, victim_seconds)
    t0 = time.time()
    try:
        note = fn(srv)
    except Exception as e:  # the attack itself failing is reported, the checks below still run
        note = "attack raised %r" % (e,)
    took = time.time() - t0
    res = v.result()
    alive = srv.alive()
    hwm = status_kb(srv.pid, "VmHWM") if alive else -1
    print("info %s: %s; %.1f s; other client p99 %.0f ms, max %.0f ms (%d calls, %d errors); "
          "RSS %d -> peak %d MB" % (name, note, took, res["p99"], res["max"], res["n"], res["errors"],
                                     rss0 // 1024, hwm // 1024), flush=True)
    T.check("%s: server stays up" % name, alive, srv.log_tail())
    if not alive:
        return False
    if name.startswith("no attack"):
        srv.control_p99 = res["p99"]
    T.check("%s: other client p99 %.0f ms < %.0f ms%s" % (name, res["p99"], bound,
                                                      " (one call alone: %.0f ms)" % one if unit else ""),
            0 <= res["p99"] < bound and res["errors"] == 0, res)
    T.check("%s: peak RSS %d MB < %d MB" % (name, hwm // 1024, RSS_BOUND_MB), hwm // 1024 < RSS_BOUND_MB,
            "VmHWM %d kB" % hwm)
    T.eq("%s: data intact afterwards" % name, srv.digest, data_digest(srv))
    return True


# ---------- raw HTTP/2 ----------

def h2_open(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def grpc_headers(method, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", "x"),
            ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)


def grpc_msg(pb, flag=0):
    body = pb.SerializeToString() if hasattr(pb, "SerializeToString") else pb
    return bytes([flag]) + len(body).to_bytes(4, "big") + body


FULL_RANGE = etcdrpc.RangeRequest(key=b"k/", range_end=b"k0")


def drain(sock, conn, seconds):
    """Reads (and acknowledges) what the server sends for a while; returns the events."""
    events, end = [], time.time() + seconds
    sock.settimeout(0.2)
    while time.time() < end:
        try:
            d = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        for ev in conn.receive_data(d):
            events.append(ev)
            if isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            break
    return events


def unary(srv, method, pb, extra=()):
    """One gRPC call; returns (grpc-status, grpc-message, reply bytes)."""
    sock, conn = h2_open(srv.port)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, grpc_headers(method, extra))
    conn.send_data(sid, grpc_msg(pb) if not isinstance(pb, bytes) else pb, end_stream=True)
    sock.sendall(conn.data_to_send())
    hdrs, data, end = {}, b"", time.time() + 30
    sock.settimeout(1)
    while time.time() < end:
        try:
            d = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not d:
            break
        done = False
        for ev in conn.receive_data(d):
            if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                hdrs.update(dict(ev.headers))
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
        if done:
            break
    sock.close()
    return hdrs.get("grpc-status"), hdrs.get("grpc-message"), data


# ---------- the attacks ----------

def big_txn(srv):
    ops = [etcdrpc.RequestOp(request_range=FULL_RANGE) for _ in range(128)]
    req = etcdrpc.TxnRequest(success=ops)
    st, msg, data = unary(srv, "/etcdserverpb.KV/Txn", req)
    srv.txn_answer = (st, msg)
    return "request %d bytes, grpc-status %s %r, %d reply bytes" % (len(req.SerializeToString()), st,
                                                                       (msg or "")[:70], len(data))


def http1_pipeline(srv):
    body = json.dumps({"key": "aw==", "range_end": "azA="}).encode()  # "k/" .. "k0"
    one = (b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(one * 600)
    time.sleep(4)  # reading nothing
    sock.settimeout(5)
    got = 0
    try:
        got = len(sock.recv(1 << 20))
    except OSError:
        pass
    sock.close()
    return "600 requests (%d bytes) in one write, nothing read for 4 s" % (len(one) * 600)


def partial_streams(srv, streams=1000, declared=2_000_000, sent=1_900_000):
    sock, conn = h2_open(srv.port)
    drain(sock, conn, 0.2)
    chunk = b"\0" * 16384
    left = {}
    for _ in range(streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers("/etcdserverpb.KV/Put"))
        left[sid] = sent
        first = b"\0" + declared.to_bytes(4, "big")
        conn.send_data(sid, first)
        left[sid] -= len(first)
    sock.sendall(conn.data_to_send())
    total, stalled_since, refused = 0, None, set()
    deadline = time.time() + 10
    while left and time.time() < deadline:
        progress = False
        for sid in list(left):
            try:
                room = min(conn.local_flow_control_window(sid), left[sid], conn.max_outbound_frame_size)
            except (h2.exceptions.StreamClosedError, h2.exceptions.NoSuchStreamError, KeyError):
                left.pop(sid)
                continue
            if room <= 0:
                continue
            try:
                conn.send_data(sid, chunk[:room] if room <= len(chunk) else b"\0" * room)
            except h2.exceptions.ProtocolError:
                left.pop(sid)
                continue
            left[sid] -= room
            total += room
            progress = True
            if left[sid] <= 0:
                left.pop(sid)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            break
        for ev in drain(sock, conn, 0.05 if progress else 0.3):
            if isinstance(ev, h2.events.TrailersReceived) or isinstance(ev, h2.events.ResponseReceived):
                if dict(ev.headers).get("grpc-status") == "8":
                    refused.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                refused.add(ev.stream_id)
        if progress:
            stalled_since = None
        elif stalled_since is None:
            stalled_since = time.time()
        elif time.time() - stalled_since > 2:
            break
    srv.partial_sent = total
    rss = status_kb(srv.pid, "VmRSS")
    sock.close()
    return "%d streams declaring %d bytes: %.1f MB sent before the server stopped giving credit, " \
           "%d calls refused (RESOURCE_EXHAUSTED), RSS then %d MB" % (streams, declared, total / 1e6,
                                                                   len(refused), rss // 1024)


def handled(srv, method):
    """grpc_server_handled_total of a method, all codes, from /metrics."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = b""
    while True:
        d = sock.recv(1 << 16)
        if not d:
            break
        text += d
    sock.close()
    want = 'grpc_method="%s"' % method
    return sum(float(line.split()[-1]) for line in text.decode().splitlines()
               if line.startswith("grpc_server_handled_total") and want in line)


def rapid_reset(srv, n=3000, late=False):
    before = handled(srv, "Txn")  # the other client's calls are Ranges
    note = send_resets(srv, n, late)
    return "%s; %d of them run" % (note, handled(srv, "Txn") - before)


def send_resets(srv, n, late):
    sock, conn = h2_open(srv.port)
    drain(sock, conn, 0.2)
    msg = grpc_msg(etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(request_range=FULL_RANGE)]))
    sids = []
    for _ in range(n):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers("/etcdserverpb.KV/Txn"))
        conn.send_data(sid, msg, end_stream=True)
        if not late:
            conn.reset_stream(sid)
        sids.append(sid)
    sock.sendall(conn.data_to_send())
    if late:
        time.sleep(0.05)
        for sid in sids:
            try:
                conn.reset_stream(sid)
            except h2.exceptions.StreamClosedError:
                pass
        sock.sendall(conn.data_to_send())
    time.sleep(3)  # reading nothing
    sock.close()
    return "%d HEADERS+DATA (a Txn of one full Range)%s RST_STREAM" % (n, " then, 50 ms later," if late else " +")


def one_hashkv(srv):
    t0 = time.time()
    unary(srv, "/etcdserverpb.Maintenance/HashKV", etcdrpc.HashKVRequest())
    return time.time() - t0


def hashkv_pipeline(srv, n=200):
    sock, conn = h2_open(srv.port)
    drain(sock, conn, 0.2)
    for _ in range(n):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, grpc_headers("/etcdserverpb.Maintenance/HashKV"))
        conn.send_data(sid, grpc_msg(etcdrpc.HashKVRequest()), end_stream=True)
    sock.sendall(conn.data_to_send())
    events = drain(sock, conn, 5)
    ended = sum(1 for ev in events if isinstance(ev, h2.events.StreamEnded))
    sock.close()
    return "%d HashKV calls in one write, %d answered" % (n, ended)


# ---------- checks ----------

def check_budget_answer(srv):
    st, msg = getattr(srv, "txn_answer", (None, None))
    T.eq("big txn: RESOURCE_EXHAUSTED", "8", st)
    T.check("big txn: the message names the reply budget", msg is not None and "reply larger than" in msg, msg)
    # the JSON gateway answers the same with grpc-gateway's mapping: 429 and code 8
    op = {"request_range": {"key": "aw==", "range_end": "azA="}}
    body = json.dumps({"success": [op] * 128}).encode()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    sock.sendall(b"POST /v3/kv/txn HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))
    reply = b""
    while True:
        d = sock.recv(1 << 16)
        if not d:
            break
        reply += d
    sock.close()
    head, _, payload = reply.partition(b"\r\n\r\n")
    try:
        code = json.loads(payload).get("code")
    except ValueError:
        code = None
    T.check("big txn over the JSON gateway: 429, code 8", head.startswith(b"HTTP/1.1 429") and code == 8,
            reply[:300])
    # a range that fits still works, and paging over everything still works
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    r = c.kvstub.Range(etcdrpc.RangeRequest(key=b"k/", range_end=b"k0", limit=100), timeout=30)
    T.check("range with a limit: answered, count %d, more" % r.count, r.count == KEYS and r.more and len(r.kvs) == 100)
    r = c.kvstub.Range(etcdrpc.RangeRequest(key=b"k/", range_end=b"k0", count_only=True), timeout=30)
    T.eq("count_only over all keys", KEYS, r.count)
    c.close()


def compare_errors(cetcd, etcd):
    """The item-4 answers, side by side with Debian's etcd."""
    probes = {
        "compressed flag, grpc-encoding identity": ("/etcdserverpb.KV/Range",
                                                    grpc_msg(etcdrpc.RangeRequest(key=b"a"), flag=1),
                                                    [("grpc-encoding", "identity")]),
        "uncompressed, grpc-encoding foo": ("/etcdserverpb.KV/Range", grpc_msg(etcdrpc.RangeRequest(key=b"a")),
                                            [("grpc-encoding", "foo")]),
        ":path of 5000 bytes": ("/" + "a" * 5000 + "/B", grpc_msg(b""), []),
        ":path of 5000 bytes, method": ("/etcdserverpb.KV/" + "a" * 5000, grpc_msg(b""), []),
        ":path without '/'": ("abc", grpc_msg(b""), []),
    }
    for name, (path, body, extra) in probes.items():
        def short(res):  # long paths come back in the message: compare a digest, show the start
            st, msg = res[:2]
            return st, msg if msg is None or len(msg) < 120 else "%s... (%d bytes, sha256 %s)" % (
                msg[:60], len(msg), hashlib.sha256(msg.encode()).hexdigest()[:12])
        want = short(unary(etcd, path, body, extra)) if etcd else None
        got = short(unary(cetcd, path, body, extra))
        if want is None:
            T.check("%s: answered" % name, got[0] not in (None, "0"), got)
        else:
            T.eq("%s: same status and message as etcd" % name, want, got)


def main():
    srv = Server("cetcd")
    if not srv.ok():
        T.fail("cetcd starts", "%s\n%s" % (srv.error, srv.log_tail()))
        T.finish()
    ref = Server("etcd")
    if not ref.ok():
        print("info: etcd did not start (%s); error texts are checked without it" % ref.error)
        ref = None
    compare_errors(srv, ref)
    if ref:
        ref.stop()
    preload(srv)
    srv.digest = data_digest(srv)
    T.eq("preloaded keys", KEYS, srv.digest[0])
    print("info: %d keys of 300 bytes; RSS %d MB" % (KEYS, status_kb(srv.pid, "VmRSS") // 1024), flush=True)
    attack(srv, "no attack (control)", lambda s: time.sleep(4) or "nothing", victim_seconds=4)
    if attack(srv, "txn of 128 full ranges", big_txn):
        check_budget_answer(srv)
    attack(srv, "600 pipelined HTTP/1 ranges, unread", http1_pipeline)
    attack(srv, "1000 streams of unfinished 2 MB messages", partial_streams, victim_seconds=8)
    attack(srv, "3000 full ranges reset in the same write", rapid_reset)
    attack(srv, "3000 full ranges reset 50 ms later", lambda s: rapid_reset(s, late=True), victim_seconds=8)
    attack(srv, "200 pipelined HashKV", hashkv_pipeline, victim_seconds=8, unit=one_hashkv)
    T.check("server still up at the end", srv.alive(), srv.log_tail())
    srv.stop()
    T.finish()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--victim":
        victim_main(sys.argv[2], sys.argv[3])
    else:
        main()
