#!/usr/bin/python3
# test_lease_python.py: the Lease service through python3-etcd3's generated gRPC stubs, where etcdctl
# cannot reach: client-chosen ids, duplicate ids, TTL bounds, TimeToLive of a missing lease, a
# keep-alive stream mixing live and unknown ids, revoke revisions, leases in a Txn, remaining-TTL
# arithmetic. Each check runs on a fresh real etcd and a fresh cetcd; the answers must be equal.
# Then cetcd alone under load: 10k leases each with a key expire by themselves (all keys deleted,
# one revision per lease, the server answering reads meanwhile), and again as one burst after a
# restart (every recovered lease is renewed for its TTL + 1 s, so they all come due together).
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import grpc  # noqa: E402
import etcd3  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from lib import Server, Tally  # noqa: E402

T = Tally()
TIMEOUT = 5
STRESS_N = int(os.environ.get("LEASE_STRESS_N", "10000"))


def norm(text):
    return re.sub(r"(cluster_id|member_id|raft_term): \d+", r"\1: X", text)


def show(resp):
    if isinstance(resp, etcdrpc.LeaseTimeToLiveResponse):  # etcd lists a lease's keys in Go map order
        resp.keys.sort()
    return norm(text_format.MessageToString(resp, as_one_line=True))


def call(method, req):
    try:
        return show(method(req, timeout=TIMEOUT))
    except grpc.RpcError as e:
        return "ERR %s %s" % (e.code().name, e.details())


def stubs(port):
    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    return ch, etcdrpc.LeaseStub(ch), etcdrpc.KVStub(ch)


def G(ttl, id=0):
    return etcdrpc.LeaseGrantRequest(TTL=ttl, ID=id)


def watch_deletes(ch, key, end):
    """Starts a watch on [key, end) with prev_kv; returns a function that waits (up to 8 s) for the
    first response carrying events and returns it as text."""
    import queue
    import threading
    stop = threading.Event()
    got = queue.Queue()

    def reqs():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=key, range_end=end, prev_kv=True))
        stop.wait(10)

    def run():
        try:
            for r in etcdrpc.WatchStub(ch).Watch(reqs(), timeout=10):
                if r.events:
                    got.put(show(r))
                    return
        except grpc.RpcError as e:
            got.put("ERR %s %s" % (e.code().name, e.details()))

    threading.Thread(target=run, daemon=True).start()

    def result():
        try:
            return got.get(timeout=8)
        except queue.Empty:
            return "no events"
        finally:
            stop.set()
    return result


def scenario(port):
    """Yields (name, answer) pairs; the same sequence on every server, so revisions line up."""
    ch, lease, kv = stubs(port)
    auto = lease.LeaseGrant(G(10), timeout=TIMEOUT)
    yield "auto_id_positive", auto.ID > 0
    yield "auto_id_grant", show(auto).replace("ID: %d " % auto.ID, "ID: AUTO ")
    autos = {lease.LeaseGrant(G(100), timeout=TIMEOUT).ID for _ in range(20)} | {auto.ID}
    yield "auto_ids_unique", len(autos) == 21
    yield "auto_ids_positive", all(i > 0 for i in autos)
    yield "grant_client_id", call(lease.LeaseGrant, G(10, 12345))
    yield "grant_duplicate", call(lease.LeaseGrant, G(20, 12345))
    yield "grant_negative_id", call(lease.LeaseGrant, G(30, -7))
    yield "grant_negative_ttl", call(lease.LeaseGrant, G(-3, 501))
    yield "grant_ttl_1", call(lease.LeaseGrant, G(1, 502))
    yield "grant_ttl_2", call(lease.LeaseGrant, G(2, 503))
    yield "grant_ttl_3", call(lease.LeaseGrant, G(3, 504))
    yield "grant_too_large", call(lease.LeaseGrant, G(9000000001, 505))
    yield "grant_too_large_is_not_granted", call(lease.LeaseTimeToLive, etcdrpc.LeaseTimeToLiveRequest(ID=505))
    yield "grant_max_ttl", call(lease.LeaseGrant, G(9000000000, 506))
    yield "grant_max_id", call(lease.LeaseGrant, G(50, 2**63 - 1))
    for id in (501, 502, 503, 504, 506, 2**63 - 1, -7):
        lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=id), timeout=TIMEOUT)

    P = lambda k, l, **kw: call(kv.Put, etcdrpc.PutRequest(key=k, value=b"v", lease=l, **kw))  # noqa: E731
    yield "put_lease_a", P(b"a", 12345)
    yield "put_lease_b", P(b"b", 12345)
    yield "put_lease_c_prev", P(b"c", 12345, prev_kv=True)
    yield "put_unknown_lease", P(b"x", 777)
    yield "put_negative_unknown_lease", P(b"x", -9)
    yield "txn_unknown_lease", call(kv.Txn, etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
        request_put=etcdrpc.PutRequest(key=b"t", value=b"v", lease=777))]))
    yield "txn_lease_put", call(kv.Txn, etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
        request_put=etcdrpc.PutRequest(key=b"t", value=b"v", lease=12345))]))

    TTL = lambda id, keys=False: call(lease.LeaseTimeToLive, etcdrpc.LeaseTimeToLiveRequest(ID=id, keys=keys))  # noqa
    yield "ttl_keys", TTL(12345, True)
    yield "ttl_no_keys", TTL(12345)
    yield "ttl_missing", TTL(999, True)
    yield "ttl_zero", TTL(0)
    yield "ttl_negative_missing", TTL(-12345)

    def ka(ids):
        reqs = iter([etcdrpc.LeaseKeepAliveRequest(ID=i) for i in ids])
        try:
            return [show(r) for r in lease.LeaseKeepAlive(reqs, timeout=TIMEOUT)]
        except grpc.RpcError as e:
            return "ERR %s %s" % (e.code().name, e.details())
    yield "keepalive_mixed", ka([12345, 999, 12345, 0, -7])
    yield "keepalive_empty_stream", ka([])

    # remaining TTL: etcd truncates the seconds left (10 s granted, 1.5 s later: 8)
    lease.LeaseGrant(G(10, 4242), timeout=TIMEOUT)
    time.sleep(1.5)
    yield "ttl_truncated", TTL(4242)
    yield "keepalive_renews", ka([4242])
    yield "ttl_after_renew", TTL(4242)

    yield "leases_by_expiry", re.sub(r"ID: (\d+) ", lambda m: "ID: AUTO " if int(m.group(1)) in autos else m.group(0),
                                     call(lease.LeaseLeases, etcdrpc.LeaseLeasesRequest()))

    R = lambda id: call(lease.LeaseRevoke, etcdrpc.LeaseRevokeRequest(ID=id))  # noqa: E731
    yield "revoke_with_keys", R(12345)   # a, b, c, t deleted: one revision
    yield "range_after_revoke", call(kv.Range, etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"))
    yield "revoke_without_keys", R(4242)  # no revision
    yield "revoke_again", R(12345)
    yield "revoke_zero", R(0)
    yield "keepalive_revoked", ka([12345])
    yield "ttl_revoked", TTL(12345, True)
    yield "lease_reuse_id_after_revoke", call(lease.LeaseGrant, G(5, 12345))
    yield "put_after_regrant", P(b"a", 12345)

    # expiry: a 2 s lease (min TTL) with two keys goes by itself, its keys in one revision, which a
    # watcher (with prev_kv) sees as one response of two DELETE events
    lease.LeaseGrant(G(2, 8888), timeout=TIMEOUT)
    P(b"e1", 8888)
    P(b"e2", 8888)
    w = watch_deletes(ch, b"e", b"f")
    rev = kv.Range(etcdrpc.RangeRequest(key=b"e1"), timeout=TIMEOUT).header.revision
    deadline = time.time() + 6
    while time.time() < deadline and kv.Range(etcdrpc.RangeRequest(key=b"e", range_end=b"f", count_only=True),
                                              timeout=TIMEOUT).count:
        time.sleep(0.1)
    after = kv.Range(etcdrpc.RangeRequest(key=b"e", range_end=b"f", count_only=True), timeout=TIMEOUT)
    yield "expired_keys_gone", after.count
    yield "expiry_watch_events", w()
    yield "expiry_one_revision", after.header.revision - rev
    yield "keepalive_expired", ka([8888])
    yield "ttl_expired", TTL(8888)
    lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=12345), timeout=TIMEOUT)
    for id in autos:
        lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=id), timeout=TIMEOUT)
    ch.close()


def compare():
    ref = Server("etcd")
    if not ref.ok():
        T.fail("etcd starts", ref.error)
        return
    want = list(scenario(ref.port))
    ref.stop()
    srv = Server("cetcd")
    if not srv.ok():
        T.fail("cetcd starts", srv.error + "\n" + srv.log_tail())
        return
    try:
        got = dict(scenario(srv.port))
    except Exception as e:  # a crash mid-scenario: every remaining check fails
        got = {}
        T.fail("scenario ran to the end on cetcd", repr(e))
    for name, answer in want:
        T.eq(name, answer, got.get(name, "<missing>"))
    T.check("cetcd alive after the scenario", srv.alive(), srv.log_tail())
    srv.stop()


# ---------- load: 10k leases, each with a key ----------

TXN_PUTS = 100  # puts per Txn (etcd's limit is 128 operations)


def grant_and_attach(lease, kv, n, ttl, base_id, prefix, batch=1000):
    """Grants n leases (ids base_id..) and puts one key on each, TXN_PUTS keys per Txn (each key on its
    own lease); returns how many keys were put."""
    ok = 0
    for start in range(0, n, batch):
        ids = list(range(base_id + start, base_id + min(start + batch, n)))
        for f in [lease.LeaseGrant.future(G(ttl, i), timeout=30) for i in ids]:
            f.result()
        txns = []
        for j in range(0, len(ids), TXN_PUTS):
            ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                key=prefix + b"%06d" % (i - base_id), value=b"x", lease=i)) for i in ids[j:j + TXN_PUTS]]
            txns.append((len(ops), kv.Txn.future(etcdrpc.TxnRequest(success=ops), timeout=30)))
        for k, f in txns:
            f.result()
            ok += k
    return ok


def count(kv, prefix):
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    r = kv.Range(etcdrpc.RangeRequest(key=prefix, range_end=end, count_only=True), timeout=TIMEOUT)
    return r.count, r.header.revision


def wait_all_expired(kv, prefix, limit):
    """Polls until no key is left; returns (seconds waited, slowest read, count left)."""
    t0 = time.time()
    slowest = 0.0
    left = -1
    while time.time() - t0 < limit:
        a = time.time()
        left, _ = count(kv, prefix)
        slowest = max(slowest, time.time() - a)
        if left == 0:
            break
        time.sleep(0.05)
    return time.time() - t0, slowest, left


def stress():
    srv = Server("cetcd")
    if not srv.ok():
        T.fail("stress: cetcd starts", srv.error)
        return
    n = STRESS_N
    ch, lease, kv = stubs(srv.port)
    # 1. short leases expire while the rest are still being written
    _, rev0 = count(kv, b"s/")
    t0 = time.time()
    written = grant_and_attach(lease, kv, n, 3, 1_000_000, b"s/")
    took = time.time() - t0
    T.eq("stress: %d leases granted, a key put on each (%.1f s)" % (n, took), n, written)
    waited, slowest, left = wait_all_expired(kv, b"s/", 15)
    T.eq("stress: every key deleted by expiry (%.1f s after the last put)" % waited, 0, left)
    T.check("stress: reads answered during expiry (slowest < 1 s)", slowest < 1.0, "%.3f s" % slowest)
    _, rev1 = count(kv, b"s/")
    T.eq("stress: one revision per Txn of puts and one per expired lease", n + -(-n // TXN_PUTS), rev1 - rev0)
    T.eq("stress: no lease left", 0, len(lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=TIMEOUT).leases))

    # 2. one burst after a restart: every recovered lease is renewed for TTL + 1 s from the restart,
    # so leases written seconds earlier must not expire sooner, and then all come due together
    ttl = max(4, int(took) + 3)
    written = grant_and_attach(lease, kv, n, ttl, 2_000_000, b"r/")
    ch.close()
    t_restart = time.time()
    ok = srv.restart()
    T.check("stress: cetcd restarts with %d leases" % n, ok and written == n, srv.log_tail())
    if not ok:
        return
    ch, lease, kv = stubs(srv.port)
    c, rev0 = count(kv, b"r/")
    T.eq("stress: leased keys recovered", n, c)
    T.eq("stress: leases recovered", n, len(lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=TIMEOUT).leases))
    r = lease.LeaseTimeToLive(etcdrpc.LeaseTimeToLiveRequest(ID=2_000_000), timeout=TIMEOUT)
    T.check("stress: oldest recovered lease renewed for TTL + 1 s", r.grantedTTL == ttl and ttl - 1 <= r.TTL <= ttl + 1,
            show(r))
    time.sleep(max(0, t_restart + ttl - 1 - time.time()))
    T.eq("stress: nothing expires before TTL + 1 s after the restart", n, count(kv, b"r/")[0])
    waited, slowest, left = wait_all_expired(kv, b"r/", 15)
    T.eq("stress: the burst deletes every key (%.1f s after the restart)" % (time.time() - t_restart), 0, left)
    T.check("stress: reads answered during the burst (slowest < 1 s)", slowest < 1.0, "%.3f s" % slowest)
    _, rev1 = count(kv, b"r/")
    T.eq("stress: one revision per lease in the burst", n, rev1 - rev0)
    T.check("stress: cetcd alive", srv.alive(), srv.log_tail())
    ch.close()
    srv.stop()


compare()
stress()
T.finish()
