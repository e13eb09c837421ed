#!/usr/bin/python3
# test_durability.py: the storage promises seen from outside: group commit (one fsync per write for
# one writer, far fewer than writes for 64), the space quota, a torn log tail cut at start-up, a
# corrupt segment refused with exit 2 and the file untouched, kill -9 among segment rolls (whose
# file creation rides in the sync thread's job) losing no acknowledged put, and kill -9 while 64 puts
# in flight make batches wait for the writers just answered (gathering) losing none either.
import hashlib
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
from lib import Server, Tally  # noqa: E402

t = Tally()


def metric(srv, name):
    text = urllib.request.urlopen("http://%s/metrics" % srv.ep, timeout=5).read().decode()
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1))


def fsyncs(srv):
    return metric(srv, "etcd_disk_wal_fsync_duration_seconds_count")


def group_commit():
    srv = Server("cetcd")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
    c.put("warm", "up")
    before = fsyncs(srv)
    for i in range(200):
        c.put("seq/%d" % i, "v")
    t.eq("one writer: one fsync per write", 200, fsyncs(srv) - before)

    # 64 writers: 64 Puts in flight at once (gRPC futures), 40 times over
    writers, rounds = 64, 40
    pb = etcd3.etcdrpc
    errors = []
    before = fsyncs(srv)
    for r in range(rounds):
        futures = [c.kvstub.Put.future(pb.PutRequest(key=b"par/%d/%d" % (w, r), value=b"v"), 10)
                   for w in range(writers)]
        for f in futures:
            try:
                f.result()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
    total = writers * rounds
    synced = fsyncs(srv) - before
    t.check("64 writers: all writes acknowledged", not errors, errors[:3])
    t.check("64 writers: fsyncs (%d) far fewer than writes (%d)" % (synced, total), synced * 2 < total,
            "%d fsyncs for %d writes" % (synced, total))
    count = c.get_prefix("par/", keys_only=True)
    t.eq("64 writers: every key present", total, sum(1 for _ in count))
    srv.stop()


def quota():
    srv = Server("cetcd", "--quota-backend-bytes", "300000")
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
    err = None
    for i in range(200):
        try:
            c.put("big/%d" % i, "x" * 4096)
        except Exception as e:  # noqa: BLE001
            err = e
            break
    t.check("quota: writes fail past the quota", err is not None, "no error after 200 puts")
    t.check("quota: etcd's message", err is not None and "database space exceeded" in str(err), str(err))
    value, _ = c.get("big/0")
    t.eq("quota: reads keep working", b"x" * 4096, value)
    alarms = c.list_alarms()
    t.check("quota: NOSPACE alarm raised", any(a.alarm_type == etcd3.etcdrpc.NOSPACE for a in alarms), alarms)
    srv.stop()


def write_some(srv, n):
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
    for i in range(n):
        c.put("k/%03d" % i, "value-%d" % i)
    c.close()


def torn_tail():
    srv = Server("cetcd")
    write_some(srv, 50)
    srv.stop()
    seg = os.path.join(srv.dir, "0000000000000001.log")
    with open(seg, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x01\x00\x00\x00garbage-half-record")
    t.check("torn tail: restart succeeds", srv.restart(), srv.log_tail())
    t.check("torn tail: the cut is logged", "truncated torn tail" in srv.log_tail(20), srv.log_tail(20))
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
    t.eq("torn tail: all 50 keys intact", 50, sum(1 for _ in c.get_prefix("k/")))
    t.eq("torn tail: revisions go on", 52, c.put("after", "x").header.revision)
    srv.stop()


def corruption():
    srv = Server("cetcd")
    write_some(srv, 50)
    srv.stop()
    seg = os.path.join(srv.dir, "0000000000000001.log")
    with open(seg, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0x40
    with open(seg, "wb") as f:
        f.write(data)
    srv.restart()
    t.check("corrupt: refuses to start", not srv.alive(), "still running")
    t.eq("corrupt: exit status 2", 2, srv.proc.returncode)
    t.check("corrupt: message names the file and offset",
            re.search(r"0000000000000001\.log.*offset \d+", srv.log_tail(3)) is not None, srv.log_tail(3))
    with open(seg, "rb") as f:
        t.check("corrupt: the segment is untouched", f.read() == bytes(data))


def segment_files(srv):
    return sum(1 for n in os.listdir(srv.dir) if n.endswith(".log"))


def big_value(key):
    return hashlib.sha256(key.encode()).digest() * 3125  # 100 000 bytes, known from the key


def put_until_killed(srv, acked, wid, stop):
    c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
    i = 0
    while not stop.is_set():
        key = "roll/%d/%06d/%s" % (wid, i, srv.proc.pid)
        try:
            c.put(key, big_value(key))
        except Exception:  # noqa: BLE001  the kill
            break
        acked.append(key)
        i += 1
    c.close()


def kill_among_rolls():
    """4 writers of 100 KB values roll a 64 MiB segment every ~650 puts; the server is killed at a
    random moment once 3 or 4 rolls are behind it, 3 times over. Each restart must open the data dir
    and hold every acknowledged put whole."""
    srv = Server("cetcd", "--quota-backend-bytes", str(8 << 30))
    rng = random.Random()
    acked, rounds = [], 3
    for rnd in range(rounds):
        stop = threading.Event()
        threads = [threading.Thread(target=put_until_killed, args=(srv, acked, w, stop)) for w in range(4)]
        for th in threads:
            th.start()
        want_files = segment_files(srv) + rng.choice((3, 4))
        deadline = time.time() + 120
        while segment_files(srv) < want_files and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.5))
        files = segment_files(srv)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        for th in threads:
            th.join()
        rolled, restarted = files >= want_files, srv.restart()
        t.check("rolls: round %d: killed with %d segment files" % (rnd, files), rolled,
                "only %d segment files after 120 s" % files)
        t.check("rolls: round %d: restart after kill -9" % rnd, restarted, srv.log_tail())
        if not rolled or not restarted:
            break
        c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
        bad = [k for k in acked if c.get(k)[0] != big_value(k)]
        c.close()
        t.check("rolls: round %d: all %d acknowledged 100 KB puts intact" % (rnd, len(acked)), not bad,
                "%d missing or wrong, e.g. %s" % (len(bad), bad[:3]))
    srv.stop()


def kill_while_gathering():
    """64 Puts kept in flight (each answered one replaced at once by the next), so that batches wait
    for the writers the last sync answered; the server is killed at a random moment, 3 times over.
    Each restart must hold every acknowledged put. kill -9 keeps what reached the page cache, so this
    catches a reply sent before its batch was written (a hit only if the kill lands in such a gap);
    test_commit.c checks deterministically that a gathering batch's output is held until its sync."""
    srv = Server("cetcd")
    rng = random.Random()
    pb = etcd3.etcdrpc
    acked, in_flight, rounds = [], 64, 3
    for rnd in range(rounds):
        c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=10)
        fsyncs_before, acked_before, synced, waits = fsyncs(srv), len(acked), 0, 0

        def start(i):
            key = b"gather/%d/%07d" % (rnd, i)
            return key, c.kvstub.Put.future(pb.PutRequest(key=key, value=key), 10)

        pending = [start(i) for i in range(in_flight)]
        n, kill_at, killed = in_flight, time.time() + rng.uniform(0.5, 1.5), False
        while pending:
            if not killed and time.time() >= kill_at:
                synced = fsyncs(srv) - fsyncs_before
                waits = metric(srv, "cetcd_commit_gather_waits_total")
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait()
                killed = True
            still = []
            for key, f in pending:
                if not f.done():
                    still.append((key, f))
                    continue
                if f.exception() is None:
                    acked.append(key)
                    if not killed:
                        still.append(start(n))
                        n += 1
            pending = still
            time.sleep(0.001)
        c.close()
        restarted = srv.restart()
        done = len(acked) - acked_before
        t.check("gathering: round %d: batches waited for writers (%d)" % (rnd, waits), waits > 0,
                "no batch waited: the load did not exercise gathering")
        t.check("gathering: round %d: restart after kill -9 (%d puts acknowledged, about %.0f a sync)"
                % (rnd, done, done / max(synced, 1)), restarted, srv.log_tail())
        if not restarted:
            break
        c = etcd3.client(host="127.0.0.1", port=srv.port, timeout=30)
        bad = [k for k in acked if c.get(k)[0] != k]
        c.close()
        t.check("gathering: round %d: all %d acknowledged puts there" % (rnd, len(acked)), not bad,
                "%d missing or wrong, e.g. %s" % (len(bad), bad[:3]))
    srv.stop()


group_commit()
quota()
torn_tail()
corruption()
kill_among_rolls()
kill_while_gathering()
t.finish()
