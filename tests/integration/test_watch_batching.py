#!/usr/bin/python3
# test_watch_batching.py: a watcher whose client reads slowly gets the events made meanwhile in fewer,
# larger responses (held while its connection is busy, as etcd batches a watcher whose stream channel
# is full), still every event once, in revision order; and one that reads promptly still gets each
# event in a response of its own. A raw HTTP/2 client with a small flow-control window stands for the
# slow reader, so the server's queue, not the kernel's buffers, holds the backlog.
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
from lib import Server, Tally, pb_fields, pb_items  # noqa: E402

t = Tally()
KEY = b"batched"
WINDOW = 8192  # the slow reader's stream window: the server queues what does not fit
PUTS = 150
VALUE = b"v" * 1024


def grpc_frame(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


def watch_create(key):
    create = b"\x0a" + bytes([len(key)]) + key  # WatchCreateRequest{key}
    return b"\x0a" + bytes([len(create)]) + create  # WatchRequest{create_request}


class RawWatch:
    """One Watch stream over a raw HTTP/2 connection that reads only when asked."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                         header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW})
        self.sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.sid, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                                          (":path", "/etcdserverpb.Watch/Watch"),
                                          ("content-type", "application/grpc"), ("te", "trailers")])
        self.conn.send_data(self.sid, grpc_frame(watch_create(KEY)))
        self.sock.sendall(self.conn.data_to_send())
        self.buf = b""
        self.responses = []  # decoded WatchResponse field maps

    def pump(self, seconds):
        """Reads (and gives back window) for up to `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    self.buf += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            self.sock.sendall(self.conn.data_to_send())
            self._split()

    def _split(self):
        while len(self.buf) >= 5:
            n = struct.unpack(">I", self.buf[1:5])[0]
            if len(self.buf) < 5 + n:
                return
            self.responses.append(parse_with_events(self.buf[5:5 + n]))
            self.buf = self.buf[5 + n:]

    def events(self):
        """(revision of each event, events in each response carrying events)."""
        revs, sizes = [], []
        for r in self.responses:
            if r["_events"]:
                sizes.append(len(r["_events"]))
                revs += r["_events"]
        return revs, sizes


def parse_with_events(buf):
    """A WatchResponse's fields, and under "_events" every event's kv.mod_revision (field 11 repeats,
    which pb_fields would fold into its last)."""
    out = pb_fields(buf)
    out["_events"] = [pb_fields(pb_fields(v).get(2, b"")).get(4, 0) for f, v in pb_items(buf) if f == 11]
    return out


def run(slow):
    """PUTS puts of 1 KiB while the watcher reads (prompt) or not (slow); then it reads everything."""
    srv = Server("cetcd")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=5)
    w = RawWatch(srv.port)
    w.pump(0.5)  # the created response
    w.responses.clear()
    for _ in range(PUTS):
        c.put(KEY, VALUE)
        if not slow:
            w.pump(0.02)
    w.pump(3.0)
    revs, sizes = w.events()
    alive = srv.alive()
    srv.stop()
    return revs, sizes, alive


def main():
    revs, sizes, alive = run(slow=True)
    t.check("slow reader: server alive", alive)
    t.eq("slow reader: every event once", PUTS, len(revs))
    t.check("slow reader: in revision order, no gap", revs == list(range(revs[0], revs[0] + len(revs))) if revs
            else False, "revisions %s" % revs[:20])
    t.check("slow reader: fewer responses than events (%d for %d)" % (len(sizes), len(revs)),
            0 < len(sizes) <= PUTS * 2 // 3, "sizes %s" % sizes)
    revs, sizes, alive = run(slow=False)
    t.eq("prompt reader: every event once", PUTS, len(revs))
    t.check("prompt reader: in revision order, no gap", revs == list(range(revs[0], revs[0] + len(revs))) if revs
            else False)
    t.check("prompt reader: one response an event", sizes and max(sizes) <= 2, "sizes %s" % sizes)


main()
t.finish()
