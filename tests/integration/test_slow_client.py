#!/usr/bin/python3
# test_slow_client.py: a client that stops reading, or vanishes mid-stream, cannot grow the server's
# memory without bound nor stall other clients: 200 Ranges of a 1 MiB value are asked for and never
# read (200 MiB if buffered), while another client keeps working; then the reader goes away.
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.settings  # noqa: E402
from lib import Server, Tally  # noqa: E402

t = Tally()
REQUESTS = 200
BIG = 1 << 20


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0


def range_request(key):
    body = b"\x0a" + bytes([len(key)]) + key  # RangeRequest{key}
    return b"\x00" + struct.pack(">I", len(body)) + body


def open_silent_client(port):
    """An HTTP/2 client that asks for REQUESTS big Ranges and then reads nothing."""
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
    conn.increment_flow_control_window(2 ** 31 - 1 - 65535)
    sock.sendall(conn.data_to_send())
    for _ in range(REQUESTS):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                                (":path", "/etcdserverpb.KV/Range"), ("content-type", "application/grpc"),
                                ("te", "trailers")])
        conn.send_data(sid, range_request(b"big"), end_stream=True)
        sock.sendall(conn.data_to_send())
    return sock


def main():
    srv = Server("cetcd")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=5)
    c.put("big", b"x" * BIG)
    base = rss_mib(srv.pid)
    sock = open_silent_client(srv.port)
    time.sleep(2)  # let the server produce what it will
    grown = rss_mib(srv.pid) - base
    t.check("silent reader: RSS grew %.0f MiB, far below the %d MiB asked for" % (grown, REQUESTS),
            grown < REQUESTS / 2, "grew %.0f MiB" % grown)
    start = time.monotonic()
    c.put("other", "fine")
    value, _ = c.get("other")
    t.check("another client is served meanwhile", value == b"fine" and time.monotonic() - start < 2,
            "took %.2f s" % (time.monotonic() - start))
    sock.close()  # the reader vanishes with its replies unread
    time.sleep(1)
    t.check("server alive after the reader vanished", srv.alive(), srv.log_tail())
    after = rss_mib(srv.pid) - base
    # the dead connection's replies go back to the kernel at once (server.c trims after freeing them)
    t.check("memory given back (%.0f MiB above start)" % after, after < 4, "%.0f MiB" % after)
    value, _ = c.get("big")
    t.eq("big value still intact", BIG, len(value or b""))
    srv.stop()


main()
t.finish()
