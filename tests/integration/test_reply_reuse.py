#!/usr/bin/python3
# test_reply_reuse.py: a large Range reply is packed in place in the call's output, and the buffer of
# the last large one is kept for the next (src/net/h2_outbuf.c). Replies of many sizes in a row (larger
# than the kept buffer, much smaller, a part of it, two at once) must carry exactly the values this test
# wrote, never bytes of an earlier reply; a client that resets its stream or drops its connection in
# the middle of a 48 MB reply leaves a server that still answers correctly.
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.errors  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
import h2.settings  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402
from lib import Server, Tally  # noqa: E402

T = Tally()
MIB = 1 << 20
# prefix -> number of 1 MiB values: replies of about 48, 20 and 5 MiB
GROUPS = {b"big/": 48, b"mid/": 20, b"small/": 5}
WRITTEN = {}  # key -> value


def load(srv):
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    for prefix, n in GROUPS.items():
        for i in range(n):
            key = prefix + b"%03d" % i
            WRITTEN[key] = os.urandom(MIB)
            c.put(key, WRITTEN[key])
    c.close()


def h2_open(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 8 * MIB})
    conn.increment_flow_control_window(64 * MIB)
    sock.sendall(conn.data_to_send())
    return sock, conn


def range_request(conn, prefix, limit=0):
    req = etcdrpc.RangeRequest(key=prefix, range_end=prefix[:-1] + bytes([prefix[-1] + 1]), limit=limit)
    body = req.SerializeToString()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", "/etcdserverpb.KV/Range"),
                            (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")])
    conn.send_data(sid, b"\0" + len(body).to_bytes(4, "big") + body, end_stream=True)
    return sid


def read_replies(sock, conn, sids, stop_after=None):
    """Reads until every stream in sids ended (or, with stop_after, until that many bytes of any
    arrived); returns {sid: (grpc-status, reply bytes)}."""
    got = {sid: [None, bytearray()] for sid in sids}
    ended, total, end = set(), 0, time.time() + 60
    while len(ended) < len(sids) and time.time() < end:
        sock.settimeout(max(0.1, end - time.time()))
        try:
            d = sock.recv(1 << 20)
        except (socket.timeout, OSError):
            break
        if not d:
            break
        for ev in conn.receive_data(d):
            sid = getattr(ev, "stream_id", None)
            if isinstance(ev, h2.events.DataReceived):
                got[sid][1] += ev.data
                total += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.TrailersReceived):
                got[sid][0] = dict(ev.headers).get("grpc-status")
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and sid in got:
                ended.add(sid)
        sock.sendall(conn.data_to_send())
        if stop_after is not None and total >= stop_after:
            break
    return {sid: (st, bytes(data)) for sid, (st, data) in got.items()}


def check_reply(name, status, data, prefix, limit=0):
    """The reply is one gRPC message holding the keys under prefix (the first limit), with the values
    written, and nothing after it."""
    want = sorted(k for k in WRITTEN if k.startswith(prefix))
    if limit:
        want = want[:limit]
    if status != "0" or len(data) < 5:
        return T.fail(name, "grpc-status %r, %d bytes" % (status, len(data)))
    n = int.from_bytes(data[1:5], "big")
    if n != len(data) - 5:
        return T.fail(name, "message of %d bytes in %d bytes of DATA" % (n, len(data) - 5))
    resp = etcdrpc.RangeResponse.FromString(data[5:])
    keys = [kv.key for kv in resp.kvs]
    bad = [kv.key for kv in resp.kvs if kv.value != WRITTEN.get(kv.key)]
    T.check("%s: %d keys of 1 MiB, each with the value written (%.1f MB)" % (name, len(want), len(data) / 1e6),
            keys == want and not bad and resp.count == len([k for k in WRITTEN if k.startswith(prefix)]),
            "keys %r..., want %r..., values that differ: %r" % (keys[:3], want[:3], bad[:3]))


def one_list(srv, prefix, limit=0):
    sock, conn = h2_open(srv.port)
    sid = range_request(conn, prefix, limit)
    sock.sendall(conn.data_to_send())
    st, data = read_replies(sock, conn, [sid])[sid]
    sock.close()
    return st, data


def sizes_in_a_row(srv):
    # larger than nothing, much smaller, larger than the kept one, a part of it, all of it, the largest,
    # smaller again, and a small reply between: each must carry its own values only
    for prefix, limit in [(b"mid/", 0), (b"small/", 0), (b"mid/", 0), (b"mid/", 10), (b"mid/", 0),
                          (b"big/", 0), (b"mid/", 0), (b"small/", 1), (b"big/", 30), (b"big/", 0)]:
        st, data = one_list(srv, prefix, limit)
        check_reply("%s limit %d" % (prefix.decode(), limit), st, data, prefix, limit)


def two_at_once(srv):
    sock, conn = h2_open(srv.port)
    a, b = range_request(conn, b"big/"), range_request(conn, b"mid/")
    sock.sendall(conn.data_to_send())
    got = read_replies(sock, conn, [a, b])
    sock.close()
    check_reply("two lists on one connection: big/", *got[a], b"big/")
    check_reply("two lists on one connection: mid/", *got[b], b"mid/")


def reset_mid_reply(srv):
    sock, conn = h2_open(srv.port)
    sid = range_request(conn, b"big/")
    sock.sendall(conn.data_to_send())
    got = read_replies(sock, conn, [sid], stop_after=4 * MIB)[sid]
    T.check("a 48 MB reply has begun (%d bytes read) when the client resets it" % len(got[1]),
            got[0] is None and len(got[1]) >= 4 * MIB)
    conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    sid2 = range_request(conn, b"mid/")  # the same connection goes on
    sock.sendall(conn.data_to_send())
    try:
        st, data = read_replies(sock, conn, [sid2])[sid2]
    except h2.exceptions.StreamClosedError:
        st, data = None, b""
    sock.close()
    check_reply("after the reset, the same connection lists mid/", st, data, b"mid/")


def close_mid_reply(srv):
    sock, conn = h2_open(srv.port)
    sid = range_request(conn, b"big/")
    sock.sendall(conn.data_to_send())
    got = read_replies(sock, conn, [sid], stop_after=2 * MIB)[sid]
    sock.close()
    T.check("a 48 MB reply has begun (%d bytes read) when the client goes" % len(got[1]), len(got[1]) >= 2 * MIB)
    time.sleep(0.2)
    check_reply("after the client went, a new one lists big/", *one_list(srv, b"big/"), b"big/")


def main():
    srv = Server("cetcd")
    if not srv.ok():
        T.fail("cetcd starts", srv.error)
        T.finish()
    load(srv)
    sizes_in_a_row(srv)
    two_at_once(srv)
    reset_mid_reply(srv)
    close_mid_reply(srv)
    sizes_in_a_row(srv)
    T.check("cetcd is still running", srv.alive(), srv.log_tail())
    srv.stop()
    T.finish()


main()
