#!/usr/bin/python3
# test_crash.py: the durability promise under kill -9, for every kind of write. Worker threads mix
# puts (new keys and overwrites), deletes (one key, a range, a prefix of hundreds), txns (a compare,
# three puts, a delete and a read), lease grants (client-chosen ids), puts with a lease and lease
# revokes, while one thread compacts and one defragments. Each worker owns its keys and leases and
# keeps a model of them. The server is killed at a random moment, restarted on the same data dir,
# and the store, read back in pages (so its size never matters), must equal the models exactly:
# every acknowledged write there with its value, create/mod revision, version and lease; every
# acknowledged delete and revoke gone; every txn whole; nothing else. The one op a worker had in
# flight is either wholly applied or not at all. A compaction acknowledged stays (a read below it
# gives the compacted error, a read at it works); the revision never goes back, and the next write
# gets the next revision. Granted leases exist with exactly their keys; revoked ones stay gone.
# Every 4th round stops the server with SIGTERM under the same load instead (a clean shutdown).
# After a failed round the models take the store as it is, so each round reports its own losses.
# At the end: HashKV is unchanged by a Defragment and by a clean restart.
# CRASH_ROUNDS rounds (20 by default), CRASH_SEED to replay the op choices.
import hashlib
import os
import random
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import grpc  # noqa: E402
import etcd3  # noqa: E402
from etcd3 import etcdrpc as pb  # noqa: E402
from lib import TMP, Server, Tally, range_all  # noqa: E402

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
SEED = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
WORKERS = 12
POOL = 40          # keys a worker overwrites, deletes and changes in txns: w03/k/00 .. w03/k/39
UNIQUE_MAX = 300   # new keys (w03/u/NNNNNN) a worker adds before deleting them all with one prefix delete
LEASES_MAX = 4     # live leases per worker
LEASE_KEYS = 5     # keys per lease: w03/l/<id>/0 .. 4
LEASE_TTL = 3600   # nothing expires during the test (a restart renews leases for their TTL)
TIMEOUT = 5
LEASE_RANGE = 10 ** 7  # lease ids of one worker: its base + [0, LEASE_RANGE)


def rpc_error(e):
    return "%s %s" % (e.code().name, e.details()) if isinstance(e, grpc.RpcError) else repr(e)


def show(state):
    """A key's state for a message: the value as its length and a short digest."""
    if state is None:
        return "absent"
    value, create, mod, version, lease = state
    return "value[%d]=%s create %d mod %d version %d lease %x" % (
        len(value), hashlib.sha1(value).hexdigest()[:8], create, mod, version, lease)


class Shared:
    """What the threads of all rounds share: the newest acknowledged revision and the compactions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.max_rev = 0          # newest revision any acknowledged write got
        self.compact_acked = 0    # newest acknowledged compaction
        self.compact_inflight = 0  # a compaction sent when the server died (0: none)
        self.compactions = 0
        self.defrags = 0
        self.defrag_inflight = False  # a Defragment was sent and not answered at the kill
        self.problems = []

    def saw(self, rev):
        with self.lock:
            if rev > self.max_rev:
                self.max_rev = rev


class Model:
    """The keys under one prefix as they must be: key -> (value, create, mod, version, lease), the
    live leases, and the op in flight when the server died: {"what", "keys": {key: after}, "grant",
    "revoke"}, where after is None (deleted) or (value, create or None for "= mod", version, lease)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.keys = {}
        self.leases = set()
        self.inflight = None
        self.problems = []
        self.acked = 0
        self.last = {}  # key -> the last acknowledged op that wrote it (for messages)

    def owns_lease(self, lid):
        return False

    def after_put(self, key, value, lease=0):
        old = self.keys.get(key)
        return (value, old[1], old[3] + 1, lease) if old else (value, None, 1, lease)

    def apply(self, after, rev):
        for key, a in after.items():
            if a is None:
                self.keys.pop(key, None)
            else:
                value, create, version, lease = a
                self.keys[key] = (value, rev if create is None else create, rev, version, lease)

    def ack(self, after, rev, shared):
        what = (self.inflight or {}).get("what", "?")
        for k in after:
            self.last[k] = "%s @%d" % (what, rev)
        self.apply(after, rev)
        self.inflight = None
        self.acked += 1
        if rev:
            shared.saw(rev)

    def resolve(self, actual, live_leases):
        """Decides whether the op in flight was applied (the store shows all of it: the model takes
        it) or not (the store shows none of it); anything in between is a problem."""
        op, self.inflight = self.inflight, None
        if not op:
            return []
        after, grant, revoke = op.get("keys", {}), op.get("grant"), op.get("revoke")
        before_ok = all(actual.get(k) == self.keys.get(k) for k in after)
        before_ok = before_ok and (grant is None or grant not in live_leases)
        before_ok = before_ok and (revoke is None or revoke in live_leases)
        after_ok = grant is None or grant in live_leases
        after_ok = after_ok and (revoke is None or revoke not in live_leases)
        mods = set()
        for k, a in after.items():
            got = actual.get(k)
            if a is None:
                after_ok = after_ok and got is None
                continue
            value, create, version, lease = a
            if got is None or (got[0], got[3], got[4]) != (value, version, lease) or \
                    got[1] != (got[2] if create is None else create):
                after_ok = False
            else:
                mods.add(got[2])
        after_ok = after_ok and len(mods) <= 1  # one op, one revision
        if after_ok:
            for k in after:
                if actual.get(k) is None:
                    self.keys.pop(k, None)
                else:
                    self.keys[k] = actual[k]
            if grant is not None:
                self.leases.add(grant)
            if revoke is not None:
                self.leases.discard(revoke)
            return []
        if before_ok:
            return []
        return ["in-flight %s half applied: %s" % (op["what"], "; ".join(
            "%r model %s store %s" % (k, show(self.keys.get(k)), show(actual.get(k))) for k in list(after)[:4]))]

    def resync(self, actual, live_leases):
        """After a failed check: the model takes the store as it is, so the next rounds only report
        what goes wrong in them."""
        self.keys = dict(actual)
        self.leases = {lid for lid in live_leases if self.owns_lease(lid)}


class Worker(Model):
    def __init__(self, wid, seed, lease_base):
        Model.__init__(self, b"w%02d/" % wid)
        self.wid = wid
        self.rng = random.Random(seed)
        self.next_unique = 0
        self.next_lease = self.lease_base = lease_base

    def owns_lease(self, lid):
        return self.lease_base <= lid < self.lease_base + LEASE_RANGE

    def value(self):
        n = self.rng.choice((1, 8, 40, 200, 1000))
        return self.rng.randbytes(n)

    def pool_key(self, i=None):
        return self.prefix + b"k/%02d" % (self.rng.randrange(POOL) if i is None else i)

    def count(self, prefix):
        return sum(1 for k in self.keys if k.startswith(prefix))

    def expect_deleted(self, what, want, got):
        if want != got:
            self.problems.append("%s deleted %d keys, the model had %d" % (what, got, want))

    # --- the ops; each sets self.inflight before it sends and acks after the answer ---
    def put_unique(self, c, sh):
        uprefix = self.prefix + b"u/"
        n = self.count(uprefix)
        if n >= UNIQUE_MAX:
            after = {k: None for k in self.keys if k.startswith(uprefix)}
            self.inflight = {"what": "delete prefix %r" % uprefix, "keys": after}
            resp = c.delete_prefix(uprefix)
            self.expect_deleted("delete prefix %r" % uprefix, n, resp.deleted)
            return self.ack(after, resp.header.revision, sh)
        key = uprefix + b"%06d" % self.next_unique
        self.next_unique += 1
        value = self.value()
        after = {key: self.after_put(key, value)}
        self.inflight = {"what": "put %r" % key, "keys": after}
        self.ack(after, c.put(key, value).header.revision, sh)

    def overwrite(self, c, sh):
        key, value = self.pool_key(), self.value()
        after = {key: self.after_put(key, value)}
        self.inflight = {"what": "put %r" % key, "keys": after}
        self.ack(after, c.put(key, value).header.revision, sh)

    def delete_one(self, c, sh):
        key = self.pool_key()
        after = {key: None}
        self.inflight = {"what": "delete %r" % key, "keys": after}
        resp = c.delete(key, return_response=True)
        self.expect_deleted("delete %r" % key, int(key in self.keys), resp.deleted)
        self.ack(after, resp.header.revision, sh)

    def delete_range(self, c, sh):
        prefix = self.prefix + b"k/%d" % self.rng.randrange(POOL // 10)
        after = {k: None for k in self.keys if k.startswith(prefix)}
        self.inflight = {"what": "delete prefix %r" % prefix, "keys": after}
        resp = c.delete_prefix(prefix)
        self.expect_deleted("delete prefix %r" % prefix, len(after), resp.deleted)
        self.ack(after, resp.header.revision, sh)

    def txn(self, c, sh):
        k0, k1, k2, k3 = [self.pool_key(i) for i in self.rng.sample(range(POOL), 4)]
        vals = [self.value() for _ in range(3)]
        after = {k: self.after_put(k, v) for k, v in zip((k0, k1, k2), vals)}
        after[k3] = None
        mod0 = self.keys[k0][2] if k0 in self.keys else 0
        self.inflight = {"what": "txn on %r" % k0, "keys": after}
        tx = c.transactions
        ok, resps = c.transaction(compare=[tx.mod(k0) == mod0],
                                  success=[tx.put(k0, vals[0]), tx.put(k1, vals[1]), tx.put(k2, vals[2]),
                                           tx.delete(k3), tx.get(k0)],
                                  failure=[])
        if not ok:
            self.inflight = None  # nothing was written; the store is not what the model says
            self.problems.append("txn: mod(%r) == %d failed: the store differs from the model" % (k0, mod0))
            return
        self.expect_deleted("txn delete %r" % k3, int(k3 in self.keys), resps[3].response_delete_range.deleted)
        read = resps[4]
        if len(read) != 1 or read[0][0] != vals[0]:
            self.problems.append("txn: get %r after its put read %r" % (k0, read))
            self.inflight = None
            return
        self.ack(after, read[0][1].mod_revision, sh)

    def grant(self, c, sh):
        if len(self.leases) >= LEASES_MAX:
            return self.revoke(c, sh)
        lid = self.next_lease
        self.next_lease += 1
        self.inflight = {"what": "grant %x" % lid, "grant": lid}
        got = c.lease(LEASE_TTL, lease_id=lid)
        if got.id != lid:
            self.problems.append("grant %x answered id %x" % (lid, got.id))
        self.leases.add(lid)
        self.ack({}, 0, sh)

    def put_leased(self, c, sh):
        if not self.leases:
            return self.grant(c, sh)
        lid = self.rng.choice(sorted(self.leases))
        key = self.prefix + b"l/%x/%d" % (lid, self.rng.randrange(LEASE_KEYS))
        value = self.value()
        after = {key: self.after_put(key, value, lid)}
        self.inflight = {"what": "put %r with lease %x" % (key, lid), "keys": after}
        self.ack(after, c.put(key, value, lease=lid).header.revision, sh)

    def revoke(self, c, sh):
        if not self.leases:
            return self.grant(c, sh)
        lid = self.rng.choice(sorted(self.leases))
        after = {k: None for k, v in self.keys.items() if v[4] == lid}
        self.inflight = {"what": "revoke %x" % lid, "keys": after, "revoke": lid}
        c.revoke_lease(lid)
        self.leases.discard(lid)
        self.ack(after, 0, sh)

    OPS = ((put_unique, 25), (overwrite, 22), (delete_one, 10), (delete_range, 4), (txn, 16),
           (grant, 5), (put_leased, 13), (revoke, 5))

    def run(self, port, stop, killed, sh):
        ops = [op for op, weight in self.OPS for _ in range(weight)]
        c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
        try:
            while not stop.is_set():
                op = self.rng.choice(ops)
                try:
                    op(self, c, sh)
                except Exception as e:  # noqa: BLE001 - the server died under it, or a real error
                    if not killed.is_set():
                        self.problems.append("%s failed before the kill: %s" % (
                            (self.inflight or {}).get("what", op.__name__), rpc_error(e)))
                    return
        finally:
            c.close()


def compactor(port, stop, killed, sh, rng):
    """Compacts to a revision a little behind the newest acknowledged one, every few tens of ms."""
    c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
    try:
        while not stop.wait(rng.uniform(0.02, 0.12)):
            target = sh.max_rev - rng.randrange(0, 40)
            if target <= max(sh.compact_acked, sh.compact_inflight, 1):
                continue
            sh.compact_inflight = target
            try:
                c.compact(target)
            except Exception as e:  # noqa: BLE001
                if not killed.is_set():
                    sh.problems.append("compact %d failed before the kill: %s" % (target, rpc_error(e)))
                return
            sh.compact_acked, sh.compact_inflight = target, 0
            sh.compactions += 1
    finally:
        c.close()


def defragmenter(port, stop, killed, sh, rng):
    c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
    try:
        while not stop.wait(rng.uniform(0.05, 0.3)):
            sh.defrag_inflight = True
            try:
                c.defragment()
            except Exception as e:  # noqa: BLE001
                if not killed.is_set():
                    sh.problems.append("defragment failed before the kill: %s" % rpc_error(e))
                return
            sh.defrags += 1
            sh.defrag_inflight = False
    finally:
        c.close()


def compacted_at(c, rev):
    """True if a read at rev gets the compacted error, False if it works; a string for anything else."""
    try:
        c.kvstub.Range(pb.RangeRequest(key=b"\0", range_end=b"\0", limit=1, revision=rev), TIMEOUT)
        return False
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in e.details():
            return True
        return "read at %d: %s" % (rev, rpc_error(e))


def verify(srv, models, sh, probe_key):
    """Compares the restarted server with the models; settles each op in flight; ends with a probe
    put whose revision must be the next one. Returns (problems, summary)."""
    problems = []
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=TIMEOUT)
    try:
        store = {}
        for kv in range_all(c.kvstub, page=500):
            store[kv.key] = (kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)
        head = c.kvstub.Range(pb.RangeRequest(key=b"\0", range_end=b"\0", count_only=True), TIMEOUT)
        rev = head.header.revision
        if head.count != len(store):
            problems.append("count_only says %d keys, the pages held %d" % (head.count, len(store)))
        live = {l.ID for l in c.leasestub.LeaseLeases(pb.LeaseLeasesRequest(), TIMEOUT).leases}

        by_model = {m.prefix: {} for m in models}
        for k, v in store.items():
            m = next((p for p in by_model if k.startswith(p)), None)
            if m is None:
                problems.append("phantom key %r" % k)
            else:
                by_model[m][k] = v
        for m in models:
            actual = by_model[m.prefix]
            problems += m.resolve(actual, live)
            for k, want in m.keys.items():
                if actual.get(k) != want:
                    problems.append("acked %r lost or changed: want %s, got %s (last write: %s)" % (
                        k, show(want), show(actual.get(k)), m.last.get(k, "?")))
            for k in actual:
                if k not in m.keys:
                    problems.append("phantom or undeleted key %r: %s (last write: %s)" % (
                        k, show(actual[k]), m.last.get(k, "?")))

        want_leases = set().union(*(m.leases for m in models))
        for lid in sorted(want_leases - live):
            problems.append("acked lease %x missing" % lid)
        for lid in sorted(live - want_leases):
            problems.append("lease %x should not exist (revoked or never granted)" % lid)
        for m in models:
            for lid in sorted(m.leases & live):
                ttl = c.leasestub.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=lid, keys=True), TIMEOUT)
                want_keys = sorted(k for k, v in m.keys.items() if v[4] == lid)
                if sorted(ttl.keys) != want_keys or ttl.grantedTTL != LEASE_TTL or ttl.TTL <= 0:
                    problems.append("lease %x: TTL %d/%d keys %r, want keys %r" % (
                        lid, ttl.TTL, ttl.grantedTTL, sorted(ttl.keys)[:5], want_keys[:5]))

        if sh.compact_inflight:  # was the compaction in flight applied?
            r = compacted_at(c, sh.compact_inflight - 1)
            if r is True:
                sh.compact_acked = sh.compact_inflight
            sh.compact_inflight = 0
        if sh.compact_acked > 1:
            r = compacted_at(c, sh.compact_acked - 1)
            if r is not True:
                problems.append("acked compaction at %d lost: read at %d %s" % (
                    sh.compact_acked, sh.compact_acked - 1, "works" if r is False else r))
            r = compacted_at(c, sh.compact_acked)
            if r is not False:
                problems.append("read at the compaction revision %d: %s" % (
                    sh.compact_acked, "compacted error" if r is True else r))

        if rev < sh.max_rev:
            problems.append("revision went backwards: %d < acked %d" % (rev, sh.max_rev))
        if problems:
            for m in models:
                m.resync(by_model[m.prefix], live)
            sh.max_rev = rev
        pm = models[-1]
        after = {probe_key: pm.after_put(probe_key, b"x")}
        prev = c.put(probe_key, b"x").header.revision
        pm.ack(after, prev, sh)
        if prev != rev + 1:
            problems.append("the put after restart got revision %d, expected %d" % (prev, rev + 1))
        summary = "%d keys, %d leases, rev %d, compacted at %d" % (len(store), len(live), prev, sh.compact_acked)
    except Exception as e:  # noqa: BLE001
        problems.append("verification failed: %s" % rpc_error(e))
        summary = ""
    finally:
        c.close()
    return problems, summary


def load(srv, workers, sh, rng, sig):
    """Runs every worker, the compactor and the defragmenter, and stops the server under them with
    sig (SIGKILL, or SIGTERM for a clean shutdown under load)."""
    stop, killed = threading.Event(), threading.Event()
    threads = [threading.Thread(target=w.run, args=(srv.port, stop, killed, sh)) for w in workers]
    threads.append(threading.Thread(target=compactor, args=(srv.port, stop, killed, sh,
                                                            random.Random(rng.random()))))
    threads.append(threading.Thread(target=defragmenter, args=(srv.port, stop, killed, sh,
                                                               random.Random(rng.random()))))
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.2, 1.0))
    killed.set()
    srv.proc.send_signal(sig)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    return "at the %s: defragment %s, compaction %s" % (
        "kill -9" if sig == signal.SIGKILL else "SIGTERM", "in flight" if sh.defrag_inflight else "idle",
        "to %d in flight" % sh.compact_inflight if sh.compact_inflight else "idle")


def take_problems(workers, sh):
    out = list(sh.problems)
    sh.problems.clear()
    for w in workers:
        out += w.problems
        w.problems.clear()
    return out


def hashkv(port):
    c = etcd3.client(host="127.0.0.1", port=port, timeout=TIMEOUT)
    try:
        r = c.maintenancestub.HashKV(pb.HashKVRequest(revision=0), TIMEOUT)
        return r.hash, r.compact_revision, r.header.revision
    finally:
        c.close()


def main():
    t = Tally()
    rng = random.Random(SEED)
    print("seed %d (CRASH_SEED), %d rounds (CRASH_ROUNDS)" % (SEED, ROUNDS), flush=True)
    data_dir = os.path.join(tempfile.mkdtemp(dir=TMP, prefix="crash."), "data")
    srv = Server("cetcd", data_dir=data_dir)
    if not srv.ok():
        t.fail("cetcd starts", "%s\n%s" % (srv.error, srv.log_tail()))
        t.finish()
    lease_base = rng.randrange(1 << 40, 1 << 50)
    workers = [Worker(w, rng.random(), lease_base + w * LEASE_RANGE) for w in range(WORKERS)]
    models = workers + [Model(b"probe/")]
    sh = Shared()
    started = time.time()
    at_kill = how = ""
    for rnd in range(ROUNDS):
        if rnd:
            if not srv.restart():
                t.fail("round %d: restart after %s" % (rnd, how), "%s\n%s" % (srv.error, srv.log_tail()))
                break
            problems = take_problems(workers, sh)
            vp, summary = verify(srv, models, sh, b"probe/%04d" % rnd)
            problems += vp
            t.check("round %d, after %s: %d acked ops intact (%s)" % (
                rnd, how, sum(m.acked for m in models), summary),
                    not problems, "\n".join(problems[:10] + ["(%d problems)" % len(problems), at_kill,
                                                             "server log:"] + srv.log_tail(6).splitlines()))
        sig = signal.SIGTERM if rnd % 4 == 3 else signal.SIGKILL  # every 4th: a clean stop under load
        how = "SIGTERM" if sig == signal.SIGTERM else "kill -9"
        at_kill = load(srv, workers, sh, rng, sig)
        sh.defrag_inflight = False
    if srv.restart():
        problems = take_problems(workers, sh)
        vp, summary = verify(srv, models, sh, b"probe/final")
        t.check("final: %d acked ops, %d compactions, %d defragments over %d kills (%s)" % (
            sum(m.acked for m in models), sh.compactions, sh.defrags, ROUNDS, summary),
            not problems + vp, "\n".join((problems + vp)[:20]))
        h1 = hashkv(srv.port)
        c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
        c.defragment()
        c.close()
        h2 = hashkv(srv.port)
        t.eq("HashKV unchanged by a Defragment", h1, h2)
        if srv.restart(signal.SIGTERM):
            t.eq("HashKV unchanged by a clean restart", h1, hashkv(srv.port))
            problems, summary = verify(srv, models, sh, b"probe/clean")
            t.check("after a clean restart: store equals the model (%s)" % summary,
                    not problems, "\n".join(problems[:20]))
        else:
            t.fail("clean restart", "%s\n%s" % (srv.error, srv.log_tail()))
    else:
        t.fail("final restart", "%s\n%s" % (srv.error, srv.log_tail()))
    srv.stop()
    print("%.1f s" % (time.time() - started))
    t.finish()


if __name__ == "__main__":
    main()
