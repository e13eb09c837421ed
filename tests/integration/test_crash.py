#!/usr/bin/python3
# test_crash.py: the durability promise under kill -9. Concurrent writers record every acknowledged
# put with its revision; the server is killed at a random moment, restarted on the same data dir,
# and every acknowledged write must be there with its revision, with no gap and no phantom.
import os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import etcd3  # noqa: E402
from lib import CETCD_BIN as BIN, free_port  # noqa: E402

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
WRITERS = 16


def start(data_dir):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    proc = subprocess.Popen([BIN, "--data-dir", data_dir, "--listen-client-urls", url,
                             "--advertise-client-urls", url],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(data_dir + ".log"), "a"))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("cetcd exited with %s" % proc.returncode)
            time.sleep(0.02)
    raise RuntimeError("cetcd did not listen")


def writer(port, round_no, wid, acked, inflight, stop):
    client = etcd3.client(host="127.0.0.1", port=port, timeout=2)
    i = 0
    while not stop.is_set():
        key = "r%03d/w%02d/%06d" % (round_no, wid, i)
        value = "v-%s" % key
        inflight[wid] = key
        try:
            resp = client.put(key, value)
        except Exception:
            return
        acked.append((key, value, resp.header.revision))
        i += 1


def verify(port, acked, inflight_keys, expect_min_rev):
    client = etcd3.client(host="127.0.0.1", port=port, timeout=5)
    problems = []
    present = {}
    for value, meta in client.get_all():
        present[meta.key.decode()] = (value.decode(), meta.mod_revision)
    for key, value, rev in acked:
        got = present.get(key)
        if got != (value, rev):
            problems.append("acked %s@%d missing or changed: %r" % (key, rev, got))
    acked_keys = {k for k, _, _ in acked}
    for key in present:
        if key not in acked_keys and key not in inflight_keys:
            problems.append("phantom key %s" % key)
    revs = sorted(r for _, r in present.values())
    if revs and revs != list(range(2, 2 + len(revs))):
        problems.append("revisions have a gap or duplicate: %d keys, max rev %d" % (len(revs), revs[-1]))
    if revs and revs[-1] < expect_min_rev:
        problems.append("revision went backwards: %d < %d" % (revs[-1], expect_min_rev))
    return problems


def present_revisions(port):
    client = etcd3.client(host="127.0.0.1", port=port, timeout=5)
    return [meta.mod_revision for _, meta in client.get_all()]


def probe(port, round_no, acked):
    """One more put: its revision must follow the newest revision in the store."""
    client = etcd3.client(host="127.0.0.1", port=port, timeout=5)
    key = "probe/%03d" % round_no
    rev = client.put(key, "x").header.revision
    acked.append((key, "x", rev))
    return rev


def main():
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="cetcd-crash.")
    data_dir = os.path.join(tmp, "data")
    acked = []
    all_inflight = set()
    rng = random.Random(int(os.environ.get("CRASH_SEED", str(int(time.time())))))
    max_rev = 0
    try:
        for round_no in range(ROUNDS):
            proc, port = start(data_dir)
            if round_no:
                problems = verify(port, acked, all_inflight, max_rev)
                newest = max([max_rev] + [r for r in present_revisions(port)])
                after = probe(port, round_no, acked)
                if after != newest + 1:
                    problems.append("revision after restart %d, expected %d" % (after, newest + 1))
                if problems:
                    failed += 1
                    print("FAIL - round %d: %s" % (round_no, "; ".join(problems[:5])))
                else:
                    passed += 1
                    print("ok   - round %d: %d acked writes intact" % (round_no, len(acked)))
                max_rev = after
            stop = threading.Event()
            inflight = {}
            threads = [threading.Thread(target=writer, args=(port, round_no, w, acked, inflight, stop))
                       for w in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            stop.set()
            for t in threads:
                t.join()
            all_inflight.update(inflight.values())
            if acked:
                max_rev = max(max_rev, max(r for _, _, r in acked))
        proc, port = start(data_dir)
        problems = verify(port, acked, all_inflight, max_rev)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if problems:
            failed += 1
            print("FAIL - final: %s" % "; ".join(problems[:5]))
        else:
            passed += 1
            print("ok   - final check: %d acked writes over %d kills" % (len(acked), ROUNDS))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
