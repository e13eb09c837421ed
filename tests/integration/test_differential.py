#!/usr/bin/python3
# test_differential.py: a seeded random differential test. The same random sequence of KV, Txn, Compact,
# Lease and Watch calls (and restarts) runs against a fresh cetcd and a fresh real etcd; every answer
# must be equal once the ids that legitimately differ (cluster, member, raft term) are normalized.
#
# DIFF_SEED picks the seed (default fixed), DIFF_OPS the number of random ops (default 3000), DIFF_TRACE=1
# prints every op and etcd's answer. One check
# per block of 100 ops; on the first difference in a block the op number, the op and both answers are
# printed, the block fails and both servers start again from empty data dirs for the next block.
# Where etcd 3.4 crashes or errs and later etcd (or cetcd, on purpose) does not, the case is kept out
# narrowly, with a comment saying why: see INVALID_SORT, top_txn and the checkpoint put before restarts.
import os
import queue
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from lib import Server, Tally  # noqa: E402

T = Tally()
TIMEOUT = 5
BLOCK = 100
TRACE = os.environ.get("DIFF_TRACE") == "1"   # print every op and etcd's answer
RR = etcdrpc.RangeRequest
CMP = etcdrpc.Compare
# Few keys, so that ops meet each other; the m/ keys, picked less often, make ranges of more than 12
# keys, where etcd's sort (Go's sort.Sort) stops being an insertion sort and ties come out unstably.
KEYS = [b"a", b"a/1", b"a/2", b"b", b"b/1", b"c", b"d", b"e", b"foo", b"z"]
MANY = [b"m/%02d" % i for i in range(16)] + [b"m/"]
VALUES = [b"", b"1", b"2", b"x", b"yy", b"fence"]
INVALID_SORT = "ERR INVALID_ARGUMENT etcdserver: invalid sort option"
LEASES = [0x1000 + i for i in range(6)]   # granted and revoked by the sequence; the last is never granted


def norm(text):
    return re.sub(r"(cluster_id|member_id|raft_term): \d+", r"\1: X", text)


def show(msg):
    return norm(text_format.MessageToString(msg, as_one_line=True))


def err_text(e):
    return "ERR %s %s" % (e.code().name, e.details())


def prefix_end(k):
    b = bytearray(k)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return b"\0"
    b[-1] += 1
    return bytes(b)


class Peer:
    """One server and its stubs."""

    def __init__(self, kind, data_dir=None):
        self.srv = Server(kind, data_dir=data_dir)
        self.connect()

    def connect(self):
        self.chan = grpc.insecure_channel(self.srv.ep)
        self.kv = etcdrpc.KVStub(self.chan)
        self.lease = etcdrpc.LeaseStub(self.chan)
        self.watch = etcdrpc.WatchStub(self.chan)

    def restart(self):
        self.chan.close()
        ok = self.srv.restart()
        self.connect()
        # the first call after a restart may meet the old connection; wait until a read works
        for _ in range(50):
            try:
                self.kv.Range(RR(key=b"a"), timeout=TIMEOUT)
                break
            except grpc.RpcError:
                time.sleep(0.1)
        return ok

    def stop(self):
        self.chan.close()
        self.srv.stop()


# ---------- the random op generator: each op is (kind, request, description) ----------

def walk_ops(t):
    """Every RequestOp of a txn, its nested txns' included."""
    for o in list(t.success) + list(t.failure):
        yield o
        if o.HasField("request_txn"):
            yield from walk_ops(o.request_txn)


class Gen:
    def __init__(self, rnd):
        self.r = rnd
        self.rev = 1           # the current revision, as both servers answered it
        self.compacted = 0

    def key(self):
        return self.r.choice(KEYS) if self.r.random() < 0.7 else self.r.choice(MANY)

    def span(self):
        """(key, range_end): one key, a prefix, an interval (maybe empty or reversed), from a key, all."""
        r, k = self.r.random(), self.key()
        if r < 0.35:
            return k, b""
        if r < 0.55:
            return k, prefix_end(k)
        if r < 0.8:
            return k, self.key()
        if r < 0.9:
            return k, b"\0"
        return b"\0", b"\0"

    def revision(self):
        r = self.r.random()
        if r < 0.6:
            return 0
        if r < 0.7:
            return -self.r.randint(1, 3)
        if r < 0.8 and self.compacted:
            return self.r.randint(max(1, self.compacted - 2), self.compacted + 1)
        return self.r.randint(1, self.rev + 2)

    def lease_id(self):
        return 0 if self.r.random() < 0.6 else self.r.choice(LEASES)

    def range_req(self, top=False):
        k, e = self.span()
        rq = RR(key=k, range_end=e)
        if self.r.random() < 0.02:
            rq.key = b""
        if self.r.random() < 0.4:
            rq.limit = self.r.choice([-1, 1, 1, 2, 3, 5])
        if self.r.random() < 0.4:
            rq.sort_order = self.r.randint(0, 2)
        if self.r.random() < 0.4:
            rq.sort_target = self.r.randint(0, 4)
        if top and self.r.random() < 0.01:
            rq.sort_target = 7  # not a target (top-level Ranges only; see INVALID_SORT)
        rq.revision = self.revision()
        rq.count_only = self.r.random() < 0.1
        rq.keys_only = self.r.random() < 0.2
        for f in ("min_mod_revision", "max_mod_revision", "min_create_revision", "max_create_revision"):
            if self.r.random() < 0.1:
                setattr(rq, f, self.r.randint(1, self.rev + 1))
        return rq

    def put_req(self):
        k = self.key() if self.r.random() < 0.6 else self.r.choice(MANY)
        p = etcdrpc.PutRequest(key=k, value=self.r.choice(VALUES[:-1]))
        if self.r.random() < 0.01:
            p.key = b""
        p.prev_kv = self.r.random() < 0.4
        p.lease = self.lease_id()
        if self.r.random() < 0.1:
            p.ignore_value = True
            if self.r.random() < 0.8:
                p.value = b""
        if self.r.random() < 0.1:
            p.ignore_lease = True
            if self.r.random() < 0.8:
                p.lease = 0
        return p

    def delete_req(self):
        k, e = self.span()
        while k == b"\0" and self.r.random() < 0.8:  # deleting everything often would keep ranges short
            k, e = self.span()
        return etcdrpc.DeleteRangeRequest(key=k, range_end=e, prev_kv=self.r.random() < 0.5)

    def compare(self):
        k, e = self.span()
        if self.r.random() < 0.6:
            e = b""
        target = self.r.choice(["VERSION", "CREATE", "MOD", "VALUE", "LEASE"])
        c = CMP(key=k, range_end=e, target=getattr(CMP, target),
                result=self.r.choice([CMP.EQUAL, CMP.GREATER, CMP.LESS, CMP.NOT_EQUAL]))
        if target == "VALUE":
            c.value = self.r.choice(VALUES)
        elif target == "LEASE":
            c.lease = self.lease_id()
        else:
            setattr(c, {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision"}[target],
                    self.r.randint(0, self.rev + 1))
        return c

    def request_op(self, depth):
        r = self.r.random()
        if r < 0.3:
            return etcdrpc.RequestOp(request_range=self.range_req())
        if r < 0.65:
            return etcdrpc.RequestOp(request_put=self.put_req())
        if r < 0.85 or depth >= 2:
            return etcdrpc.RequestOp(request_delete_range=self.delete_req())
        return etcdrpc.RequestOp(request_txn=self.txn_req(depth + 1))

    def txn_req(self, depth=0):
        t = etcdrpc.TxnRequest()
        t.compare.extend(self.compare() for _ in range(self.r.randint(0, 3)))
        t.success.extend(self.request_op(depth) for _ in range(self.r.randint(0, 4)))
        t.failure.extend(self.request_op(depth) for _ in range(self.r.randint(0, 3)))
        return t

    def top_txn(self):
        t = self.txn_req()
        ops = list(walk_ops(t))
        if any(o.HasField("request_delete_range") and o.request_delete_range.range_end == b"\0" for o in ops):
            # etcd's duplicate-key check reads a delete to "\0" as an empty interval, so a put that needs
            # the key (ignore_value, ignore_lease) may follow a delete of that key in one txn; applying it
            # then fails and etcd 3.4 and 3.5 panic. cetcd keeps the check and applies the put (the key
            # is gone: the value or lease given). Such puts are not asked alongside such deletes.
            for o in ops:
                if o.HasField("request_put"):
                    o.request_put.ignore_value = o.request_put.ignore_lease = False
        return t

    def next_op(self):
        r = self.r.random()
        if r < 0.25:
            return "Range", self.range_req(top=True)
        if r < 0.5:
            return "Put", self.put_req()
        if r < 0.6:
            return "DeleteRange", self.delete_req()
        if r < 0.82:
            return "Txn", self.top_txn()
        if r < 0.85:
            lo = max(self.compacted - 1, 0)
            return "Compact", etcdrpc.CompactionRequest(revision=self.r.randint(lo, self.rev + 1),
                                                        physical=self.r.random() < 0.5)
        if r < 0.89:
            ttl = self.r.choice([600, 900, 3600]) if self.r.random() < 0.97 else 9000000001
            return "LeaseGrant", etcdrpc.LeaseGrantRequest(ID=self.r.choice(LEASES[:-1]), TTL=ttl)
        if r < 0.91:
            return "LeaseRevoke", etcdrpc.LeaseRevokeRequest(ID=self.r.choice(LEASES))
        if r < 0.94:
            return "LeaseTimeToLive", etcdrpc.LeaseTimeToLiveRequest(ID=self.r.choice(LEASES),
                                                                     keys=self.r.random() < 0.7)
        if r < 0.97:
            return "Watch", self.watch_req()
        if r < 0.9985:
            return "State", RR(key=b"\0", range_end=b"\0")
        return "Restart", None

    def watch_req(self):
        k, e = self.span()
        if e and e != b"\0" and e <= k:
            e = b""  # an empty range sees nothing, not even the fence
        w = etcdrpc.WatchCreateRequest(key=k, range_end=e, prev_kv=self.r.random() < 0.4)
        r = self.r.random()
        if r < 0.5:
            w.start_revision = self.r.randint(max(1, self.compacted - 2), self.rev + 1)
        elif r < 0.6:
            w.start_revision = 1
        if self.r.random() < 0.1:
            w.filters.append(etcdrpc.WatchCreateRequest.NODELETE)
        return w


# ---------- running one op on one server ----------

def unary(peer, kind, req):
    method = {"Range": peer.kv.Range, "State": peer.kv.Range, "Put": peer.kv.Put,
              "DeleteRange": peer.kv.DeleteRange, "Txn": peer.kv.Txn, "Compact": peer.kv.Compact,
              "LeaseGrant": peer.lease.LeaseGrant, "LeaseRevoke": peer.lease.LeaseRevoke,
              "LeaseTimeToLive": peer.lease.LeaseTimeToLive}[kind]
    try:
        resp = method(req, timeout=TIMEOUT)
    except grpc.RpcError as e:
        return err_text(e)
    if kind == "LeaseTimeToLive":
        resp.TTL = 0 if resp.TTL <= 0 else 1   # the time left is a clock, not state
        keys = sorted(resp.keys)               # etcd lists a lease's keys from a map
        del resp.keys[:]
        resp.keys.extend(keys)
    return show(resp)


class WatchRun:
    """A Watch stream with one watcher; the events are read on a thread until the fence is seen."""

    def __init__(self, peer, create):
        self.q = queue.Queue()
        self.out = []
        self.done = threading.Event()
        self.created = threading.Event()
        self.seen = set()
        self.call = peer.watch.Watch(self._requests(create), timeout=30)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self, create):
        yield etcdrpc.WatchRequest(create_request=create)
        self.q.get()

    def _read(self):
        try:
            for resp in self.call:
                if resp.created:
                    self.out.append("created " + show(resp))
                    self.created.set()
                    continue
                if resp.canceled or resp.compact_revision:
                    self.out.append("canceled=%s compact=%d reason=%r" % (
                        resp.canceled, resp.compact_revision, resp.cancel_reason))
                for ev in resp.events:
                    self.out.append(show(ev))
                    self.seen.add((ev.kv.key, ev.kv.mod_revision))
                if resp.canceled:
                    break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.out.append(err_text(e))
        self.created.set()
        self.done.set()

    def wait(self, fence):
        """Until the fence event (key, revision) arrived or the stream ended; then the stream is closed."""
        deadline = time.time() + 10
        while fence not in self.seen and not self.done.is_set() and time.time() < deadline:
            time.sleep(0.002)
        self.q.put(None)
        self.call.cancel()
        self.thread.join(5)
        return list(self.out)


def fence_key(create):
    return create.key if create.key != b"\0" else KEYS[0]


def run_watch(peers, create, op_no):
    """Both watchers are created first; then a put inside the watched range (the fence) is made on both,
    and each watcher is read until its fence event arrives (or it is canceled)."""
    runs = [WatchRun(p, create) for p in peers]
    for w in runs:
        w.created.wait(10)
    fk = fence_key(create)
    put = etcdrpc.PutRequest(key=fk, value=b"fence")
    answers = [unary(p, "Put", put) for p in peers]
    revs = [int(m.group(1)) if m else 0 for m in (re.search(r" revision: (\d+)", a) for a in answers)]
    outs = [w.wait((fk, rv)) for w, rv in zip(runs, revs)]
    return ["fence put: %s\n%s" % (a, "\n".join(o)) for a, o in zip(answers, outs)]


def first_difference(got, want):
    """Both answers, from the first line where they differ (a watch's answer is one line per event)."""
    g, w = got.split("\n"), want.split("\n")
    i = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
    head = "answers agree on their first %d lines\n" % i if i else ""
    return "%scetcd: %s\netcd:  %s" % (head, "\n       ".join(g[i:i + 6])[:3000],
                                       "\n       ".join(w[i:i + 6])[:3000])


def describe(kind, req):
    return "%s %s" % (kind, text_format.MessageToString(req, as_one_line=True) if req is not None else "")


# ---------- the run ----------

class Run:
    def __init__(self, seed, nops):
        self.seed, self.nops = seed, nops
        self.gen = Gen(random.Random(seed))
        self.peers = None
        self.recent = []
        self.compacted_at = 0.0

    def start(self):
        if self.peers:
            for p in self.peers:
                p.stop()
        self.peers = [Peer("cetcd"), Peer("etcd")]
        self.gen.rev, self.gen.compacted = 1, 0
        bad = [p.srv for p in self.peers if not p.srv.ok()]
        return "" if not bad else "; ".join("%s: %s %s" % (s.kind, s.error, s.log_tail()) for s in bad)

    def step(self, kind, req, op_no):
        if kind == "Range" and req.key and req.sort_target > RR.VALUE:
            # etcd 3.4 and 3.5 crash on a sort target they do not know (a nil sorter); later etcd refuses
            # it with "invalid sort option", as cetcd does: etcd is not asked, the later answer stands.
            return [unary(self.peers[0], kind, req), INVALID_SORT]
        if kind == "Restart":
            # etcd 3.4 saves its applied raft index only with a write that changes the store, so after a
            # restart it applies again the requests it refused or that changed no key since the last such
            # write (a refused put whose lease or key exists by now goes in; a lease revoked is granted
            # again). etcd 3.5 saves the index with every commit. A put just before the restart keeps
            # that 3.4 bug out of the comparison; it is compared like any op.
            puts = [unary(p, "Put", etcdrpc.PutRequest(key=b"z", value=b"checkpoint")) for p in self.peers]
            oks = [p.restart() for p in self.peers]
            return ["%s\nrestarted: %s, then %s" % (a, ok, unary(p, "Range", RR(key=b"\0", range_end=b"\0")))
                    for a, ok, p in zip(puts, oks, self.peers)]
        if kind == "Watch":
            if req.start_revision == self.gen.compacted:
                # etcd compacts in the background and its readers see the deletions at the backend's next
                # commit (every 100 ms): until then a watch from exactly the compacted revision still gets
                # the tombstones of that revision, which compaction drops. cetcd answers as etcd does
                # once it is done, so the watch waits for that.
                time.sleep(max(0.0, self.compacted_at + 0.25 - time.time()))
            return run_watch(self.peers, req, op_no)
        return [unary(p, kind, req) for p in self.peers]

    def track(self, kind, req, answer):
        m = re.search(r"header \{[^}]* revision: (\d+)", answer)
        if m:
            self.gen.rev = max(self.gen.rev, int(m.group(1)))
        if kind == "Compact" and not answer.startswith("ERR"):
            self.gen.compacted = req.revision
            self.compacted_at = time.time()

    def block(self, first, n):
        """Runs ops first..first+n-1; None when both servers agreed on all, else the report."""
        for i in range(first, first + n):
            kind, req = self.gen.next_op()
            got, want = self.step(kind, req, i)
            if TRACE:
                print("op %d: %s\n  -> %s" % (i, describe(kind, req)[:400], want[:400]), flush=True)
            self.track(kind, req, want)
            if got != want:
                before = "".join("  op %d: %s\n    -> %s\n" % (j, describe(k, q)[:300], a[:300])
                                 for j, k, q, a in self.recent)
                return "op %d: %s\n%s\nthe ops before it (etcd's answers):\n%s" % (
                    i, describe(kind, req)[:1500], first_difference(got, want), before)
            self.recent = (self.recent + [(i, kind, req, want)])[-4:]
            if not all(p.srv.alive() for p in self.peers):
                return "op %d: %s\na server died: %s" % (i, describe(kind, req)[:1500], [
                    (p.srv.kind, p.srv.alive(), p.srv.log_tail()) for p in self.peers])
        return None

    def go(self):
        err = self.start()
        if err:
            T.fail("servers start", err)
            return
        for first in range(0, self.nops, BLOCK):
            n = min(BLOCK, self.nops - first)
            report = self.block(first, n)
            name = "seed %d ops %d-%d" % (self.seed, first, first + n - 1)
            if report is None:
                T.ok(name)
                continue
            print(report, flush=True)   # whole: Tally.fail shows 20 lines
            T.fail(name, report)
            err = self.start()   # a difference leaves the two stores apart: begin the next block afresh
            if err:
                T.fail("servers restart after a difference", err)
                return
        for p in self.peers:
            p.stop()


# ---------- fixed cases: the differences the random test first found ----------

def fixed_cases():
    """Each case runs on fresh servers; the answers of every step must be equal."""
    P = etcdrpc.PutRequest

    def rng(k, **kw):
        return etcdrpc.RequestOp(request_range=RR(key=k, **kw))

    def put(k, v, **kw):
        return etcdrpc.RequestOp(request_put=P(key=k, value=v, **kw))

    cases = {
        "txn range rev -1 after a compaction is refused, nothing written": [
            ("Put", P(key=b"a", value=b"1")), ("Put", P(key=b"a", value=b"2")),
            ("Compact", etcdrpc.CompactionRequest(revision=2)),
            ("Txn", etcdrpc.TxnRequest(success=[put(b"b", b"x"), rng(b"a", revision=-1)])),
            ("Range", RR(key=b"b"))],
        "txn range rev -2 without compaction is refused, rev -1 reads": [
            ("Put", P(key=b"a", value=b"1")),
            ("Txn", etcdrpc.TxnRequest(success=[put(b"b", b"x"), rng(b"a", revision=-2)])),
            ("Txn", etcdrpc.TxnRequest(success=[put(b"b", b"y"), rng(b"a", revision=-1)])),
            ("Range", RR(key=b"b"))],
        "limit with sort order NONE and target VERSION takes the first limit+1 keys": [
            ("Put", P(key=b"a", value=b"1")), ("Put", P(key=b"a", value=b"1")),
            ("Put", P(key=b"a", value=b"1")), ("Put", P(key=b"b", value=b"1")),
            ("Put", P(key=b"b", value=b"1")), ("Put", P(key=b"c", value=b"1")),
            ("Range", RR(key=b"a", range_end=b"d", sort_target=RR.VERSION, limit=1)),
            ("Range", RR(key=b"a", range_end=b"d", sort_target=RR.MOD, limit=2)),
            ("Range", RR(key=b"a", range_end=b"d", sort_target=RR.CREATE, sort_order=RR.NONE, limit=1,
                         min_mod_revision=1))],
        "txn errors: puts before ranges, missing key before missing lease": [
            ("Put", P(key=b"a", value=b"1")),
            ("Txn", etcdrpc.TxnRequest(success=[rng(b"a", revision=100), put(b"b", b"x", lease=424242)])),
            ("Txn", etcdrpc.TxnRequest(success=[put(b"zz", b"", ignore_value=True, lease=424242)])),
            ("Txn", etcdrpc.TxnRequest(success=[
                rng(b"a", revision=100),
                etcdrpc.RequestOp(request_txn=etcdrpc.TxnRequest(success=[put(b"q", b"", ignore_lease=True)]))])),
            ("Put", P(key=b"zz", value=b"", ignore_value=True, lease=424242))],
    }
    for name, steps in cases.items():
        peers = [Peer("cetcd"), Peer("etcd")]
        diffs = []
        for i, (kind, req) in enumerate(steps):
            got, want = [unary(p, kind, req) for p in peers]
            if got != want:
                diffs.append("step %d: %s\ncetcd: %s\netcd:  %s" % (i, describe(kind, req), got, want))
        T.check(name, not diffs, "\n".join(diffs))
        for p in peers:
            p.stop()


def main():
    seed = int(os.environ.get("DIFF_SEED", "20260301"))
    nops = int(os.environ.get("DIFF_OPS", "3000"))
    print("differential test: seed %d, %d ops (DIFF_SEED / DIFF_OPS to change)" % (seed, nops), flush=True)
    fixed_cases()
    started = time.time()
    Run(seed, nops).go()
    print("%d ops in %.1f s" % (nops, time.time() - started), flush=True)
    T.finish()


main()
