#!/usr/bin/python3
# test_count_steps.py: a page of a large range counts the whole range (etcd's count), and a list of
# more keys than one walk returns them all; cetcd does both over several loop turns (storage's
# mv_range_rest). With 40,000 keys under a prefix, the pages, counts, count-only ranges, whole lists,
# ranges filtered by revision, the last keys sorted descending and the first by create or mod revision,
# at an older and at the current revision, must equal etcd's; and
# while another client writes in the range and compacts past the page's revision, every answer must be
# the count at the page's revision or etcd's "required revision has been compacted", never another.
# (The server prunes the index on its 1 s check, after these counts are done: that the pruning waits for
# a count below it is tested in tests/unit/test_range_select.c, count_rest_in_steps.)
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
import grpc  # noqa: E402
from etcd3 import etcdrpc as pb  # noqa: E402
from lib import Server, Tally  # noqa: E402

t = Tally()
KEYS = 40000  # more than two steps of the count (MV_RANGE_STEP_KEYS, 8192)
PREFIX = b"/count/"
END = b"/count0"


def key(i):
    return PREFIX + b"%06d" % i


def txn_puts(c, keys, value=b"v"):
    for at in range(0, len(keys), 128):  # etcd's --max-txn-ops
        ops = [pb.RequestOp(request_put=pb.PutRequest(key=k, value=value)) for k in keys[at:at + 128]]
        c.kvstub.Txn(pb.TxnRequest(success=ops), 30)


def txn_deletes(c, keys):
    for at in range(0, len(keys), 128):
        ops = [pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=k)) for k in keys[at:at + 128]]
        c.kvstub.Txn(pb.TxnRequest(success=ops), 30)


def page(c, start=PREFIX, limit=500, revision=0, count_only=False, keys_only=False, sort_order=0, end=END,
         **filters):
    r = c.kvstub.Range(pb.RangeRequest(key=start, range_end=end, limit=limit, revision=revision,
                                       count_only=count_only, keys_only=keys_only, sort_order=sort_order,
                                       **filters), 30)
    return (r.count, r.more, [(kv.key, kv.mod_revision, kv.value) for kv in r.kvs])


def answers(kind):
    """The same writes and reads on a fresh server of this kind; returns what the reads gave."""
    srv = Server(kind)
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    for i in range(3):  # a revision of their own each: no tie on create revision among the first keys
        c.put(PREFIX + b"single%d" % i, b"single")
    first = c.kvstub.Range(pb.RangeRequest(key=b"x"), 30).header.revision + 1
    txn_puts(c, [key(i) for i in range(KEYS)])
    old = c.kvstub.Range(pb.RangeRequest(key=b"x"), 30).header.revision
    txn_deletes(c, [key(i) for i in range(0, KEYS, 7)])
    txn_puts(c, [key(i) + b"+" for i in range(0, KEYS, 11)], b"added")
    for i in (5, 9005, 30001):  # nor on mod revision among the last ones
        c.put(key(i), b"updated")
    out = {}
    for rev_name, rev in (("old", old), ("now", 0)):
        out[rev_name + " first page"] = page(c, revision=rev)
        out[rev_name + " middle page"] = page(c, start=key(KEYS // 2), revision=rev)
        out[rev_name + " limit 1, keys only"] = page(c, limit=1, revision=rev, keys_only=True)
        out[rev_name + " count only"] = page(c, limit=0, revision=rev, count_only=True)
        out[rev_name + " count only, limit 3"] = page(c, limit=3, revision=rev, count_only=True)
        # more keys than one walk of the server: sized, then packed, in steps
        out[rev_name + " whole list"] = page(c, limit=0, revision=rev)
        out[rev_name + " whole list, keys only"] = page(c, limit=0, revision=rev, keys_only=True)
        out[rev_name + " limit 30000"] = page(c, limit=30000, revision=rev)
        out[rev_name + " limit 30000, sorted by key ascending"] = page(c, limit=30000, revision=rev, sort_order=1)
        out[rev_name + " limit 30000 from the middle"] = page(c, start=key(KEYS // 3), limit=30000, revision=rev)
        # sorted by key, descending, with a limit: the last keys, walked backwards, then the count before
        out[rev_name + " limit 1, sorted by key descending"] = page(c, limit=1, revision=rev, sort_order=2)
        out[rev_name + " limit 500 to the middle, descending"] = page(c, limit=500, revision=rev, sort_order=2,
                                                                      end=key(KEYS // 2))
        out[rev_name + " limit 8191, descending"] = page(c, limit=8191, revision=rev, sort_order=2, keys_only=True)
        out[rev_name + " whole list, descending"] = page(c, limit=0, revision=rev, sort_order=2)
        out[rev_name + " whole list, keys only, descending, filtered"] = page(
            c, limit=0, revision=rev, sort_order=2, keys_only=True, min_mod_revision=first + 100)
        out[rev_name + " limit 8192, descending (all sorted)"] = page(c, limit=8192, revision=rev, sort_order=2,
                                                                      keys_only=True)
        # sorted by create or mod revision: the best keys kept while walking (no two tie), or, when some
        # tie, all sorted as etcd does (the txns above put 128 keys at one revision)
        out[rev_name + " limit 2, by create revision"] = page(c, limit=2, revision=rev, sort_order=1,
                                                              sort_target=pb.RangeRequest.CREATE)
        out[rev_name + " limit 3, by mod revision descending"] = page(c, limit=3, revision=rev, sort_order=2,
                                                                      sort_target=pb.RangeRequest.MOD)
        out[rev_name + " limit 10, by mod revision descending (ties)"] = page(
            c, limit=10, revision=rev, sort_order=2, sort_target=pb.RangeRequest.MOD)
        out[rev_name + " limit 4, by create revision descending (ties)"] = page(
            c, limit=4, revision=rev, sort_order=2, sort_target=pb.RangeRequest.CREATE)
        out[rev_name + " limit 2, no order, by mod revision, filtered"] = page(
            c, limit=2, revision=rev, sort_target=pb.RangeRequest.MOD, max_mod_revision=first + 2)
        out[rev_name + " limit 5, by key descending, filtered"] = page(c, limit=5, revision=rev, sort_order=2,
                                                                       min_mod_revision=first + 5)
        # filtered by revision, in key order: also in steps (the txns put 128 keys a revision)
        few, most = first + 2, first + KEYS // 128 // 4
        out[rev_name + " whole list, few pass max_mod_revision"] = page(c, limit=0, revision=rev, max_mod_revision=few)
        out[rev_name + " limit 20000, min_mod_revision"] = page(c, limit=20000, revision=rev, min_mod_revision=most)
        out[rev_name + " limit 3, max_create_revision"] = page(c, limit=3, revision=rev, max_create_revision=few)
        out[rev_name + " whole list, keys only, min_create_revision"] = page(
            c, limit=0, revision=rev, keys_only=True, min_create_revision=most)
    srv.stop()
    return out


def judge(seen, future, round_, want, exact):
    """Tallies one answer at a page's revision in seen: exact (exact(reply) holds), etcd's compacted
    error, or wrong."""
    try:
        r = future.result()
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in e.details():
            seen["compacted"] += 1
        else:
            seen["wrong"].append((round_, e.code(), e.details()))
        return
    if exact(r):
        seen["exact"] += 1
    else:
        seen["wrong"].append((round_, len(r.kvs), r.count, want))


def under_writes_and_compaction():
    """cetcd: pages and whole lists at revision r while another client writes in the range and
    compacts past r."""
    srv = Server("cetcd")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    w = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    txn_puts(c, [key(i) for i in range(KEYS)])
    w.get(b"x")  # connected before the rounds
    seen = {"exact": 0, "compacted": 0, "wrong": [], "straddled": 0}
    present = [key(i) for i in range(KEYS)]
    for round_ in range(3):
        rev = c.kvstub.Range(pb.RangeRequest(key=b"x"), 30).header.revision
        want = KEYS - round_ * 50  # each round below deletes 50 keys of the range and adds 50 more after

        def writer():  # deletes at the range's end, which the counts reach last, then compacts past them
            txn_deletes(w, [key(KEYS - 1 - round_ * 50 - n) for n in range(50)])
            txn_puts(w, [key(n) + b"-%d" % round_ for n in range(50)], b"x")
            now = w.kvstub.Range(pb.RangeRequest(key=b"x"), 30).header.revision
            w.kvstub.Compact(pb.CompactionRequest(revision=now), 30)
            compacted_at.append(time.monotonic())

        compacted_at, done_at = [], []
        # each its own range_end, so that none takes its count from another's (the count cache)
        futures = [c.kvstub.Range.future(pb.RangeRequest(key=PREFIX, range_end=END + b"%d" % i, limit=2,
                                                         revision=rev), 60) for i in range(100)]
        lists = [c.kvstub.Range.future(pb.RangeRequest(key=PREFIX, range_end=END, revision=rev,
                                                       keys_only=i % 2 == 1), 60) for i in range(4)]
        for f in futures:
            f.add_done_callback(lambda f: done_at.append(time.monotonic()))
        th = threading.Thread(target=writer)
        th.start()
        for f in futures:
            judge(seen, f, round_, want, lambda r: r.count == want)
        for f in lists:
            judge(seen, f, round_, want,
                  lambda r: [kv.key for kv in r.kvs] == present and r.count == want and not r.more)
        th.join()
        seen["straddled"] += sum(1 for d in done_at if d > compacted_at[0])
        # the writer's 50 new keys go again, so that the next round's count is KEYS less its deletes
        txn_deletes(c, [key(n) + b"-%d" % round_ for n in range(50)])
        present = present[:-50]
    alive = srv.alive()
    srv.stop()
    return seen, alive


def over_budget():
    """cetcd with a 4 MiB reply budget: a whole list whose first walk fits but whole does not is refused
    with RESOURCE_EXHAUSTED once its sizing steps pass the budget; pages still work."""
    srv = Server("cetcd", "--max-reply-bytes", str(4 << 20))
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    txn_puts(c, [key(i) for i in range(KEYS)])
    try:
        c.kvstub.Range(pb.RangeRequest(key=PREFIX, range_end=END), 30)
        refused = "answered"
    except grpc.RpcError as e:
        refused = "%s %s" % (e.code(), e.details())
    count, more, kvs = page(c)
    out = (refused, count, more, len(kvs), srv.alive())
    srv.stop()
    return out


def within_budget():
    """cetcd with a budget a whole list of KEYS fits (about 126 bytes a key as the budget counts a kv
    returned) but would not if each key also cost the ~40 bytes of an entry kept: a list sized in steps
    keeps none, so both orders are answered whole."""
    srv = Server("cetcd", "--max-reply-bytes", "6000000")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    txn_puts(c, [key(i) for i in range(KEYS)])
    got = []
    for order in (0, 2):
        try:
            got.append(len(c.kvstub.Range(pb.RangeRequest(key=PREFIX, range_end=END, sort_order=order), 30).kvs))
        except grpc.RpcError as e:
            got.append("%s %s" % (e.code(), e.details()))
    srv.stop()
    return got


def dropped_midway():
    """cetcd: whole lists (in key order and descending) and pages sorted by mod revision whose clients
    cancel them or let their deadline pass while they are sized, packed or chosen in steps; the others
    must be exact (as the same request answered alone), and the server well."""
    srv = Server("cetcd")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    txn_puts(c, [key(i) for i in range(KEYS)], b"v" * 40)  # a 3.1 MB list: under the client's 4 MiB
    kinds = [pb.RangeRequest(key=PREFIX, range_end=END),
             pb.RangeRequest(key=PREFIX, range_end=END, sort_order=2),
             pb.RangeRequest(key=PREFIX, range_end=END, limit=5, sort_order=2, sort_target=pb.RangeRequest.MOD)]
    want = [[(kv.key, kv.mod_revision) for kv in c.kvstub.Range(r, 30).kvs] for r in kinds]
    assert [k for k, _ in want[0]] == [key(i) for i in range(KEYS)] and want[1] == want[0][::-1]
    calls = []
    for i in range(36):
        timeout = 0.005 if i % 3 == 1 else 60
        f = c.kvstub.Range.future(kinds[i // 3 % 3], timeout)
        if i % 3 == 2:
            f.cancel()
        calls.append((i // 3 % 3, f))
    exact = dropped = wrong = 0
    for kind, f in calls:
        try:
            r = f.result()
            if [(kv.key, kv.mod_revision) for kv in r.kvs] == want[kind] and r.count == KEYS:
                exact += 1
            else:
                wrong += 1
        except grpc.FutureCancelledError:
            dropped += 1
        except grpc.RpcError as e:
            dropped += e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
            wrong += e.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
    after = page(c, limit=0)
    out = (exact, dropped, wrong, after[0], len(after[2]), srv.alive())
    srv.stop()
    return out


def pool_shared():
    """cetcd with a 9 MiB reply pool, 9 MiB a reply: 4 whole lists of ~3.5 MB sent at once, each sized
    over several loop turns. Each is held to the pool when it is reserved: the replies held together
    stay within it, and the lists that do not fit are refused."""
    srv = Server("cetcd", "--max-reply-bytes", str(9 << 20), "--max-reply-pool-bytes", str(9 << 20))
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    txn_puts(c, [key(i) for i in range(KEYS)], b"p" * 60)
    futures = [c.kvstub.Range.future(pb.RangeRequest(key=PREFIX, range_end=END), 30) for _ in range(4)]
    answered = refused = 0
    for f in futures:
        try:
            answered += len(f.result().kvs) == KEYS
        except grpc.RpcError as e:
            refused += e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    alone = len(c.kvstub.Range(pb.RangeRequest(key=PREFIX, range_end=END), 30).kvs)
    srv.stop()
    return answered, refused, alone


def main():
    got, want = answers("cetcd"), answers("etcd")
    for name in want:
        t.eq("%s: count %d, more %s, %d kvs as etcd" % (name, want[name][0], want[name][1], len(want[name][2])),
             want[name], got[name])
    seen, alive = under_writes_and_compaction()
    t.check("under writes and compaction past their revision: %d pages and whole lists exact (%d answered "
            "after the compaction), %d compacted, none other" % (seen["exact"], seen["straddled"], seen["compacted"]),
            not seen["wrong"] and seen["exact"] > 0, str(seen["wrong"][:5]))
    t.check("cetcd alive", alive)
    refused, count, more, n, alive = over_budget()
    t.check("a whole list over a 4 MiB --max-reply-bytes: RESOURCE_EXHAUSTED, naming its budget",
            refused.startswith("StatusCode.RESOURCE_EXHAUSTED cetcd: reply larger than the %d bytes" % (4 << 20)),
            refused)
    t.eq("after it, a page of the same range: count, more, kvs", (KEYS, True, 500), (count, more, n))
    t.check("cetcd alive after the refused list", alive)
    t.eq("a 6 MB budget: whole lists of %d keys, ascending and descending, answered" % KEYS, [KEYS, KEYS],
         within_budget())
    exact, dropped, wrong, count, n, alive = dropped_midway()
    t.check("36 whole lists (in key order, descending) and sorted pages, a third cancelled and a third past a "
            "5 ms deadline midway: %d exact, %d dropped, none wrong" % (exact, dropped),
            wrong == 0 and exact >= 12 and exact + dropped == 36, str(wrong))
    t.eq("after them, a whole list: count and kvs", (KEYS, KEYS), (count, n))
    t.check("cetcd alive after the dropped lists", alive)
    answered, refused, alone = pool_shared()
    t.check("4 lists of ~3.5 MB at once, 9 MiB pool: %d answered (at most 2 fit), %d refused "
            "(RESOURCE_EXHAUSTED)" % (answered, refused), 1 <= answered <= 2 and answered + refused == 4)
    t.eq("then one such list alone is answered whole", KEYS, alone)


main()
t.finish()
