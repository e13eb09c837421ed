#!/usr/bin/python3
# churn_soak.py: a long run of kube-apiserver's write pattern, to see whether disk, files, fds or
# memory keep growing. Not a test_* suite (it takes minutes); `make crash-soak` runs it.
#   - overwriters: a fixed set of keys (node heartbeats ~250 B, endpoints ~1.5 KB) rewritten with
#     kube's optimistic update (Txn: mod_revision == the one last seen ? Put : Range), many in flight;
#   - leasers: leases granted with short TTLs (2, 3, 5 s, client-chosen ids), each with 1-6 event keys
#     put in one Txn, then revoked (60%) or left to expire (40%);
#   - a compactor: every SOAK_COMPACT_EVERY revisions (5000) a Txn on compact_rev_key and a Compact to
#     the revision noted the time before, as kube-apiserver does every 5 minutes;
#   - the server's own log compaction runs by itself; a Defragment every tenth of the run;
#   - restarts under load, alternating SIGTERM and kill -9 (SOAK_RESTARTS, 6).
# Data checks: every overwrite's compare (the store is what the model says); after each restart the
# fixed keys hold their acknowledged values (an op in flight: old or new), the revision never goes
# back, reads below an acknowledged compaction give the compacted error, acknowledged leases are
# there with all their keys; at every sample no revoked or expired lease is listed, no key outlives
# its lease, no key has an unknown lease; at the end no lease and no event key is left.
# Measured at the start, every 1/45 of the run, after each Defragment and at the end: bytes in the
# data dir, files in it, the server's open fds and VmRSS, live keys and leases. Fails if fds, files
# or bytes per live key of the last third of the samples grow past the first third's (with slack),
# or RSS more than doubles, or if after the final compaction to the current revision and Defragment
# the data dir holds more than 1.5 x the live keys and values (+ 64 KiB). SOAK_REVISIONS (1,000,000) sets the length, SOAK_SEED the choices.
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import grpc  # noqa: E402
import etcd3  # noqa: E402
from etcd3 import etcdrpc as pb  # noqa: E402
from lib import TMP, Server, Tally, dir_usage, proc_usage, range_all  # noqa: E402

REVISIONS = int(os.environ.get("SOAK_REVISIONS", "1000000"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
COMPACT_EVERY = int(os.environ.get("SOAK_COMPACT_EVERY", "5000"))
RESTARTS = int(os.environ.get("SOAK_RESTARTS", "6"))
DEFRAGS = 10
SAMPLES = 45
NODES, ENDPOINTS = 1000, 200
OVERWRITERS, IN_FLIGHT = 4, 16
LEASERS, LEASE_BATCH = 2, 16
TTLS = (2, 3, 5)
SLACK = 5.0        # seconds a lease may outlive its TTL before the check calls it a leak
TIMEOUT = 15
EVENTS = b"/registry/events/"
COMPACT_KEY = b"compact_rev_key"


def rpc_error(e):
    return "%s %s" % (e.code().name, e.details()) if isinstance(e, grpc.RpcError) else repr(e)


def is_code(e, code, text=""):
    return isinstance(e, grpc.RpcError) and e.code() == code and text in (e.details() or "")


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.max_rev = 0
        self.compact_acked = 0
        self.compactions = 0
        self.problems = []

    def saw(self, rev):
        with self.lock:
            if rev > self.max_rev:
                self.max_rev = rev

    def problem(self, text):
        with self.lock:
            self.problems.append(text)


class Overwriter:
    """Owns some fixed keys; its model is each key's acknowledged (value, mod_revision)."""

    def __init__(self, keys, seed):
        self.keys = keys
        self.rng = random.Random(seed)
        self.state = {}     # key -> (value, mod)
        self.inflight = {}  # key -> value sent and not answered
        self.seq = 0

    def value(self, key):
        self.seq += 1
        head = b"%s|%d|" % (key, self.seq)
        size = 1500 if b"endpoints" in key else 250
        return head + b"x" * max(0, size - len(head))

    def run(self, port, stop, killed, sh):
        c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
        try:
            while not stop.is_set():
                sent = []
                for k in self.rng.sample(self.keys, IN_FLIGHT):
                    v = self.value(k)
                    mod = self.state[k][1] if k in self.state else 0
                    req = pb.TxnRequest(
                        compare=[pb.Compare(key=k, target=pb.Compare.MOD, result=pb.Compare.EQUAL, mod_revision=mod)],
                        success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=v))],
                        failure=[pb.RequestOp(request_range=pb.RangeRequest(key=k))])
                    self.inflight[k] = v
                    sent.append((k, v, mod, c.kvstub.Txn.future(req, TIMEOUT)))
                failed = False
                for k, v, mod, f in sent:
                    try:
                        r = f.result()
                    except Exception as e:  # noqa: BLE001
                        if not killed.is_set():
                            sh.problem("overwrite %r failed under load: %s" % (k, rpc_error(e)))
                        failed = True
                        continue
                    del self.inflight[k]
                    sh.saw(r.header.revision)
                    if r.succeeded:
                        self.state[k] = (v, r.header.revision)
                        continue
                    kvs = r.responses[0].response_range.kvs
                    sh.problem("overwrite %r: mod_revision == %d failed, the store has %s" % (
                        k, mod, "mod %d" % kvs[0].mod_revision if kvs else "no key"))
                    if kvs:  # take the store's state, so later rounds report only new problems
                        self.state[k] = (kvs[0].value, kvs[0].mod_revision)
                    else:
                        self.state.pop(k, None)
                if failed:
                    return
        finally:
            c.close()

    def check(self, actual):
        """After a restart: actual is key -> (value, mod) of this overwriter's keys."""
        problems = []
        for k in self.keys:
            want, got = self.state.get(k), actual.get(k)
            sent = self.inflight.pop(k, None)
            if got == want:
                continue
            if sent is not None and got is not None and got[0] == sent:
                self.state[k] = got  # the op in flight was applied
                continue
            problems.append("fixed key %r: acked %s, store has %s" % (
                k, "mod %d" % want[1] if want else "nothing", "mod %d value %r" % (got[1], got[0][:30]) if got else "nothing"))
            if got is None:
                self.state.pop(k, None)
            else:
                self.state[k] = got
        return problems


class Leaser:
    """Grants leases with client-chosen ids, puts their keys in one Txn, revokes or lets them expire.
    live: lease id -> dict(ttl, keys, deadline: the time it must be gone by unless it is revoked,
    revoke_at or None, state: granting | granted | live | revoking); dead: lease id -> the time after
    which it must not exist (revoke acknowledged, or its deadline)."""

    def __init__(self, id_base, seed):
        self.rng = random.Random(seed)
        self.next_id = id_base
        self.lock = threading.Lock()
        self.live = {}
        self.dead = {}
        self.granted = 0
        self.revoked = 0

    def value(self, lid, key):
        head = b"%x|%s|" % (lid, key)
        return head + b"e" * max(0, 400 - len(head))

    def run(self, port, stop, killed, sh):
        c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
        try:
            while not stop.is_set():
                if not self.turn(c, killed, sh):
                    return
        finally:
            c.close()

    def turn(self, c, killed, sh):
        rng, ok = self.rng, True

        def failed(what, e):
            nonlocal ok
            ok = False
            if not killed.is_set():
                sh.problem("%s failed under load: %s" % (what, rpc_error(e)))

        now = time.time()
        sent = []
        for _ in range(LEASE_BATCH):
            lid, ttl = self.next_id, rng.choice(TTLS)
            self.next_id += 1
            n = rng.randint(1, 6)
            keys = [EVENTS + b"ns-%02d/%x.%d" % (lid % 50, lid, j) for j in range(n)]
            revoke_at = now + rng.uniform(0.1, ttl * 0.4) if rng.random() < 0.6 else None
            L = dict(ttl=ttl, keys=keys, deadline=now + TIMEOUT + ttl + SLACK, revoke_at=revoke_at, state="granting")
            with self.lock:
                self.live[lid] = L
            sent.append((lid, L, c.leasestub.LeaseGrant.future(pb.LeaseGrantRequest(TTL=ttl, ID=lid), TIMEOUT)))
        granted = []
        for lid, L, f in sent:
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001
                failed("grant %x" % lid, e)
                continue
            if r.ID != lid or r.error:
                sh.problem("grant %x answered id %x error %r" % (lid, r.ID, r.error))
            L["deadline"] = time.time() + L["ttl"] + SLACK
            L["state"] = "granted"
            self.granted += 1
            granted.append((lid, L))
        if not ok:
            return False

        sent = []
        for lid, L in granted:
            ops = [pb.RequestOp(request_put=pb.PutRequest(key=k, value=self.value(lid, k), lease=lid)) for k in L["keys"]]
            sent.append((lid, L, c.kvstub.Txn.future(pb.TxnRequest(success=ops), TIMEOUT)))
        for lid, L, f in sent:
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001
                if is_code(e, grpc.StatusCode.NOT_FOUND) and time.time() > L["deadline"] - SLACK - 0.5:
                    self.expire(lid, L)  # the lease ran out before its keys could be put (slow turn)
                    continue
                failed("put keys of %x" % lid, e)
                continue
            sh.saw(r.header.revision)
            L["state"] = "live"
        if not ok:
            return False

        now = time.time()
        with self.lock:
            due = [(lid, L) for lid, L in self.live.items()
                   if L["state"] == "live" and L["revoke_at"] is not None and L["revoke_at"] <= now]
        sent = []
        for lid, L in due:
            L["state"] = "revoking"
            sent.append((lid, L, c.leasestub.LeaseRevoke.future(pb.LeaseRevokeRequest(ID=lid), TIMEOUT)))
        for lid, L, f in sent:
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001
                if is_code(e, grpc.StatusCode.NOT_FOUND) and time.time() > L["deadline"] - SLACK - 0.5:
                    self.expire(lid, L)  # expired just before the revoke (possible after a restart)
                    continue
                failed("revoke %x" % lid, e)
                continue
            sh.saw(r.header.revision)
            with self.lock:
                del self.live[lid]
                self.dead[lid] = time.time()
            self.revoked += 1
        if not ok:
            return False

        now = time.time()
        with self.lock:
            for lid in [lid for lid, L in self.live.items() if L["deadline"] < now]:
                self.dead[lid] = self.live.pop(lid)["deadline"]
        return True

    def expire(self, lid, L):
        with self.lock:
            if self.live.pop(lid, None) is not None:
                self.dead[lid] = min(L["deadline"], time.time())

    def restarted(self, stopped, ready):
        """After a restart every lease that may exist lives TTL + 1 s more; an op that was in flight
        leaves its lease to expire. A lease must be there if it was acknowledged with its keys and
        was not about to expire when the server stopped."""
        with self.lock:
            for L in self.live.values():
                L["must"] = L["state"] == "live" and L["deadline"] - SLACK > stopped + 0.5
                L["deadline"] = max(L["deadline"], ready + L["ttl"] + 1 + SLACK)
                if not L["must"]:
                    L["revoke_at"] = None
                    L["state"] = "uncertain"


def compactor(port, stop, killed, sh, state):
    """kube-apiserver's compactor: Txn on compact_rev_key, then Compact to the revision of the time
    before. state: dict(version, prev, next_at, inflight) kept across restarts."""
    c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
    try:
        while not stop.wait(0.05):
            if sh.max_rev < state["next_at"]:
                continue
            try:
                state["inflight"] = True
                req = pb.TxnRequest(
                    compare=[pb.Compare(key=COMPACT_KEY, target=pb.Compare.VERSION, result=pb.Compare.EQUAL,
                                        version=state["version"])],
                    success=[pb.RequestOp(request_put=pb.PutRequest(key=COMPACT_KEY, value=b"%d" % sh.max_rev))],
                    failure=[pb.RequestOp(request_range=pb.RangeRequest(key=COMPACT_KEY))])
                r = c.kvstub.Txn(req, TIMEOUT)
                if r.succeeded:
                    state["version"] += 1
                else:
                    kvs = r.responses[0].response_range.kvs
                    sh.problem("compact_rev_key: version == %d failed, the store has %d" % (
                        state["version"], kvs[0].version if kvs else 0))
                    state["version"] = kvs[0].version if kvs else 0
                rev = r.header.revision
                if state["prev"]:
                    c.compact(state["prev"])
                    sh.compact_acked = max(sh.compact_acked, state["prev"])
                    sh.compactions += 1
                state["inflight"] = False
                state["prev"] = rev
                state["next_at"] = rev + COMPACT_EVERY
            except Exception as e:  # noqa: BLE001
                if not killed.is_set():
                    sh.problem("compaction failed under load: %s" % rpc_error(e))
                return
    finally:
        c.close()


def compacted_below(c, rev):
    try:
        c.kvstub.Range(pb.RangeRequest(key=COMPACT_KEY, revision=rev - 1), TIMEOUT)
        return "a read at %d works" % (rev - 1)
    except grpc.RpcError as e:
        if is_code(e, grpc.StatusCode.OUT_OF_RANGE, "compacted"):
            return None
        return "a read at %d: %s" % (rev - 1, rpc_error(e))


def scan(c, prefix, **kw):
    """Every key under prefix at one revision; starts again if a compaction overtakes the scan."""
    for attempt in range(5):
        try:
            return list(range_all(c.kvstub, prefix, prefix[:-1] + bytes([prefix[-1] + 1]), page=1000,
                                  timeout=TIMEOUT, **kw))
        except grpc.RpcError as e:
            if attempt == 4 or not is_code(e, grpc.StatusCode.OUT_OF_RANGE, "compacted"):
                raise


def check_leases(c, leasers, strict):
    """No listed lease and no key of a lease that is revoked, past its deadline or unknown; with
    strict (after a restart, nothing running) every acknowledged lease is there with all its keys.
    Under load, only leases left to expire and far from their deadline must be there."""
    problems = []
    start = time.time()
    dead_before, live_before = {}, {}
    for ls in leasers:
        with ls.lock:
            dead_before.update({lid: t for lid, t in ls.dead.items() if t < start})
            live_before.update({lid: dict(L) for lid, L in ls.live.items()})
    listed = {lease.ID for lease in c.leasestub.LeaseLeases(pb.LeaseLeasesRequest(), TIMEOUT).leases}
    keys = scan(c, EVENTS)
    known = set(live_before)
    for ls in leasers:
        with ls.lock:
            known.update(ls.live)
            known.update(ls.dead)
    for lid in sorted(listed):
        if lid in dead_before:
            problems.append("lease %x listed after it was revoked or expired (%.1f s ago)" % (lid, start - dead_before[lid]))
        elif lid not in known:
            problems.append("unknown lease %x listed" % lid)
    by_lease = {}
    for kv in keys:
        by_lease.setdefault(kv.lease, set()).add(kv.key)
        if kv.lease in dead_before:
            problems.append("key %r outlives its lease %x (gone %.1f s ago)" % (kv.key, kv.lease, start - dead_before[kv.lease]))
        elif kv.lease not in known:
            problems.append("key %r has unknown lease %x" % (kv.key, kv.lease))
        elif not kv.value.startswith(b"%x|%s|" % (kv.lease, kv.key)):
            problems.append("key %r has a value that is not its own: %r" % (kv.key, kv.value[:40]))
    for lid, L in live_before.items():
        if strict:
            must = L.get("must", False)
        else:  # nobody revokes it, and it is not about to expire
            must = L["state"] == "live" and L["revoke_at"] is None and L["deadline"] - SLACK > start + 1
        if must and lid not in listed:
            problems.append("acknowledged lease %x (%s) is missing" % (lid, L["state"]))
        if must and by_lease.get(lid, set()) != set(L["keys"]):
            problems.append("lease %x has keys %r, want %r" % (lid, sorted(by_lease.get(lid, ()))[:3], L["keys"][:3]))
    return problems, len(listed), len(keys)


class Run:
    def __init__(self):
        self.t = Tally()
        self.sh = Shared()
        self.rng = random.Random(SEED)
        fixed = [b"/registry/leases/kube-node-lease/node-%04d" % i for i in range(NODES)]
        fixed += [b"/registry/services/endpoints/ns-%02d/svc-%03d" % (i % 20, i) for i in range(ENDPOINTS)]
        self.rng.shuffle(fixed)
        self.overwriters = [Overwriter(fixed[i::OVERWRITERS], self.rng.random()) for i in range(OVERWRITERS)]
        base = self.rng.randrange(1 << 40, 1 << 50)
        self.leasers = [Leaser(base + i * 10 ** 9, self.rng.random()) for i in range(LEASERS)]
        self.compaction = dict(version=0, prev=0, next_at=COMPACT_EVERY, inflight=False)
        self.samples = []   # periodic samples
        self.defrag_samples = []
        self.started = time.time()
        self.stopped_at = 0
        data_dir = os.path.join(tempfile.mkdtemp(dir=TMP, prefix="soak."), "data")
        self.srv = Server("cetcd", data_dir=data_dir)

    def client(self, timeout=TIMEOUT):
        return etcd3.client(host="127.0.0.1", port=self.srv.port, timeout=timeout)

    def measure(self, note=""):
        """One sample; keys, leases and revision are -1 if the server cannot say (reported)."""
        c = self.client()
        try:
            head = c.kvstub.Range(pb.RangeRequest(key=b"\0", range_end=b"\0", count_only=True), TIMEOUT)
            rev, keys = head.header.revision, head.count
            leases = len(c.leasestub.LeaseLeases(pb.LeaseLeasesRequest(), TIMEOUT).leases)
        except Exception as e:  # noqa: BLE001
            self.t.fail("sample %s: count keys and leases" % note, rpc_error(e))
            rev = keys = leases = -1
        finally:
            c.close()
        size, files = dir_usage(self.srv.dir)
        fds, rss = proc_usage(self.srv.pid)
        return dict(rev=rev, t=time.time() - self.started, bytes=size, files=files, fds=fds,
                    rss=rss, keys=keys, leases=leases, note=note)

    def report(self, name, problems):
        self.t.check(name, not problems, "\n".join(problems[:15] + (["(%d problems)" % len(problems)] if len(problems) > 15 else [])))

    def take_problems(self):
        with self.sh.lock:
            p, self.sh.problems = self.sh.problems, []
        return p

    def sample_check(self, note):
        """A periodic sample, with the lease and compaction checks that hold under load."""
        s = self.measure(note)
        self.samples.append(s)
        c = self.client()
        try:
            problems, _, _ = check_leases(c, self.leasers, strict=False)
            if self.sh.compact_acked > 1:
                bad = compacted_below(c, self.sh.compact_acked)
                if bad:
                    problems.append("compaction at %d acknowledged, but %s" % (self.sh.compact_acked, bad))
        except Exception as e:  # noqa: BLE001
            problems = ["sample check failed: %s" % rpc_error(e)]
        finally:
            c.close()
        problems += self.take_problems()
        if problems:
            self.report("under load at revision %d: data checks" % s["rev"], problems)
        return s

    def after_restart(self, how):
        """Data checks right after a restart: fixed keys, revision, compaction, leases."""
        problems = self.take_problems()
        c = self.client()
        try:
            ready = time.time()
            for ls in self.leasers:
                ls.restarted(self.stopped_at, ready)
            head = c.kvstub.Range(pb.RangeRequest(key=COMPACT_KEY), TIMEOUT)
            rev = head.header.revision
            if rev < self.sh.max_rev:
                problems.append("revision went back: %d < acknowledged %d" % (rev, self.sh.max_rev))
                self.sh.max_rev = rev
            version = head.kvs[0].version if head.kvs else 0
            if self.compaction["inflight"]:  # was its Txn, its Compact applied?
                self.compaction["version"] = version
                prev = self.compaction["prev"]
                if prev and compacted_below(c, prev) is None:
                    self.sh.compact_acked = max(self.sh.compact_acked, prev)
                    self.compaction["prev"] = 0
                self.compaction["inflight"] = False
            elif version != self.compaction["version"]:
                problems.append("compact_rev_key has version %d, acknowledged %d" % (version, self.compaction["version"]))
                self.compaction["version"] = version
            fixed = {kv.key: (kv.value, kv.mod_revision) for kv in scan(c, b"/registry/leases/")}
            fixed.update({kv.key: (kv.value, kv.mod_revision) for kv in scan(c, b"/registry/services/")})
            for ow in self.overwriters:
                problems += ow.check({k: fixed[k] for k in ow.keys if k in fixed})
            if self.sh.compact_acked > 1:
                bad = compacted_below(c, self.sh.compact_acked)
                if bad:
                    problems.append("compaction at %d acknowledged, but after the restart %s" % (self.sh.compact_acked, bad))
            lp, nleases, nkeys = check_leases(c, self.leasers, strict=True)
            problems += lp
        except Exception as e:  # noqa: BLE001
            problems.append("checks after the restart failed: %s" % rpc_error(e))
            nleases = nkeys = -1
        finally:
            c.close()
        self.report("after %s at revision %d: fixed keys, revision, compaction, %d leases with %d keys intact" % (
            how, self.sh.max_rev, nleases, nkeys), problems)

    def phase(self, end_rev, sig, next_sample, next_defrag, sample_every, defrag_every):
        """Runs the load until end_rev, sampling and defragmenting; then stops the server with sig
        under load (None: the load stops first and the server keeps running)."""
        stop, killed = threading.Event(), threading.Event()
        port, sh = self.srv.port, self.sh
        threads = [threading.Thread(target=o.run, args=(port, stop, killed, sh)) for o in self.overwriters]
        threads += [threading.Thread(target=ls.run, args=(port, stop, killed, sh)) for ls in self.leasers]
        threads.append(threading.Thread(target=compactor, args=(port, stop, killed, sh, self.compaction)))
        for th in threads:
            th.start()
        last_print = 0
        while sh.max_rev < end_rev:
            time.sleep(0.2)
            if not any(th.is_alive() for th in threads[:-1]):
                self.report("load keeps running", self.take_problems() or ["every load thread stopped"])
                break
            if sh.max_rev >= next_sample:
                s = self.sample_check("")
                next_sample += sample_every
                if time.time() - last_print > 20:
                    last_print = time.time()
                    print("  ... revision %d, %.0f s, %.1f MiB in %d files, %d fds, RSS %.0f MiB, %d keys, %d leases" % (
                        s["rev"], s["t"], s["bytes"] / 2 ** 20, s["files"], s["fds"], s["rss"] / 1024, s["keys"], s["leases"]),
                        flush=True)
            if sh.max_rev >= next_defrag:
                next_defrag += defrag_every
                c = self.client(timeout=300)
                try:
                    t0 = time.time()
                    c.defragment()
                    s = self.measure("after defrag (%.1f s)" % (time.time() - t0))
                    self.defrag_samples.append(s)
                except Exception as e:  # noqa: BLE001
                    self.report("Defragment under load", [rpc_error(e)])
                finally:
                    c.close()
        self.stopped_at = time.time()
        if sig is None:
            stop.set()
        else:
            killed.set()
            stop.set()
            self.srv.proc.send_signal(sig)
            self.srv.proc.wait()
        for th in threads:
            th.join()
        return next_sample, next_defrag

    def wait_leases_gone(self):
        """With the load stopped: waits for every lease's deadline, then nothing may be left."""
        latest = max([L["deadline"] for ls in self.leasers for L in ls.live.values()] + [time.time()])
        time.sleep(max(0.0, latest - time.time()) + 0.5)
        now = time.time()
        for ls in self.leasers:
            with ls.lock:
                for lid, L in list(ls.live.items()):
                    ls.dead[lid] = min(L["deadline"], now)
                ls.live.clear()
        c = self.client()
        try:
            problems, nleases, nkeys = check_leases(c, self.leasers, strict=True)
            if nleases or nkeys:
                problems.append("%d leases and %d event keys left once every TTL ran out" % (nleases, nkeys))
        finally:
            c.close()
        self.report("end: every lease revoked or expired, no event key left", problems + self.take_problems())

    def evaluate(self):
        s = [x for x in self.samples if x["keys"] > 0]
        n = len(s) // 3
        if n < 2:
            self.t.fail("enough samples to compare", "%d samples" % len(s))
            return
        first, last = s[:n], s[-n:]

        def per_key(x):
            return x["bytes"] / x["keys"]

        def growth(name, f, slack_mul, slack_add, agg=max, unit=""):
            a, b = agg([f(x) for x in first]), agg([f(x) for x in last])
            self.t.check("%s does not keep growing: first third %s %.0f%s, last third %.0f%s (limit %.0f%s)" % (
                name, agg.__name__, a, unit, b, unit, a * slack_mul + slack_add, unit),
                b <= a * slack_mul + slack_add)

        growth("open fds", lambda x: x["fds"], 1, 4)
        growth("files in the data dir", lambda x: x["files"], 1, 2)
        growth("bytes on disk per live key", per_key, 1.5, 2048, agg=statistics.median, unit=" B")
        growth("RSS", lambda x: x["rss"] / 1024, 2, 32, unit=" MiB")
        d = self.defrag_samples
        if len(d) >= 3:
            self.t.check("bytes per live key right after a Defragment do not keep growing: first %.0f B, last %.0f B" % (
                per_key(d[0]), per_key(d[-1])), per_key(d[-1]) <= per_key(d[0]) * 1.5 + 1024)

    def table(self, before, after):
        print("\n%10s %7s %9s %6s %5s %8s %7s %7s %10s  %s" % (
            "revision", "secs", "MiB disk", "files", "fds", "RSS MiB", "keys", "leases", "B/key", ""))
        rows = sorted([before] + self.samples + self.defrag_samples + after, key=lambda x: (x["t"]))
        for x in rows:
            print("%10d %7.0f %9.2f %6d %5d %8.1f %7d %7d %10s  %s" % (
                x["rev"], x["t"], x["bytes"] / 2 ** 20, x["files"], x["fds"], x["rss"] / 1024, x["keys"], x["leases"],
                "%.0f" % (x["bytes"] / x["keys"]) if x["keys"] > 0 else "-", x["note"]))
        print()

    def main(self):
        t, sh = self.t, self.sh
        print("churn soak: %d revisions, compaction every %d, %d restarts, seed %d (SOAK_SEED)" % (
            REVISIONS, COMPACT_EVERY, RESTARTS, SEED), flush=True)
        if not self.srv.ok():
            t.fail("cetcd starts", "%s\n%s" % (self.srv.error, self.srv.log_tail()))
            t.finish()
        before = self.measure("before (fresh)")
        sample_every = max(1000, REVISIONS // SAMPLES)
        defrag_every = max(1000, REVISIONS // DEFRAGS)
        next_sample, next_defrag = sample_every, defrag_every + defrag_every // 2
        bounds = [REVISIONS * (i + 1) // (RESTARTS + 1) for i in range(RESTARTS)]
        for i, end in enumerate(bounds + [REVISIONS]):
            sig = None if i == len(bounds) else (signal.SIGTERM, signal.SIGKILL)[i % 2]
            next_sample, next_defrag = self.phase(end, sig, next_sample, next_defrag, sample_every, defrag_every)
            if sig is None:
                break
            how = "kill -9" if sig == signal.SIGKILL else "SIGTERM"
            if not self.srv.restart():
                t.fail("restart after %s" % how, "%s\n%s" % (self.srv.error, self.srv.log_tail()))
                t.finish()
            s = self.measure("after restart (%s)" % how)
            self.samples.append(s)
            self.after_restart(how)
        self.report("load ran without errors", self.take_problems())
        self.wait_leases_gone()

        after = []
        c = self.client(timeout=300)
        rev = 0
        try:
            rev = c.kvstub.Range(pb.RangeRequest(key=COMPACT_KEY), TIMEOUT).header.revision
            c.compact(rev)
            sh.compact_acked = rev
            c.defragment()
        except Exception as e:  # noqa: BLE001
            t.fail("final compact + defrag", rpc_error(e))
        finally:
            c.close()
        after.append(self.measure("after: compact to %d + defrag" % rev))
        if self.srv.restart(signal.SIGTERM):
            after.append(self.measure("after: restart"))
            self.after_restart("the final SIGTERM")
        else:
            t.fail("final restart", "%s\n%s" % (self.srv.error, self.srv.log_tail()))
        self.srv.stop()

        self.table(before, after)
        granted = sum(ls.granted for ls in self.leasers)
        revoked = sum(ls.revoked for ls in self.leasers)
        print("%d revisions in %.0f s (%.0f/s); %d leases granted, %d revoked, the rest expired; %d compactions, %d defragments" % (
            sh.max_rev, time.time() - self.started, sh.max_rev / (time.time() - self.started), granted, revoked,
            sh.compactions, len(self.defrag_samples) + 1))
        print("before: %d bytes in %d files, %d fds, RSS %.1f MiB" % (before["bytes"], before["files"], before["fds"], before["rss"] / 1024))
        for x in after:
            print("%s: %d bytes in %d files, %d fds, RSS %.1f MiB, %d live keys: %.0f bytes on disk per live key" % (
                x["note"], x["bytes"], x["files"], x["fds"], x["rss"] / 1024, x["keys"],
                x["bytes"] / x["keys"] if x["keys"] > 0 else float("nan")))
        live_bytes = sum(len(v[0]) + len(k) for ow in self.overwriters for k, v in ow.state.items())
        print("the live keys and values themselves: %d bytes (%.0f per key)" % (live_bytes, live_bytes / max(1, after[0]["keys"])))
        for x in after:  # nothing but the live data should be left: no lease records, no old segments
            t.check("%s: %d bytes on disk for %d bytes of live keys and values (limit 1.5 x + 64 KiB)" % (
                x["note"], x["bytes"], live_bytes), x["bytes"] <= live_bytes * 1.5 + 65536)
        self.evaluate()
        t.finish()


if __name__ == "__main__":
    Run().main()
