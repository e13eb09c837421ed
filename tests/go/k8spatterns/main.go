// k8spatterns: drives an etcd v3 server the way newer kube-apiservers (1.27 .. 1.33) use it, with the
// real Go clientv3 (Debian's golang-etcd-server-dev, built offline in GOPATH mode), patterns that a
// 1.20 apiserver does not exercise:
//   - create as Txn If(ModRevision(k)=0) Then(Put); update/delete as
//     Txn If(ModRevision(k)=rev) Then(Put|Delete) Else(Get), conflicts read back from the Else
//   - paged lists pinned to the first page's header revision, continued from lastKey+"\x00", with
//     "has more" from count (newer apiservers) and from more (older), which must agree
//   - count-only and keys-only ranges
//   - the compactor: Txn If(Version("compact_rev_key")=v) Then(Put) Else(Get), then Compact, with a
//     watch on compact_rev_key (newer apiservers follow other apiservers' compactions through it)
//   - one lease for many keys, never kept alive: its expiry deletes all of them, the watchers see the
//     deletes with prev_kv
//   - RequestProgress on a watch stream (ConsistentListFromCache) and Status's version (>= 3.5.13 for
//     that feature to be on)
//   - unknown methods (KV/RangeStream of newer etcd clients) answered UNIMPLEMENTED so that the caller
//     falls back
//   - the health check Get("/registry/health") answered within 2 s while 64 clients write
//
// Prints ok/FAIL lines and "N passed, N failed". With -transcript FILE it also writes the deterministic
// results (revisions, succeeded flags, counts, keys, values) so that a run against cetcd and one
// against etcd, each on a fresh server, can be compared line by line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	endpoints  = flag.String("endpoints", "127.0.0.1:2379", "server endpoint")
	transcript = flag.String("transcript", "", "write the deterministic results here")
	minVersion = flag.String("min-version", "3.5.13",
		"Status must report at least this version (empty: only print it); newer apiservers turn "+
			"ConsistentListFromCache off below 3.5.13")
	writers    = flag.Int("writers", 64, "concurrent writing clients during the health check")
	healthDur  = flag.Duration("health-for", 5*time.Second, "how long the writers write")
	healthMax  = flag.Duration("health-max", 2*time.Second, "the apiserver's health check timeout")
	leaseKeys  = flag.Int("lease-keys", 200, "keys attached to the one lease")
	listKeys   = flag.Int("list-keys", 1000, "objects for the paged list")
	listLimit  = flag.Int64("list-limit", 128, "page size")
	verboseOut = flag.Bool("v", false, "print the transcript too")
)

var passed, failed int
var tr []string

func report(name string, err error) {
	if err == nil {
		passed++
		fmt.Printf("ok   - %s\n", name)
	} else {
		failed++
		fmt.Printf("FAIL - %s: %v\n", name, err)
	}
}

func note(format string, a ...interface{}) {
	line := fmt.Sprintf(format, a...)
	tr = append(tr, line)
	if *verboseOut {
		fmt.Println("  " + line)
	}
}

func newClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
}

func ctxT(d time.Duration) context.Context {
	ctx, _ := context.WithTimeout(context.Background(), d) //nolint:govet // ends with the program
	return ctx
}

const opT = 5 * time.Second

// --- create / update / delete as the apiserver's etcd3 store does them

func create(c *clientv3.Client, key, val string, opts ...clientv3.OpOption) (*clientv3.TxnResponse, error) {
	return c.Txn(ctxT(opT)).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val, opts...)).Commit()
}

func update(c *clientv3.Client, key, val string, rev int64) (*clientv3.TxnResponse, error) {
	return c.Txn(ctxT(opT)).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, val)).Else(clientv3.OpGet(key)).Commit()
}

func del(c *clientv3.Client, key string, rev int64) (*clientv3.TxnResponse, error) {
	return c.Txn(ctxT(opT)).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
}

// elseGet is what the store reads from a failed update: the Else branch's range response.
func elseGet(r *clientv3.TxnResponse) (*mvccpb.KeyValue, error) {
	if len(r.Responses) != 1 || r.Responses[0].GetResponseRange() == nil {
		return nil, fmt.Errorf("failed txn: %d responses, want one range response", len(r.Responses))
	}
	kvs := r.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, nil
	}
	return kvs[0], nil
}

func checkCRUD(c *clientv3.Client) error {
	const k = "/registry/configmaps/default/crud"
	r, err := create(c, k, "v1")
	if err != nil {
		return err
	}
	note("create: succeeded=%v rev=%d responses=%d put=%v", r.Succeeded, r.Header.Revision, len(r.Responses),
		r.Responses[0].GetResponsePut() != nil)
	if !r.Succeeded {
		return fmt.Errorf("create of a new key did not succeed")
	}
	created := r.Header.Revision
	r, err = create(c, k, "v1-again")
	if err != nil {
		return err
	}
	note("create again: succeeded=%v rev=%d responses=%d", r.Succeeded, r.Header.Revision, len(r.Responses))
	if r.Succeeded || len(r.Responses) != 0 {
		return fmt.Errorf("second create: succeeded=%v responses=%d, want false and none", r.Succeeded, len(r.Responses))
	}
	r, err = update(c, k, "v2", created)
	if err != nil {
		return err
	}
	note("update at its rev: succeeded=%v rev=%d", r.Succeeded, r.Header.Revision)
	if !r.Succeeded || r.Header.Revision != created+1 {
		return fmt.Errorf("update at the current rev: succeeded=%v rev=%d", r.Succeeded, r.Header.Revision)
	}
	updated := r.Header.Revision
	// a stale update: the Else branch carries the current object, which the store retries from
	r, err = update(c, k, "v3", created)
	if err != nil {
		return err
	}
	kv, err := elseGet(r)
	if err != nil {
		return err
	}
	if kv == nil {
		return fmt.Errorf("stale update: Else(Get) returned no object")
	}
	note("stale update: succeeded=%v rev=%d else=%s@%d create=%d version=%d", r.Succeeded, r.Header.Revision,
		kv.Value, kv.ModRevision, kv.CreateRevision, kv.Version)
	if r.Succeeded || string(kv.Value) != "v2" || kv.ModRevision != updated || kv.CreateRevision != created || kv.Version != 2 {
		return fmt.Errorf("stale update: succeeded=%v else %s@%d (create %d, version %d), want v2@%d",
			r.Succeeded, kv.Value, kv.ModRevision, kv.CreateRevision, kv.Version, updated)
	}
	r, err = update(c, k, "v3", kv.ModRevision)
	if err != nil {
		return err
	}
	if !r.Succeeded {
		return fmt.Errorf("retry from the Else object failed")
	}
	cur := r.Header.Revision
	// a stale delete, then the delete at the current rev
	r, err = del(c, k, updated)
	if err != nil {
		return err
	}
	kv, err = elseGet(r)
	if err != nil {
		return err
	}
	if r.Succeeded || kv == nil || kv.ModRevision != cur {
		return fmt.Errorf("stale delete: succeeded=%v else=%v", r.Succeeded, kv)
	}
	r, err = del(c, k, cur)
	if err != nil {
		return err
	}
	dr := r.Responses[0].GetResponseDeleteRange()
	note("delete: succeeded=%v rev=%d deleted=%d", r.Succeeded, r.Header.Revision, dr.GetDeleted())
	if !r.Succeeded || dr == nil || dr.Deleted != 1 {
		return fmt.Errorf("delete at the current rev: succeeded=%v response=%v", r.Succeeded, dr)
	}
	// updating a deleted object: the Else Get finds nothing (the store answers NotFound)
	r, err = update(c, k, "v4", cur)
	if err != nil {
		return err
	}
	kv, err = elseGet(r)
	if err != nil {
		return err
	}
	note("update after delete: succeeded=%v found=%v", r.Succeeded, kv != nil)
	if r.Succeeded || kv != nil {
		return fmt.Errorf("update of a deleted key: succeeded=%v kv=%v", r.Succeeded, kv)
	}
	return nil
}

// --- paged lists

func prefixEnd(p string) string { return clientv3.GetPrefixRangeEnd(p) }

type page struct {
	keys  []string
	more  bool
	count int64
	rev   int64
}

func getPage(c *clientv3.Client, from, end string, limit, rev int64) (page, error) {
	opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(limit)}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	r, err := c.Get(ctxT(opT), from, opts...)
	if err != nil {
		return page{}, err
	}
	p := page{more: r.More, count: r.Count, rev: r.Header.Revision}
	for _, kv := range r.Kvs {
		p.keys = append(p.keys, string(kv.Key))
	}
	return p, nil
}

func checkPagedList(c *clientv3.Client) error {
	const pfx = "/registry/configmaps/paged/"
	n := *listKeys
	val := strings.Repeat("x", 1024)
	// many clients write the objects in parallel (the revision order is not the key order)
	var wg sync.WaitGroup
	var werr atomic.Value
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := create(c, fmt.Sprintf("%scm-%05d", pfx, i), val); err != nil {
					werr.Store(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if e := werr.Load(); e != nil {
		return e.(error)
	}
	end := prefixEnd(pfx)
	first, err := getPage(c, pfx, end, *listLimit, 0)
	if err != nil {
		return err
	}
	pinned := first.rev
	// writes after the first page must not show in later pages: one new object, one deleted
	if _, err := create(c, pfx+"cm-00000a", val); err != nil {
		return err
	}
	if _, err := c.Delete(ctxT(opT), fmt.Sprintf("%scm-%05d", pfx, n-1)); err != nil {
		return err
	}
	var keys []string
	p := first
	pages := 0
	for {
		pages++
		keys = append(keys, p.keys...)
		byCount := p.count > int64(len(p.keys))
		if byCount != p.more {
			return fmt.Errorf("page %d: more=%v but count=%d with %d keys", pages, p.more, p.count, len(p.keys))
		}
		if !p.more {
			break
		}
		if pages > n {
			return fmt.Errorf("no end after %d pages", pages)
		}
		next := p.keys[len(p.keys)-1] + "\x00"
		p, err = getPage(c, next, end, *listLimit, pinned)
		if err != nil {
			return err
		}
	}
	note("paged list: %d keys in %d pages of %d at rev %d, first page count=%d", len(keys), pages, *listLimit,
		pinned, first.count)
	if len(keys) != n {
		return fmt.Errorf("%d keys listed, want %d (writes after the first page leaked in?)", len(keys), n)
	}
	if !sort.StringsAreSorted(keys) {
		return fmt.Errorf("keys not in order")
	}
	for i, k := range keys {
		if k != fmt.Sprintf("%scm-%05d", pfx, i) {
			return fmt.Errorf("key %d is %q", i, k)
		}
	}
	if first.count != int64(n) {
		return fmt.Errorf("first page count=%d, want %d", first.count, n)
	}
	return nil
}

func checkCountKeysOnly(c *clientv3.Client) error {
	const pfx = "/registry/configmaps/paged/"
	r, err := c.Get(ctxT(opT), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	note("count-only: count=%d kvs=%d more=%v", r.Count, len(r.Kvs), r.More)
	if int(r.Count) != *listKeys || len(r.Kvs) != 0 {
		return fmt.Errorf("count-only: count=%d kvs=%d, want %d and none", r.Count, len(r.Kvs), *listKeys)
	}
	// newer apiservers' object-count estimate: count-only with a range end over the whole resource
	r, err = c.Get(ctxT(opT), "/registry/configmaps/", clientv3.WithRange(prefixEnd("/registry/configmaps/")),
		clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	note("count-only range: count=%d", r.Count)
	r, err = c.Get(ctxT(opT), pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	if int(r.Count) != *listKeys || len(r.Kvs) != *listKeys {
		return fmt.Errorf("keys-only: count=%d kvs=%d, want %d", r.Count, len(r.Kvs), *listKeys)
	}
	for _, kv := range r.Kvs {
		if len(kv.Value) != 0 || kv.ModRevision == 0 {
			return fmt.Errorf("keys-only: %s has a %d-byte value, mod %d", kv.Key, len(kv.Value), kv.ModRevision)
		}
	}
	note("keys-only: count=%d kvs=%d first=%s last=%s", r.Count, len(r.Kvs), r.Kvs[0].Key, r.Kvs[len(r.Kvs)-1].Key)
	// keys-only with a limit, as the size estimator pages it
	r, err = c.Get(ctxT(opT), pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(10))
	if err != nil {
		return err
	}
	if len(r.Kvs) != 10 || !r.More || int(r.Count) != *listKeys {
		return fmt.Errorf("keys-only limit 10: kvs=%d more=%v count=%d", len(r.Kvs), r.More, r.Count)
	}
	return nil
}

// --- the compactor (k8s.io/apiserver/pkg/storage/etcd3/compact.go)

const compactRevKey = "compact_rev_key"

func compact(c *clientv3.Client, t, rev int64) (int64, int64, error) {
	resp, err := c.Txn(ctxT(opT)).If(clientv3.Compare(clientv3.Version(compactRevKey), "=", t)).
		Then(clientv3.OpPut(compactRevKey, strconv.FormatInt(rev, 10))).
		Else(clientv3.OpGet(compactRevKey)).Commit()
	if err != nil {
		return t, rev, err
	}
	curRev := resp.Header.Revision
	if !resp.Succeeded {
		kv, err := elseGet(resp)
		if err != nil || kv == nil {
			return t, rev, fmt.Errorf("lost compactor txn without the key (%v)", err)
		}
		return kv.Version, curRev, nil
	}
	curTime := t + 1
	if rev == 0 {
		return curTime, curRev, nil
	}
	if _, err = c.Compact(ctxT(opT), rev); err != nil {
		return curTime, curRev, err
	}
	return curTime, curRev, nil
}

func checkCompactor(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := c.Watch(ctx, compactRevKey, clientv3.WithCreatedNotify(), clientv3.WithPrevKV())
	if r := <-wch; !r.Created {
		return fmt.Errorf("no created notification on %s", compactRevKey)
	}
	// first round (bootstrap): version 0 -> 1, nothing compacted
	t, rev, err := compact(c, 0, 0)
	if err != nil {
		return err
	}
	note("compactor bootstrap: time=%d rev=%d", t, rev)
	if t != 1 {
		return fmt.Errorf("bootstrap: time %d, want 1", t)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Put(ctxT(opT), "/registry/events/default/e", fmt.Sprint(i)); err != nil {
			return err
		}
	}
	// second round compacts at the revision the first saw
	t2, rev2, err := compact(c, t, rev)
	if err != nil {
		return fmt.Errorf("compact at %d: %v", rev, err)
	}
	note("compactor round 2: time=%d rev=%d", t2, rev2)
	if t2 != 2 {
		return fmt.Errorf("round 2: time %d, want 2", t2)
	}
	// another apiserver compacted meanwhile: a stale time loses and reads the version back
	t3, _, err := compact(c, 1, rev2)
	if err != nil {
		return err
	}
	note("compactor stale round: time=%d", t3)
	if t3 != 2 {
		return fmt.Errorf("stale round: time %d, want the key's version 2", t3)
	}
	// a read below the compacted revision fails as compacted
	_, err = c.Get(ctxT(opT), "/registry/events/default/e", clientv3.WithRev(rev-1))
	note("read below compaction: %v", status.Code(err))
	if err == nil || !strings.Contains(err.Error(), "compacted") {
		return fmt.Errorf("read at %d after compacting %d: err=%v", rev-1, rev, err)
	}
	// the watch saw both puts of compact_rev_key, the second with the first as prev_kv
	var evs []*clientv3.Event
	deadline := time.After(5 * time.Second)
	for len(evs) < 2 {
		select {
		case r := <-wch:
			evs = append(evs, r.Events...)
		case <-deadline:
			return fmt.Errorf("watch on %s: %d events in 5s, want 2", compactRevKey, len(evs))
		}
	}
	if evs[1].Kv.Version != 2 || string(evs[1].Kv.Value) != strconv.FormatInt(rev, 10) || evs[1].PrevKv == nil {
		return fmt.Errorf("second event: %v (prev %v)", evs[1].Kv, evs[1].PrevKv)
	}
	note("compact_rev_key events: %s=%s v%d, %s=%s v%d prev=%s", evs[0].Type, evs[0].Kv.Value, evs[0].Kv.Version,
		evs[1].Type, evs[1].Kv.Value, evs[1].Kv.Version, evs[1].PrevKv.Value)
	return nil
}

// --- one lease for many keys (the apiserver's leaseManager reuses a lease for events)

func checkLease(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const pfx = "/registry/events/lease/"
	wch := c.Watch(ctx, pfx, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if r := <-wch; !r.Created {
		return fmt.Errorf("no created notification")
	}
	t0 := time.Now() // before the request: the server cannot start the TTL earlier
	l, err := c.Grant(ctxT(opT), 2)
	if err != nil {
		return err
	}
	n := *leaseKeys
	for i := 0; i < n; i++ {
		if _, err := create(c, fmt.Sprintf("%sev-%04d", pfx, i), fmt.Sprint("event ", i), clientv3.WithLease(l.ID)); err != nil {
			return err
		}
	}
	ttl, err := c.TimeToLive(ctxT(opT), l.ID, clientv3.WithAttachedKeys())
	if err != nil {
		return err
	}
	if len(ttl.Keys) != n {
		return fmt.Errorf("TimeToLive lists %d keys, want %d", len(ttl.Keys), n)
	}
	var puts, dels []*clientv3.Event
	deadline := time.After(15 * time.Second)
	for len(dels) < n {
		select {
		case r, ok := <-wch:
			if !ok {
				return fmt.Errorf("watch closed")
			}
			for _, ev := range r.Events {
				if ev.Type == clientv3.EventTypePut {
					puts = append(puts, ev)
				} else {
					dels = append(dels, ev)
				}
			}
		case <-deadline:
			return fmt.Errorf("%d of %d expiry deletes within 15s of the grant", len(dels), n)
		}
	}
	took := time.Since(t0)
	if len(puts) != n {
		return fmt.Errorf("%d puts seen, want %d", len(puts), n)
	}
	delRev := dels[0].Kv.ModRevision
	for i, ev := range dels {
		want := fmt.Sprintf("%sev-%04d", pfx, i)
		if string(ev.Kv.Key) != want || ev.Kv.ModRevision != delRev {
			return fmt.Errorf("delete %d: %s at %d, want %s at %d (one revision, key order)", i, ev.Kv.Key,
				ev.Kv.ModRevision, want, delRev)
		}
		if ev.PrevKv == nil || string(ev.PrevKv.Value) != fmt.Sprint("event ", i) || ev.PrevKv.Lease != int64(l.ID) {
			return fmt.Errorf("delete of %s: prev_kv %v", ev.Kv.Key, ev.PrevKv)
		}
	}
	note("lease expiry: %d deletes at rev %d (puts ended at %d), prev_kv with the lease", len(dels), delRev,
		puts[len(puts)-1].Kv.ModRevision)
	if took < 2*time.Second {
		return fmt.Errorf("expired after %v, before its 2 s TTL", took)
	}
	r, err := c.Get(ctxT(opT), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count != 0 {
		return fmt.Errorf("after expiry: count %d err %v", r.Count, err)
	}
	fmt.Printf("       (lease of 2 s with %d keys: all deleted %.1f s after the grant)\n", n, took.Seconds())
	return nil
}

// --- RequestProgress and the version behind ConsistentListFromCache

func checkProgress(c *clientv3.Client) error {
	// the watch cache's watch: the prefix from a revision, with prev_kv and progress notify
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	defer cancel()
	r0, err := c.Get(ctxT(opT), "/registry/pods/", clientv3.WithPrefix(), clientv3.WithLimit(1))
	if err != nil {
		return err
	}
	wch := c.Watch(ctx, "/registry/pods/", clientv3.WithPrefix(), clientv3.WithRev(r0.Header.Revision+1),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	var last int64
	for i := 0; i < 20; i++ {
		p, err := c.Put(ctxT(opT), fmt.Sprintf("/registry/pods/ns/p%d", i%5), fmt.Sprint(i))
		if err != nil {
			return err
		}
		last = p.Header.Revision
	}
	// a consistent list: the current revision from a quorum read, then wait for the watch to reach it
	cur, err := c.Get(ctxT(opT), "/registry/pods/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if cur.Header.Revision < last {
		return fmt.Errorf("quorum read at %d before the last put %d", cur.Header.Revision, last)
	}
	got := 0
	seen := int64(0)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	if err := c.RequestProgress(ctx); err != nil {
		return err
	}
	for {
		select {
		case r, ok := <-wch:
			if !ok {
				return fmt.Errorf("watch closed: %v", r.Err())
			}
			if r.Err() != nil {
				return r.Err()
			}
			got += len(r.Events)
			if len(r.Events) > 0 {
				seen = r.Events[len(r.Events)-1].Kv.ModRevision
			}
			if r.IsProgressNotify() && r.Header.Revision >= cur.Header.Revision {
				if got != 20 || seen != last {
					return fmt.Errorf("progress at %d after %d of 20 events (last %d)", r.Header.Revision, got, seen)
				}
				return nil
			}
		case <-tick.C:
			c.RequestProgress(ctx)
		case <-deadline:
			return fmt.Errorf("no progress notification at >= %d in 10s (%d events)", cur.Header.Revision, got)
		}
	}
}

func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := 0; i < 3; i++ {
		var x, y int
		if i < len(a) {
			x, _ = strconv.Atoi(strings.TrimLeft(a[i], "v"))
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x > y
		}
	}
	return true
}

func checkStatus(c *clientv3.Client) error {
	ep := c.Endpoints()[0]
	s, err := c.Status(ctxT(opT), ep)
	if err != nil {
		return err
	}
	fmt.Printf("       (Status: version %s, db size %d, revision %d)\n", s.Version, s.DbSize, s.Header.Revision)
	if s.Version == "" {
		return fmt.Errorf("no version")
	}
	if *minVersion != "" && !versionAtLeast(s.Version, *minVersion) {
		return fmt.Errorf("version %s < %s", s.Version, *minVersion)
	}
	return nil
}

// --- unknown methods: UNIMPLEMENTED, so the caller falls back

func checkUnimplemented(c *clientv3.Client) error {
	conn := c.ActiveConnection()
	for _, m := range []string{"/etcdserverpb.KV/RangeStream", "/etcdserverpb.NoSuchService/Range"} {
		err := conn.Invoke(ctxT(opT), m, &pb.RangeRequest{Key: []byte("/registry/")}, &pb.RangeResponse{})
		if status.Code(err) != codes.Unimplemented {
			return fmt.Errorf("unary %s: %v (code %v), want Unimplemented", m, err, status.Code(err))
		}
		ctx, cancel := context.WithTimeout(context.Background(), opT)
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, m)
		if err == nil {
			err = s.SendMsg(&pb.RangeRequest{Key: []byte("/registry/"), RangeEnd: []byte("/registry0")})
			if err == nil {
				s.CloseSend()
				err = s.RecvMsg(&pb.RangeResponse{})
			}
		}
		cancel()
		if status.Code(err) != codes.Unimplemented {
			return fmt.Errorf("stream %s: %v (code %v), want Unimplemented", m, err, status.Code(err))
		}
	}
	// and the connection still serves
	_, err := c.Get(ctxT(opT), "/registry/health")
	return err
}

// --- the health check under write load

func checkHealthUnderLoad() error {
	hc, err := newClient()
	if err != nil {
		return err
	}
	defer hc.Close()
	clients := make([]*clientv3.Client, *writers)
	for i := range clients {
		if clients[i], err = newClient(); err != nil {
			return err
		}
		defer clients[i].Close()
	}
	val := strings.Repeat("v", 1024)
	var stop int32
	var puts, errs int64
	var wg sync.WaitGroup
	for i, wc := range clients {
		wg.Add(1)
		go func(i int, wc *clientv3.Client) {
			defer wg.Done()
			for j := 0; atomic.LoadInt32(&stop) == 0; j++ {
				_, err := wc.Put(ctxT(10*time.Second), fmt.Sprintf("/registry/leases/w%02d/%d", i, j%50), val)
				if err != nil {
					atomic.AddInt64(&errs, 1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				atomic.AddInt64(&puts, 1)
			}
		}(i, wc)
	}
	time.Sleep(200 * time.Millisecond)
	var lat []time.Duration
	var herr error
	end := time.Now().Add(*healthDur)
	for time.Now().Before(end) {
		t := time.Now()
		_, err := hc.Get(ctxT(*healthMax), "/registry/health")
		d := time.Since(t)
		if err != nil && herr == nil {
			herr = fmt.Errorf("health Get after %v: %v", d, err)
		}
		lat = append(lat, d)
		time.Sleep(100 * time.Millisecond)
	}
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, max := lat[len(lat)/2], lat[len(lat)-1]
	fmt.Printf("       (%d writers: %d puts in %v (%.0f/s), %d errors; %d health checks p50 %v max %v)\n", *writers,
		puts, *healthDur, float64(puts)/healthDur.Seconds(), errs, len(lat), p50.Round(time.Microsecond),
		max.Round(time.Microsecond))
	if herr != nil {
		return herr
	}
	if max > *healthMax {
		return fmt.Errorf("slowest health check %v > %v", max, *healthMax)
	}
	if errs > 0 {
		return fmt.Errorf("%d writes failed", errs)
	}
	return nil
}

func main() {
	flag.Parse()
	c, err := newClient()
	if err != nil {
		fmt.Printf("FAIL - connect: %v\n0 passed, 1 failed\n", err)
		os.Exit(1)
	}
	defer c.Close()
	// the deterministic part first, in a fixed order on a fresh server, so revisions compare
	report("create/update/delete as Txn on ModRevision, conflicts read from Else(Get)", checkCRUD(c))
	report(fmt.Sprintf("paged list of %d pinned to the first page's revision; more agrees with count", *listKeys),
		checkPagedList(c))
	report("count-only and keys-only ranges", checkCountKeysOnly(c))
	report("compactor: Txn on Version(compact_rev_key), Compact, watch on compact_rev_key", checkCompactor(c))
	report(fmt.Sprintf("one lease for %d keys, never kept alive: expiry deletes all with prev_kv", *leaseKeys),
		checkLease(c))
	report("RequestProgress after writes: progress at the quorum revision after all events", checkProgress(c))
	report("unknown methods (KV/RangeStream) answered UNIMPLEMENTED", checkUnimplemented(c))
	report(fmt.Sprintf("Status reports a version (>= %q for ConsistentListFromCache)", *minVersion), checkStatus(c))
	report(fmt.Sprintf("health Get(/registry/health) within %v while %d clients write", *healthMax, *writers),
		checkHealthUnderLoad())
	if *transcript != "" {
		os.WriteFile(*transcript, []byte(strings.Join(tr, "\n")+"\n"), 0o644)
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
