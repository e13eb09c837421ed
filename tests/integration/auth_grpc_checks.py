# auth_grpc_checks.py: gRPC-level auth checks against cetcd that etcdctl 3.4 cannot make (run by
# auth_cetcd_checks.sh, which compares the printed lines with what is expected): AuthStatus, the
# "token" and "authorization" metadata, simple-token format and expiry, a nested txn, and that a slow
# bcrypt in Authenticate (gRPC, or the JSON gateway's) does not hold other calls back.
import json
import os
import re
import sys
import threading
import time
import urllib.request

import grpc
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.etcdrpc import rpc_pb2_grpc as stubs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lib import pb_fields  # noqa: E402


class Client:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.ch = grpc.insecure_channel(endpoint)
        self.kv = stubs.KVStub(self.ch)
        self.auth = stubs.AuthStub(self.ch)
        self.maint = stubs.MaintenanceStub(self.ch)
        self.status_call = self.ch.unary_unary(
            "/etcdserverpb.Auth/AuthStatus",
            request_serializer=lambda _: b"",
            response_deserializer=lambda b: b,
        )

    def token(self, name, password):
        return self.auth.Authenticate(pb.AuthenticateRequest(name=name, password=password), timeout=10).token


def outcome(fn):
    """'ok ...' or the gRPC status of a failed call."""
    try:
        r = fn()
        return "ok" if r is None else "ok " + r
    except grpc.RpcError as e:
        return "%s %s" % (e.code().name, e.details())


def md(token, key="token"):
    return [(key, token)] if token is not None else []


def main_checks(c):
    root = c.token("root", "rootpw")
    alice = c.token("alice", "apw")
    print("token_format:", bool(re.fullmatch(r"[A-Za-z]{16}\.[0-9]+", root)))

    def status(tok):
        r = pb_fields(c.status_call(None, metadata=md(tok), timeout=5))
        return "enabled=%d revision=%d" % (r.get(2, 0), r.get(3, 0))

    print("status_root:", outcome(lambda: status(root)))
    print("status_anon:", outcome(lambda: status(None)))
    print("status_alice:", outcome(lambda: status(alice)))

    def get(tok, key=b"/a/x", mdkey="token"):
        r = c.kv.Range(pb.RangeRequest(key=key), metadata=md(tok, mdkey), timeout=5)
        return "count=%d" % r.count

    print("range_token:", outcome(lambda: get(alice)))
    print("range_authorization:", outcome(lambda: get(alice, mdkey="authorization")))
    print("range_bogus:", outcome(lambda: get("abcdefghijklmnop.1")))
    print("range_too_long:", outcome(lambda: get("x" * 5000)))
    print("range_denied:", outcome(lambda: get(alice, b"/b/x")))

    # a nested txn is checked too (etcd 3.4 and 3.5 skip its ops; etcd main checks them)
    inner = pb.TxnRequest(success=[pb.RequestOp(request_put=pb.PutRequest(key=b"/a/x", value=b"9"))])
    outer = pb.TxnRequest(success=[pb.RequestOp(request_txn=inner)])
    print("nested_txn_put:", outcome(lambda: str(c.kv.Txn(outer, metadata=md(alice), timeout=5).succeeded)))
    inner_read = pb.TxnRequest(success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"/a/x"))])
    outer_read = pb.TxnRequest(success=[pb.RequestOp(request_txn=inner_read)])
    print("nested_txn_read:", outcome(lambda: str(c.kv.Txn(outer_read, metadata=md(alice), timeout=5).succeeded)))

    # etcd main checks a watch's range as given; etcd 3.4 and 3.5 turn range_end "\0" into "" first and
    # so check only the start key: a from-key watch escaped a prefix permission
    def watch(key, end):
        watch = stubs.WatchStub(c.ch)
        req = pb.WatchRequest(create_request=pb.WatchCreateRequest(key=key, range_end=end))
        for r in watch.Watch(iter([req]), metadata=md(alice), timeout=5):
            return "canceled " + r.cancel_reason if r.canceled else "created"

    print("watch_prefix:", watch(b"/a/", b"/a0"))
    print("watch_from_key:", watch(b"/a/x", b"\0"))

    # a changed password ends the user's tokens
    c.auth.UserChangePassword(pb.AuthUserChangePasswordRequest(name="alice", password="apw2"),
                              metadata=md(root), timeout=10)
    print("after_passwd:", outcome(lambda: get(alice)))
    c.auth.UserChangePassword(pb.AuthUserChangePasswordRequest(name="alice", password="apw"),
                              metadata=md(root), timeout=10)


def expiry_checks(c):
    """--auth-token-ttl 2: a token unused for longer is gone; one in use lives on."""
    idle = c.token("alice", "apw")
    busy = c.token("alice", "apw")
    results = []
    for _ in range(4):
        time.sleep(1.2)
        results.append(outcome(lambda: c.kv.Range(pb.RangeRequest(key=b"/a/x"), metadata=md(busy),
                                                   timeout=5) and None))
    print("busy_token:", " ".join(sorted(set(results))))
    print("idle_token:", outcome(lambda: c.kv.Range(pb.RangeRequest(key=b"/a/x"), metadata=md(idle),
                                                     timeout=5) and None))


def loop_checks(c, via_gateway=False):
    """Hashes at a high --bcrypt-cost take long; other calls are served meanwhile. via_gateway: the
    Authenticate is a POST to the JSON gateway's /v3/auth/authenticate instead of a gRPC call."""
    took = {}

    def authenticate():
        t0 = time.monotonic()
        if via_gateway:
            req = urllib.request.Request("http://%s/v3/auth/authenticate" % c.endpoint, method="POST",
                                         data=b'{"name":"root","password":"rootpw"}')
            with urllib.request.urlopen(req, timeout=60) as r:
                took["token"] = json.loads(r.read()).get("token")
        else:
            took["token"] = c.token("root", "rootpw")
        took["auth"] = time.monotonic() - t0

    t = threading.Thread(target=authenticate)
    t.start()
    time.sleep(0.05)
    worst = 0.0
    while t.is_alive():
        t0 = time.monotonic()
        c.maint.Status(pb.StatusRequest(), timeout=5)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.01)
    t.join()
    # On the loop, a Status sent during the hash would wait for all of it; off the loop, it waits for
    # none of it. Compared with the hash's own time, so that a fast machine does not fail the check.
    print("authenticate_slow:", took["auth"] > 0.2 and bool(took["token"]))
    print("status_meanwhile_fast:", worst < took["auth"] / 4)
    print("timings: authenticate %.3fs, slowest status %.3fs" % (took["auth"], worst), file=sys.stderr)


if __name__ == "__main__":
    client = Client(sys.argv[1])
    {"main": main_checks, "expiry": expiry_checks, "loop": loop_checks,
     "gateway-loop": lambda c: loop_checks(c, via_gateway=True)}[sys.argv[2]](client)
