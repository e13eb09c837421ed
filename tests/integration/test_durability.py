#!/usr/bin/python3
# test_durability.py: the storage promises seen from outside: group commit (one fsync per write for
# one writer, far fewer than writes for 64), the space quota, a torn log tail cut at start-up, and
# a corrupt segment refused with exit 2 and the file untouched.
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
from lib import Server, Tally  # noqa: E402

t = Tally()


def fsyncs(srv):
    text = urllib.request.urlopen("http://%s/metrics" % srv.ep, timeout=5).read().decode()
    m = re.search(r"^etcd_disk_wal_fsync_duration_seconds_count (\d+)", text, re.M)
    return int(m.group(1))


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


group_commit()
quota()
torn_tail()
corruption()
t.finish()
