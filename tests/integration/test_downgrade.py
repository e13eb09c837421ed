# test_downgrade.py: Maintenance/Downgrade (VALIDATE, ENABLE, CANCEL) as a one-member etcd 3.5 answers
# it, the job in Status.downgradeInfo, across restarts and a log compaction, admin-only with auth on,
# and the JSON gateway's /v3/maintenance/downgrade. Debian's etcd is 3.4, which lacks the method (its
# answer is UNIMPLEMENTED, checked below), so the expected strings and codes are etcd 3.5's source:
# server/etcdserver/v3_server.go (downgradeValidate/Enable/Cancel, convertToClusterVersion),
# errors.go and api/v3rpc/rpctypes/error.go.
import json
import os
import signal
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import grpc  # noqa: E402
from etcd3.etcdrpc import rpc_pb2 as pb  # noqa: E402
from etcd3.etcdrpc import rpc_pb2_grpc as stubs  # noqa: E402

from lib import Server, Tally, pb_fields as fields  # noqa: E402

# python-etcd3's generated code predates Downgrade, so its messages are encoded here by hand:
# DowngradeRequest {action = 1 (enum), version = 2}, DowngradeResponse {header = 1, version = 2},
# StatusResponse.downgradeInfo = 13 {enabled = 1, targetVersion = 2}.
VALIDATE, ENABLE, CANCEL = 0, 1, 2


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def downgrade_request(action, version):
    v = version.encode()
    msg = b""
    if action:
        msg += b"\x08" + varint(action)
    if v:
        msg += b"\x12" + varint(len(v)) + v
    return msg


class Client:
    def __init__(self, ep):
        self.ch = grpc.insecure_channel(ep)
        raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
        self.dg = self.ch.unary_unary("/etcdserverpb.Maintenance/Downgrade", **raw)
        self.status_raw = self.ch.unary_unary("/etcdserverpb.Maintenance/Status", **raw)
        self.kv = stubs.KVStub(self.ch)
        self.auth = stubs.AuthStub(self.ch)
        self.maint = stubs.MaintenanceStub(self.ch)

    def downgrade(self, action, version="", token=None):
        """('OK', version, header fields) or (code name, details, None)."""
        md = [("token", token)] if token else []
        try:
            r = fields(self.dg(downgrade_request(action, version), metadata=md, timeout=10))
        except grpc.RpcError as e:
            return (e.code().name, e.details(), None)
        return ("OK", r.get(2, b"").decode(), fields(r.get(1, b"")))

    def downgrade_info(self):
        """(enabled, targetVersion) from Status, or None if Status has no downgradeInfo."""
        r = fields(self.status_raw(b"", timeout=10))
        if 13 not in r:
            return None
        d = fields(r[13])
        return (bool(d.get(1, 0)), d.get(2, b"").decode())

    def close(self):
        self.ch.close()


def gateway(port, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v3/maintenance/downgrade" % port,
                                 data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"body": body.decode("utf-8", "replace")}


WRONG_FORMAT = ("INVALID_ARGUMENT", "etcdserver: wrong downgrade target version format", None)
INVALID_TARGET = ("INVALID_ARGUMENT", "etcdserver: invalid downgrade target version", None)
IN_PROGRESS = ("FAILED_PRECONDITION", "etcdserver: cluster has a downgrade job in progress", None)
NO_INFLIGHT = ("FAILED_PRECONDITION", "etcdserver: no inflight downgrade job", None)


def ok(r):
    return r[:2]


def validate_checks(t, c):
    # convertToClusterVersion: go-semver's "M.m.p[-pre][+meta]", or "M.m" retried with ".0"; patch dropped
    for v in ["3.4.0", "3.4", "3.4.9", "3.04.0", "3.4.1-rc.1+build.5", "3.4.0+", "3.4.0-"]:
        t.eq("VALIDATE %r: OK, the cluster version" % v, ("OK", "3.5.0"), ok(c.downgrade(VALIDATE, v)))
    for v in ["", "3", "abc", "3.4.x", "3.4-rc", "3.4.0.1", "v3.4.0", "3.4.0-a..b", " 3.4", "3.-4",
              "3.4.99999999999999999999"]:
        t.eq("VALIDATE %r: wrong format" % v, WRONG_FORMAT, c.downgrade(VALIDATE, v))
    # AllowedDowngradeVersion: exactly one minor lower than the cluster version 3.5
    for v in ["3.3.0", "3.5.0", "3.5", "3.6", "4.4.0", "2.4", "3.0"]:
        t.eq("VALIDATE %r: invalid target" % v, INVALID_TARGET, c.downgrade(VALIDATE, v))
    r = c.downgrade(VALIDATE, "3.4")
    rev = c.kv.Range(pb.RangeRequest(key=b"x"), timeout=10).header
    t.check("the response header is filled (member, cluster, revision, term)",
            r[2] is not None and r[2].get(2) == rev.member_id and r[2].get(1) == rev.cluster_id
            and r[2].get(3) == rev.revision and r[2].get(4) == rev.raft_term and rev.member_id != 0, r)
    t.eq("CANCEL with no job: no inflight downgrade job", NO_INFLIGHT, c.downgrade(CANCEL))
    t.eq("an action etcd does not know: Unknown, unknown method", ("UNKNOWN", "etcdserver: unknown method", None),
         c.downgrade(7, "3.4"))
    t.eq("Status before ENABLE: downgradeInfo not enabled", (False, ""), c.downgrade_info())


def enable_checks(t, c):
    t.eq("ENABLE with a wrong format", WRONG_FORMAT, c.downgrade(ENABLE, "3"))
    t.eq("ENABLE to 3.3: invalid target", INVALID_TARGET, c.downgrade(ENABLE, "3.3"))
    t.eq("Status after refused ENABLEs: still not enabled", (False, ""), c.downgrade_info())
    t.eq("ENABLE 3.4.2: OK, the cluster version", ("OK", "3.5.0"), ok(c.downgrade(ENABLE, "3.4.2")))
    t.eq("Status after ENABLE: enabled, target 3.4.0", (True, "3.4.0"), c.downgrade_info())
    t.eq("VALIDATE during the job: in progress", IN_PROGRESS, c.downgrade(VALIDATE, "3.4"))
    t.eq("ENABLE again: in progress", IN_PROGRESS, c.downgrade(ENABLE, "3.4"))
    t.eq("ENABLE to a wrong target during the job: invalid target first", INVALID_TARGET,
         c.downgrade(ENABLE, "3.3"))
    t.eq("ENABLE with a wrong format during the job: wrong format first", WRONG_FORMAT, c.downgrade(ENABLE, "x"))


def restart_checks(t, srv):
    t.check("SIGKILL restart", srv.restart(signal.SIGKILL), srv.log_tail())
    c = Client(srv.ep)
    t.eq("after a SIGKILL restart: the job is still enabled", (True, "3.4.0"), c.downgrade_info())
    t.check("the start logs the enabled job", "downgrade to 3.4.0 is enabled" in srv.log_tail(40),
            srv.log_tail(10))
    c.maint.Defragment(pb.DefragmentRequest(), timeout=60)  # a full log compaction copies the job forward
    c.close()
    t.check("restart after a defragment", srv.restart(), srv.log_tail())
    c = Client(srv.ep)
    t.eq("after a defragment and a restart: still enabled", (True, "3.4.0"), c.downgrade_info())
    t.eq("CANCEL: OK, the cluster version", ("OK", "3.5.0"), ok(c.downgrade(CANCEL)))
    t.eq("Status after CANCEL: not enabled, no target", (False, ""), c.downgrade_info())
    t.eq("CANCEL again: no inflight downgrade job", NO_INFLIGHT, c.downgrade(CANCEL))
    t.eq("VALIDATE after CANCEL: OK", ("OK", "3.5.0"), ok(c.downgrade(VALIDATE, "3.4")))
    c.maint.Defragment(pb.DefragmentRequest(), timeout=60)
    c.close()
    t.check("restart after CANCEL", srv.restart(signal.SIGKILL), srv.log_tail())
    c = Client(srv.ep)
    t.eq("after CANCEL, a defragment and a restart: not enabled", (False, ""), c.downgrade_info())
    c.close()


def gateway_checks(t, srv):
    # etcd's own e2e test (testV3CurlMaintenanceDowngrade) posts this and expects this message
    code, body = gateway(srv.port, {"action": 0, "version": "3.0"})
    t.eq("gateway VALIDATE 3.0: etcd's message", (400, "etcdserver: invalid downgrade target version"),
         (code, body.get("message")))
    code, body = gateway(srv.port, {"action": "VALIDATE", "version": "3.4"})
    t.eq("gateway VALIDATE 3.4: the cluster version", (200, "3.5.0"), (code, body.get("version")))
    t.check("gateway reply has a header", "header" in body and "revision" in body["header"], body)


def auth_checks(t):
    srv = Server("cetcd")
    t.check("cetcd with auth starts", srv.ok(), srv.log_tail())
    c = Client(srv.ep)
    for name, pw in [("root", "rootpw"), ("alice", "apw")]:
        c.auth.UserAdd(pb.AuthUserAddRequest(name=name, password=pw), timeout=10)
    c.auth.UserGrantRole(pb.AuthUserGrantRoleRequest(user="root", role="root"), timeout=10)
    c.auth.AuthEnable(pb.AuthEnableRequest(), timeout=10)
    root = c.auth.Authenticate(pb.AuthenticateRequest(name="root", password="rootpw"), timeout=10).token
    alice = c.auth.Authenticate(pb.AuthenticateRequest(name="alice", password="apw"), timeout=10).token
    denied = ("UNKNOWN", "auth: permission denied", None)
    t.eq("auth on, non-root VALIDATE: permission denied", denied, c.downgrade(VALIDATE, "3.4", alice))
    t.eq("auth on, non-root ENABLE: permission denied", denied, c.downgrade(ENABLE, "3.4", alice))
    t.eq("auth on, no token: user name is empty", ("UNKNOWN", "auth: user name is empty", None),
         c.downgrade(ENABLE, "3.4"))
    t.eq("auth on, non-root refused: still not enabled", (False, ""), c.downgrade_info())
    t.eq("auth on, root ENABLE: OK", ("OK", "3.5.0"), ok(c.downgrade(ENABLE, "3.4", root)))
    t.eq("auth on, non-root CANCEL: permission denied", denied, c.downgrade(CANCEL, "", alice))
    t.eq("auth on, root CANCEL: OK", ("OK", "3.5.0"), ok(c.downgrade(CANCEL, "", root)))
    c.close()
    srv.stop()


def etcd34_checks(t):
    # Debian's etcd is 3.4.23: Downgrade came in 3.5, so 3.4 answers UNIMPLEMENTED and cannot be the
    # reference; the expectations above come from etcd 3.5's source.
    ref = Server("etcd")
    if not ref.ok():
        t.fail("etcd 3.4 starts", ref.error)
        return
    c = Client(ref.ep)
    code = c.downgrade(VALIDATE, "3.3")[0]
    t.eq("etcd 3.4 answers Downgrade with UNIMPLEMENTED", "UNIMPLEMENTED", code)
    t.eq("etcd 3.4's Status has no downgradeInfo", None, c.downgrade_info())
    c.close()
    ref.stop()


def main():
    t = Tally()
    srv = Server("cetcd")
    t.check("cetcd starts", srv.ok(), srv.log_tail())
    c = Client(srv.ep)
    validate_checks(t, c)
    enable_checks(t, c)
    c.close()
    restart_checks(t, srv)
    gateway_checks(t, srv)
    srv.stop()
    auth_checks(t)
    etcd34_checks(t)
    t.finish()


if __name__ == "__main__":
    main()
