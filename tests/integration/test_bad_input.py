#!/usr/bin/python3
# test_bad_input.py: malformed and oversized input on the client port (garbage bytes, broken HTTP/2
# frames, broken gRPC framing, bad protobuf, a 2 MiB Put, unknown methods) must get an error and leave
# the server up and serving. The same probes run against real etcd first; its answers are printed.
import os
import random
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import grpc  # noqa: E402
import etcd3  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
from lib import Server, Tally  # noqa: E402

T = Tally()
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload, length=None):
    n = len(payload) if length is None else length
    return n.to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


SETTINGS = frame(4, 0, 0, b"")
# Broken frames after which a server may keep the connection open (etcd's Go server answers an even
# stream id without closing); after every other one it must close.
STREAM_ERRORS = ("even_stream_id",)


def raw_exchange(port, data, wait=3.0, half_close=False):
    """Sends raw bytes; returns (bytes received, how it ended: 'closed' | 'reset' | 'timeout')."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    out, how = b"", "timeout"
    try:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        deadline = time.time() + wait
        while time.time() < deadline:
            d = sock.recv(65536)
            if not d:
                how = "closed"
                break
            out += d
    except socket.timeout:
        pass
    except OSError:   # reset, broken pipe, or not connected any more after a reset
        how = "reset"
    finally:
        sock.close()
    return out, how


def grpc_call(srv, path, body=b"", prefix=None, wait=5.0):
    """One gRPC call written with python3-h2: HEADERS, one DATA with END_STREAM (prefix overrides the
    5-byte gRPC message prefix). Returns a dict describing what came back."""
    res = {"headers": {}, "data": b"", "reset": None, "goaway": None, "end": None}
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=wait)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
                            (":authority", srv.ep), ("content-type", "application/grpc"), ("te", "trailers")])
    if prefix is None:
        prefix = b"\0" + len(body).to_bytes(4, "big")
    conn.send_data(sid, prefix + body, end_stream=True)
    deadline = time.time() + wait
    try:
        sock.sendall(conn.data_to_send())
        while time.time() < deadline and res["end"] is None:
            d = sock.recv(65536)
            if not d:
                res["end"] = "closed"
                break
            for ev in conn.receive_data(d):
                if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    res["headers"].update(dict(ev.headers))
                elif isinstance(ev, h2.events.DataReceived):
                    res["data"] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    res["reset"] = int(ev.error_code)
                    res["end"] = "reset"
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    res["goaway"] = int(ev.error_code)
                    res["end"] = "goaway"
                elif isinstance(ev, h2.events.StreamEnded):
                    res["end"] = "ended"
            sock.sendall(conn.data_to_send())
    except socket.timeout:
        res["end"] = "timeout"
    except OSError:
        res["end"] = "tcp-reset"
    finally:
        sock.close()
    return res


def describe(res):
    h = res["headers"]
    return "end=%s :status=%s grpc-status=%s grpc-message=%r reset=%s goaway=%s" % (
        res["end"], h.get(":status"), h.get("grpc-status"), h.get("grpc-message"), res["reset"], res["goaway"])


def serving(srv, tag):
    """The server is up and both python3-etcd3 and etcdctl can write and read through it."""
    if not srv.alive():
        return False, "process exited: " + srv.log_tail()
    try:
        c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=5)
        c.put("alive/" + tag, tag)
        v, _ = c.get("alive/" + tag)
        c.close()
        if v != tag.encode():
            return False, "python read back %r" % (v,)
    except Exception as e:
        return False, "python client: %s" % (e,)
    r = subprocess.run(["etcdctl", "--endpoints", srv.ep, "--command-timeout=5s", "get", "alive/" + tag,
                        "--print-value-only"], env=dict(os.environ, ETCDCTL_API="3"),
                       capture_output=True, timeout=15)
    if r.returncode != 0 or r.stdout.strip() != tag.encode():
        return False, "etcdctl: rc=%d out=%r err=%r" % (r.returncode, r.stdout, r.stderr[-300:])
    return True, ""


def probes(srv):
    """Runs every probe; yields (name, passed, observation)."""
    # (a) garbage instead of the HTTP/2 preface: closed, or an HTTP/1.1 400
    rnd = random.Random(7)
    garbage = {
        "text": b"GARBAGE\r\n\r\n",
        "tls_hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(rnd.randrange(256) for _ in range(160)),
        "random_64k": bytes(rnd.randrange(256) for _ in range(65536)),
        "bad_preface": b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
        "nul_bytes": b"\0" * 100,
        "half_line": b"GET /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n{",
    }
    for name, data in garbage.items():
        out, how = raw_exchange(srv.port, data, half_close=(name != "half_line"))
        good = (how in ("closed", "reset") and (out == b"" or out.startswith(b"HTTP/1.1 4"))) or \
            out.startswith(b"HTTP/1.1 400")
        if name == "half_line":   # a well-formed but unfinished HTTP/1.1 request: wait for the body, or
            good = out == b"" or out.startswith(b"HTTP/1.1 4")   # refuse it; never answer it as complete
            yield "garbage %s: not answered as complete" % name, good, "%s %r" % (how, out[:80])
        else:
            yield "garbage %s: closed or 400" % name, good, "%s %r" % (how, out[:80])
        ok, why = serving(srv, "garbage-" + name)
        yield "garbage %s: still serving" % name, ok, why
    out, how = raw_exchange(srv.port, b"", half_close=True)
    ok, why = serving(srv, "empty")
    yield "connect and close at once: still serving", ok, why

    # (b) a valid preface + SETTINGS, then broken frames, then close
    broken = {
        "truncated_headers": PREFACE + SETTINGS + frame(1, 4, 1, b"\x82\x86", length=100),
        "truncated_frame_header": PREFACE + SETTINGS + b"\x00\x00\x10\x01",
        "data_on_stream_0": PREFACE + SETTINGS + frame(0, 1, 0, b"hello"),
        "bad_hpack": PREFACE + SETTINGS + frame(1, 5, 1, b"\xff\xff\xff\xff\xff\xff\xff\x7f"),
        "huge_frame_len": PREFACE + SETTINGS + frame(0, 0, 1, b"x" * 10, length=0xFFFFFF),
        "settings_bad_len": PREFACE + frame(4, 0, 0, b"\0\0\0"),
        "window_update_0": PREFACE + SETTINGS + frame(8, 0, 0, b"\0\0\0\0"),
        "even_stream_id": PREFACE + SETTINGS + frame(1, 5, 2, b"\x82\x86\x84"),
    }
    for name, data in broken.items():
        # truncated input is followed by our close; a protocol error should make the server speak first
        out, how = raw_exchange(srv.port, data, wait=1.0, half_close=name.startswith("truncated"))
        types = _frame_types(out)
        if name in STREAM_ERRORS:   # the connection may stay open, but RST_STREAM or GOAWAY must come
            good = how in ("closed", "reset") or 3 in types or 7 in types
        else:                       # the server must end the connection within the second
            good = how in ("closed", "reset")
        yield "h2 %s: no hang" % name, good, "%s, %d bytes back" % (how, len(out))
        if name in ("data_on_stream_0", "bad_hpack", "settings_bad_len", "huge_frame_len"):
            # docs/architecture.md: a connection error gets a GOAWAY (frame type 7); etcd's Go server
            # just closes
            yield "h2 %s: GOAWAY sent (docs/architecture.md rule)" % name, 7 in types, "frame types %r" % (list(types),)
        if name == "even_stream_id":
            yield "h2 %s: GOAWAY or RST_STREAM" % name, 7 in types or 3 in types, "frame types %r" % (list(types),)
        ok, why = serving(srv, "h2-" + name)
        yield "h2 %s: still serving" % name, ok, why

    # (c) gRPC framing that lies about its length
    for name, prefix, body in (("length_100_sent_3", b"\0\0\0\0\x64", b"\x0a\x01a"),
                               ("prefix_only_2_bytes", b"\0\0", b""),
                               ("length_4GiB", b"\0\xff\xff\xff\xff", b"\x0a\x01a")):
        res = grpc_call(srv, "/etcdserverpb.KV/Range", body, prefix=prefix)
        st = res["headers"].get("grpc-status")
        good = (st is not None and st != "0") or res["end"] in ("reset", "goaway")
        yield "grpc %s: error status or reset" % name, good, describe(res)
        ok, why = serving(srv, "grpc-" + name)
        yield "grpc %s: still serving" % name, ok, why

    # (d) a body that is not protobuf
    for method in ("Range", "Put", "DeleteRange", "Txn", "Compact"):
        res = grpc_call(srv, "/etcdserverpb.KV/" + method, b"\xff\xff\xff")
        st = res["headers"].get("grpc-status")
        yield "bad protobuf %s: grpc-status 13, as grpc-go" % method, st == "13", describe(res)
    ok, why = serving(srv, "badpb")
    yield "bad protobuf: still serving", ok, why
    # an unknown field numbered 0 (a non-minimal tag): Go refuses it; protobuf-c takes it in, and the
    # calls that keep a copy of their request while they hash used to abort (fuzz_rpc)
    for method in ("Authenticate", "UserAdd", "UserChangePassword"):
        res = grpc_call(srv, "/etcdserverpb.Auth/" + method, b"\x82\x00\x00")
        st = res["headers"].get("grpc-status")
        yield "field number 0 in %s: grpc-status 13, as grpc-go" % method, st == "13", describe(res)
    ok, why = serving(srv, "field0")
    yield "field number 0: still serving", ok, why

    # (e) oversized requests through python3-etcd3
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
    for name, size in (("2MiB", 2 * 1024 * 1024), ("1.6MiB", int(1.6 * 1024 * 1024))):
        try:
            c.kvstub.Put(etcdrpc.PutRequest(key=b"big", value=b"x" * size), timeout=10)
            obs = "OK (accepted)"
        except grpc.RpcError as e:
            obs = "%s %s" % (e.code().name, e.details())
        yield "put %s: rejected" % name, not obs.startswith("OK"), obs
    try:
        c.kvstub.Put(etcdrpc.PutRequest(key=b"big14", value=b"x" * int(1.4 * 1024 * 1024)), timeout=10)
        obs = "OK"
    except grpc.RpcError as e:
        obs = "%s %s" % (e.code().name, e.details())
    yield "put 1.4MiB: accepted", obs == "OK", obs
    try:
        c.put("after-big", "small")
        v, _ = c.get("after-big")
        big, _ = c.get("big")
        obs = "after-big=%r big=%r" % (v, big and len(big))
        good = v == b"small" and big is None
    except Exception as e:
        obs, good = "error %s" % e, False
    yield "same client after big puts: small put works, big not stored", good, obs
    c.close()
    ok, why = serving(srv, "big")
    yield "big puts: still serving", ok, why

    # (f) unknown methods and services
    for path in ("/etcdserverpb.KV/Nope", "/foo.Bar/Baz", "/etcdserverpb.KV/"):
        res = grpc_call(srv, path, b"")
        yield "unknown %s: grpc-status 12" % path, res["headers"].get("grpc-status") == "12", describe(res)
        yield "unknown %s: :status 200" % path, res["headers"].get(":status") == "200", describe(res)
    ok, why = serving(srv, "final")
    yield "at the end: still serving", ok, why


def _frame_types(data):
    """The frame types in a server's byte stream (the server speaks HTTP/2 without a preface)."""
    types, i = [], 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        types.append(data[i + 3])
        i += 9 + n
    return bytes(types)


def main():
    kinds = ["etcd", "cetcd"]
    if os.environ.get("KV_SELFTEST") == "1":
        kinds = ["etcd", "etcd"]
    seen = {}
    for idx, kind in enumerate(kinds):
        label = kind if idx == 0 or kinds[0] != kind else kind + "#2"
        srv = Server(kind)
        if not srv.ok():
            T.fail("%s starts" % label, "%s\n%s" % (srv.error, srv.log_tail()))
            continue
        for name, good, obs in probes(srv):
            if label == "etcd":
                seen[name] = obs
                # etcd is the reference: a probe etcd fails is a wrong probe; show it but do not count it
                print("%s etcd: %s  [%s]" % ("info" if good else "info (etcd fails this one)", name, obs))
                continue
            if good:
                T.ok("%s: %s%s" % (label, name, "  [%s]" % obs[:160] if obs else ""))
            else:
                T.fail("%s: %s" % (label, name), "%s\netcd: %s" % (obs, seen.get(name, "?")))
            if name.startswith("put 2MiB") or name.startswith("put 1.6MiB"):
                T.eq("%s: %s, same code and message as etcd" % (label, name.split(":")[0]), seen.get(name), obs)
        srv.stop()
    T.finish()


main()
