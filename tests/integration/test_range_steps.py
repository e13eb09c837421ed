#!/usr/bin/python3
# test_range_steps.py: a Range whose values pass a few MiB is answered over several loop turns
# (src/api/kv_range_steps.c): its values must be those of its revision even when, between the steps,
# every key is written again, the store compacted and its log rewritten (Defragment); the server must
# serve other clients meanwhile; and a client that resets the call, lets its deadline pass or drops
# the connection in the middle must leave the server well.
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
from lib import Server, Tally, pb_fields, pb_items  # noqa: E402

t = Tally()
KEYS = 8000  # of 1 KiB: an 8 MB reply, copied in several steps
PREFIX = b"/steps/"


def key(i):
    return PREFIX + b"%05d" % i


def value(i, write):
    head = b"%s@%d:" % (key(i), write)
    return head + b"." * (1024 - len(head))


def raw_range_request():
    body = b"\x0a" + bytes([len(PREFIX)]) + PREFIX + b"\x12" + bytes([len(PREFIX)]) + PREFIX[:-1] + b"0"
    return b"\x00" + struct.pack(">I", len(body)) + body


class Raw:
    """A raw HTTP/2 client: sends a Range and then does to the call what the test asks."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                         header_encoding="utf-8"))
        self.conn.initiate_connection()

    def send_range(self, extra_headers=()):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                                     (":path", "/etcdserverpb.KV/Range"), ("content-type", "application/grpc"),
                                     ("te", "trailers")] + list(extra_headers))
        self.conn.send_data(sid, raw_range_request(), end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        return sid

    def reset(self, sid):
        self.conn.reset_stream(sid)
        self.sock.sendall(self.conn.data_to_send())

    def read_statuses(self, n, seconds=20):
        """Reads until n streams have ended; returns their grpc-status values by stream id."""
        out, end = {}, time.monotonic() + seconds
        while len(out) < n and time.monotonic() < end:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not data:
                break
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if isinstance(ev, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
                    status = dict(ev.headers).get("grpc-status")
                    if status is not None:
                        out[ev.stream_id] = status
            self.sock.sendall(self.conn.data_to_send())
        return out

    def read_status(self, seconds=10):
        """Reads until a stream ends; returns its grpc-status (or None)."""
        return next(iter(self.read_statuses(1, seconds).values()), None)


def check_kvs(name, kvs):
    """Every value must be the one written with its key at its mod_revision."""
    wrong = [(m.key, m.mod_revision) for v, m in kvs if known.get((m.key, m.mod_revision)) != v]
    t.check(name, len(kvs) == KEYS and not wrong, "%d keys, %d wrong, e.g. %r" % (len(kvs), len(wrong), wrong[:3]))


def check_list(name):
    check_kvs(name, list(c.get_prefix(PREFIX)))


srv = Server("cetcd")
if not srv.ok():
    t.fail("server starts", srv.error)
    t.finish()
BIG = [("grpc.max_receive_message_length", 64 << 20)]
c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30, grpc_options=BIG)
known = {}
write_ids = iter(range(1, 1 << 30))


def load_and_remember():
    for start in range(0, KEYS, 100):
        w = next(write_ids)
        ids = list(range(start, min(start + 100, KEYS)))
        _, resp = c.transaction(compare=[], success=[c.transactions.put(key(i), value(i, w)) for i in ids],
                                 failure=[])
        for i in ids:
            known[(key(i), resp[0].response_put.header.revision)] = value(i, w)


load_and_remember()
check_list("a list of %d keys of 1 KiB, in steps" % KEYS)

# Lists while another client rewrites keys, compacts and defragments between (and during) the steps.
stop = threading.Event()
errors = []


def churn():
    cc = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    try:
        while not stop.is_set():
            load_and_remember()
            cc.compact(cc.get(key(0))[1].response_header.revision)
            cc.defragment()
    except Exception as e:  # noqa: BLE001
        errors.append(repr(e))


th = threading.Thread(target=churn)
th.start()
lists = [list(c.get_prefix(PREFIX)) for _ in range(6)]
stop.set()
th.join()
for n, kvs in enumerate(lists):  # checked once the writer has recorded all it wrote
    check_kvs("list %d during writes, compaction and Defragment: each value is its revision's" % n, kvs)
t.check("the writer saw no error", not errors, errors[:3])

# Other clients are served while a list is copied: small gets on another connection answer.
other = etcd3.client(host="127.0.0.1", port=srv.port, timeout=5)
lists = threading.Thread(target=lambda: [list(c.get_prefix(PREFIX)) for _ in range(5)])
lists.start()
answered = 0
while lists.is_alive():
    other.get(key(random.randrange(KEYS)))
    answered += 1
lists.join()
t.check("small gets answered while lists ran (%d)" % answered, answered > 0)

# A call reset, a deadline passed and a connection dropped in the middle of the steps.
raw = Raw(srv.port)
sid = raw.send_range()
raw.reset(sid)
sid = raw.send_range([("grpc-timeout", "1u")])
status = raw.read_status()
t.check("a Range whose deadline passes mid-copy ends (grpc-status %s)" % status, status in ("0", "4"))
raw2 = Raw(srv.port)
raw2.send_range()
raw2.sock.close()
raw.sock.close()
time.sleep(0.3)
t.check("the server is alive after resets, deadlines and drops", srv.alive(), srv.log_tail())
check_list("a list after them")
srv.stop()

# A reply being copied counts against the pool of replies held (--max-reply-pool-bytes): of five lists
# of 8 MB sent at once, with a pool of 20 MB, the first two fit and the later ones are refused.
srv = Server("cetcd", "--max-reply-pool-bytes", str(20 << 20), "--max-reply-bytes", str(16 << 20))
c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30, grpc_options=BIG)
load_and_remember()
raw = Raw(srv.port)
raw.conn.increment_flow_control_window(1 << 30)
for _ in range(5):
    raw.send_range()
codes = sorted(raw.read_statuses(5).values())
t.eq("five lists of 8 MB against a pool of 20 MB: two answered, three RESOURCE_EXHAUSTED", ["0", "0", "8", "8", "8"],
     codes)
t.check("the server is alive after them", srv.alive(), srv.log_tail())
srv.stop()
t.finish()
