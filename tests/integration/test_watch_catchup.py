#!/usr/bin/python3
# test_watch_catchup.py: watchers that start in the past are caught up from history; many of them on one
# key take their events through that key's chain of the step (src/watch/watch_hub.c, batch_key_watchers),
# and one that starts where the one before it did, with the same options, takes a copy of its batch,
# beside watchers of other keys and of prefixes. Every watcher must see exactly what Debian's etcd sends
# it: the same events, revisions, values and prev_kv, with filters, across more than the 1000 revisions
# one history response may hold.
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
from etcd3.etcdrpc import rpc_pb2  # noqa: E402
from lib import Server, Tally  # noqa: E402

t = Tally()
HOT = b"hot"  # the key most watchers watch
WRITES = 1600


def write_history(c):
    """The same writes on either server: the hot key changed and deleted, other keys between."""
    c.put(b"warm", b"w0")
    for i in range(WRITES):
        if i % 97 == 50:
            c.delete(HOT)
        elif i % 3 == 0:
            c.put(b"other/%d" % (i % 11), b"o%d" % i)
        else:
            c.put(HOT, b"v%d" % i)
        if i % 400 == 399:
            c.put(b"warm", b"w%d" % i)


# (key, prefix, start revision, filters, prev_kv)
NOPUT, NODEL = rpc_pb2.WatchCreateRequest.NOPUT, rpc_pb2.WatchCreateRequest.NODELETE
SPECS = [(HOT, False, r, f, pk) for r in (2, 3, 40, 400, 1000, 1500) for f in ([], [NOPUT], [NODEL])
         for pk in (False, True)]
SPECS += [(HOT, False, 2, [], False)] * 3 + [(HOT, False, 400, [NOPUT], True)] * 2  # batches shared
SPECS += [(b"warm", False, 2, [], True), (b"other/3", False, 10, [], False), (b"other/", True, 5, [], True),
          (b"h", True, 2, [NODEL], False), (b"nothing", False, 2, [], False)]


def history():
    """(revision, key, is_put) of every change write_history makes on an empty store (revision 1)."""
    out, rev = [], 1
    ops = [(b"warm", True)]
    for i in range(WRITES):
        if i % 97 == 50:
            ops.append((HOT, False))
        elif i % 3 == 0:
            ops.append((b"other/%d" % (i % 11), True))
        else:
            ops.append((HOT, True))
        if i % 400 == 399:
            ops.append((b"warm", True))
    for key, is_put in ops:
        rev += 1
        out.append((rev, key, is_put))
    return out


def expected_count(spec):
    key, prefix, start, filters, _ = spec
    n = 0
    for rev, k, is_put in history():
        if rev < start or not (k.startswith(key) if prefix else k == key):
            continue
        if (is_put and NOPUT in filters) or (not is_put and NODEL in filters):
            continue
        n += 1
    return n


def watch_all(srv, total_events):
    """Opens every watcher of SPECS on one Watch stream and collects its events until each has what it
    must (or 60 s pass): (type, key, mod_revision, value, prev_kv value) each."""
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
    stop = threading.Event()

    def requests():
        for key, prefix, start, filters, pk in SPECS:
            req = rpc_pb2.WatchCreateRequest(key=key, start_revision=start, filters=filters, prev_kv=pk)
            if prefix:
                req.range_end = etcd3.utils.increment_last_byte(key)
            yield rpc_pb2.WatchRequest(create_request=req)
        stop.wait(60)

    results = {n: [] for n in range(len(SPECS))}
    by_id, created = {}, 0
    responses = etcd3.etcdrpc.WatchStub(c.channel).Watch(requests(), timeout=90)
    for resp in responses:
        if resp.created:
            by_id[resp.watch_id] = created
            created += 1
        n = by_id.get(resp.watch_id)
        for ev in resp.events:
            prev = ev.prev_kv.value if ev.HasField("prev_kv") else None
            results[n].append((ev.type, ev.kv.key, ev.kv.mod_revision, ev.kv.value, prev))
        if created == len(SPECS) and all(len(results[i]) >= total_events[i] for i in results):
            break
    stop.set()
    responses.cancel()
    c.close()
    return results


servers = {kind: Server(kind) for kind in ("cetcd", "etcd")}
for kind, srv in servers.items():
    if not srv.ok():
        t.fail("%s starts" % kind, srv.error)
        t.finish()
    write_history(etcd3.client(host="127.0.0.1", port=srv.port, timeout=30))

counts = {n: expected_count(spec) for n, spec in enumerate(SPECS)}
t.check("the watchers must get events, past 1000 revisions", sum(counts.values()) > 10000 and
        max(counts.values()) > 1000, counts)
want = watch_all(servers["etcd"], counts)
got = watch_all(servers["cetcd"], counts)
for n, spec in enumerate(SPECS):
    key, prefix, start, filters, pk = spec
    name = "watch %r%s from %d filters %s prev_kv %s: %d events as etcd" % (
        key, "*" if prefix else "", start, filters, pk, len(want[n]))
    t.check(name + " (etcd sent %d)" % len(want[n]), len(want[n]) == counts[n], want[n][-3:])
    t.eq(name, want[n], got[n])
for srv in servers.values():
    srv.stop()
t.finish()
