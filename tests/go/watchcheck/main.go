// watchcheck: checks an etcd v3 server's Watch service with the real Go clientv3 (Debian's
// golang-etcd-server-dev, built offline with GOPATH): ordering, no gap or repeat across the switch from
// history to live events under concurrent writers, prev_kv, filters, watch ids, cancel, fragments,
// progress, 10,000 watchers and compaction. Prints ok/FAIL lines and "N passed, N failed".
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"google.golang.org/grpc"
)

var (
	endpoints = flag.String("endpoints", "127.0.0.1:2379", "server endpoint")
	strict    = flag.Bool("strict-progress", true,
		"check that a progress request made while watchers catch up is answered only after them "+
			"(etcd 3.4 answers at once: its bug 15220)")
	nWatchers = flag.Int("watchers", 10000, "watchers for the many-watchers check")
	notifyOn  = flag.Bool("progress-notify", true, "the server runs with a short progress notify interval")
)

var passed, failed int

func report(name string, err error) {
	if err == nil {
		passed++
		fmt.Printf("ok   - %s\n", name)
	} else {
		failed++
		fmt.Printf("FAIL - %s: %v\n", name, err)
	}
}

func newClient() *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Printf("FAIL - connect: %v\n0 passed, 1 failed\n", err)
		os.Exit(1)
	}
	return c
}

func ctxT(d time.Duration) context.Context {
	ctx, _ := context.WithTimeout(context.Background(), d) //nolint:govet // ends with the program
	return ctx
}

func rev(c *clientv3.Client) int64 {
	r, err := c.Get(ctxT(5*time.Second), "any-key-for-revision")
	if err != nil {
		return -1
	}
	return r.Header.Revision
}

// created waits for the created notification of a watch made WithCreatedNotify.
func created(ch clientv3.WatchChan) error {
	select {
	case r, ok := <-ch:
		if !ok || !r.Created {
			return fmt.Errorf("no created notification (%v)", r.Err())
		}
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("timeout waiting for created")
	}
}

// collect reads events until want events arrived or the timeout passed.
func collect(ch clientv3.WatchChan, want int, d time.Duration) ([]clientv3.WatchResponse, []*clientv3.Event) {
	var resps []clientv3.WatchResponse
	var evs []*clientv3.Event
	deadline := time.After(d)
	for len(evs) < want {
		select {
		case r, ok := <-ch:
			if !ok {
				return resps, evs
			}
			resps = append(resps, r)
			evs = append(evs, r.Events...)
		case <-deadline:
			return resps, evs
		}
	}
	return resps, evs
}

func checkOrdering(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.Watch(ctx, "ord/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if err := created(ch); err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		if _, err := c.Put(ctxT(5*time.Second), fmt.Sprintf("ord/%02d", i), "v"); err != nil {
			return err
		}
	}
	_, err := c.Txn(ctxT(5*time.Second)).Then(clientv3.OpPut("ord/t1", "a"), clientv3.OpPut("ord/t2", "b"),
		clientv3.OpPut("other", "x"), clientv3.OpPut("ord/t3", "c")).Commit()
	if err != nil {
		return err
	}
	resps, evs := collect(ch, 53, 10*time.Second)
	if len(evs) != 53 {
		return fmt.Errorf("got %d events, want 53", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Kv.ModRevision < evs[i-1].Kv.ModRevision {
			return fmt.Errorf("event %d revision %d after %d", i, evs[i].Kv.ModRevision, evs[i-1].Kv.ModRevision)
		}
	}
	last := resps[len(resps)-1]
	if len(last.Events) != 3 || string(last.Events[2].Kv.Key) != "ord/t3" {
		return fmt.Errorf("the txn's 3 events did not come in one response: %d", len(last.Events))
	}
	for _, r := range resps {
		if r.Header.Revision != r.Events[len(r.Events)-1].Kv.ModRevision {
			return fmt.Errorf("live response header revision %d, event revision %d", r.Header.Revision,
				r.Events[len(r.Events)-1].Kv.ModRevision)
		}
	}
	return nil
}

// checkSwitch: 8 writers put while a watcher starts from an older revision: every revision exactly
// once, in order, across the switch from history to live events.
func checkSwitch(c *clientv3.Client) error {
	const writers, each = 8, 500
	rev0 := rev(c)
	var done int64
	var maxRev int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := c.Put(ctxT(10*time.Second), fmt.Sprintf("sw/%d/%d", w, i), fmt.Sprint(i))
				if err != nil {
					errc <- err
					return
				}
				atomic.AddInt64(&done, 1)
				for {
					m := atomic.LoadInt64(&maxRev)
					if r.Header.Revision <= m || atomic.CompareAndSwapInt64(&maxRev, m, r.Header.Revision) {
						break
					}
				}
			}
		}(w)
	}
	for atomic.LoadInt64(&done) < writers*each*3/5 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.Watch(ctx, "sw/", clientv3.WithPrefix(), clientv3.WithRev(rev0+1))
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	final := atomic.LoadInt64(&maxRev)
	if final-rev0 != writers*each {
		return fmt.Errorf("unexpected revisions: %d..%d for %d puts", rev0, final, writers*each)
	}
	_, evs := collect(ch, writers*each, 20*time.Second)
	if len(evs) != writers*each {
		return fmt.Errorf("got %d events, want %d", len(evs), writers*each)
	}
	for i, ev := range evs {
		if ev.Kv.ModRevision != rev0+1+int64(i) {
			return fmt.Errorf("event %d has revision %d, want %d (gap or repeat)", i, ev.Kv.ModRevision, rev0+1+int64(i))
		}
	}
	return nil
}

func checkPrevKVEvents(evs []*clientv3.Event) error {
	if len(evs) != 60 {
		return fmt.Errorf("got %d events, want 60", len(evs))
	}
	for _, ev := range evs {
		i := strings.TrimPrefix(string(ev.Kv.Key), "pk/")
		switch {
		case ev.Type == mvccpb.DELETE:
			if ev.PrevKv == nil || string(ev.PrevKv.Value) != "v2-"+i {
				return fmt.Errorf("delete of %s without the right prev_kv: %v", ev.Kv.Key, ev.PrevKv)
			}
		case ev.IsCreate():
			if ev.PrevKv != nil {
				return fmt.Errorf("create of %s with a prev_kv", ev.Kv.Key)
			}
		default:
			if ev.PrevKv == nil || string(ev.PrevKv.Value) != "v1-"+i {
				return fmt.Errorf("update of %s without the right prev_kv: %v", ev.Kv.Key, ev.PrevKv)
			}
		}
	}
	return nil
}

// checkPrevKV: live and from history, every delete and update carries the previous value.
func checkPrevKV(c *clientv3.Client) (error, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rev0 := rev(c)
	ch := c.Watch(ctx, "pk/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if err := created(ch); err != nil {
		return err, err
	}
	for v := 1; v <= 2; v++ {
		for i := 0; i < 20; i++ {
			if _, err := c.Put(ctxT(5*time.Second), fmt.Sprintf("pk/%02d", i), fmt.Sprintf("v%d-%02d", v, i)); err != nil {
				return err, err
			}
		}
	}
	for i := 0; i < 10; i++ {
		if _, err := c.Delete(ctxT(5*time.Second), fmt.Sprintf("pk/%02d", i)); err != nil {
			return err, err
		}
	}
	if _, err := c.Delete(ctxT(5*time.Second), "pk/1", clientv3.WithPrefix()); err != nil {
		return err, err
	}
	_, evs := collect(ch, 60, 10*time.Second)
	live := checkPrevKVEvents(evs)
	ch2 := c.Watch(ctx, "pk/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(rev0+1))
	_, evs2 := collect(ch2, 60, 10*time.Second)
	return live, checkPrevKVEvents(evs2)
}

func checkFilters(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	noPut := c.Watch(ctx, "flt", clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	noDel := c.Watch(ctx, "flt", clientv3.WithFilterDelete(), clientv3.WithCreatedNotify())
	if err := created(noPut); err != nil {
		return err
	}
	if err := created(noDel); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		c.Put(ctxT(5*time.Second), "flt", "x")
		c.Delete(ctxT(5*time.Second), "flt")
	}
	_, a := collect(noPut, 3, 5*time.Second)
	_, b := collect(noDel, 3, 5*time.Second)
	if len(a) != 3 || len(b) != 3 {
		return fmt.Errorf("got %d deletes and %d puts, want 3 and 3", len(a), len(b))
	}
	for i := range a {
		if a[i].Type != mvccpb.DELETE || b[i].Type != mvccpb.PUT {
			return fmt.Errorf("filter let through the wrong type")
		}
	}
	return nil
}

func checkCancel(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.Watch(ctx, "cxl", clientv3.WithCreatedNotify())
	if err := created(ch); err != nil {
		cancel()
		return err
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("channel not closed after cancel")
		}
	}
}

// raw: a bare gRPC watch stream, to see watch ids, cancel answers and fragments.
type raw struct {
	s    pb.Watch_WatchClient
	resp chan *pb.WatchResponse
}

func newRaw(c *clientv3.Client, ctx context.Context) (*raw, error) {
	s, err := pb.NewWatchClient(c.ActiveConnection()).Watch(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		return nil, err
	}
	r := &raw{s: s, resp: make(chan *pb.WatchResponse, 1000)}
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				close(r.resp)
				return
			}
			r.resp <- m
		}
	}()
	return r, nil
}

func (r *raw) create(cr *pb.WatchCreateRequest) error {
	return r.s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}})
}

func (r *raw) next() (*pb.WatchResponse, error) {
	select {
	case m, ok := <-r.resp:
		if !ok {
			return nil, fmt.Errorf("stream ended")
		}
		return m, nil
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("timeout")
	}
}

func checkIDs(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := newRaw(c, ctx)
	if err != nil {
		return err
	}
	type want struct {
		req      *pb.WatchCreateRequest
		id       int64
		canceled bool
		reason   string
	}
	steps := []want{
		{&pb.WatchCreateRequest{Key: []byte("raw")}, 0, false, ""},
		{&pb.WatchCreateRequest{Key: []byte("raw")}, 1, false, ""},
		{&pb.WatchCreateRequest{Key: []byte("raw"), WatchId: 7}, 7, false, ""},
		{&pb.WatchCreateRequest{Key: []byte("raw"), WatchId: 7}, -1, true, "mvcc: duplicate watch ID provided on the WatchStream"},
		{&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")}, -1, true, "mvcc: watcher range is empty"},
		{&pb.WatchCreateRequest{Key: []byte("raw")}, 2, false, ""},
	}
	for i, st := range steps {
		if err := r.create(st.req); err != nil {
			return err
		}
		m, err := r.next()
		if err != nil {
			return fmt.Errorf("step %d: %v", i, err)
		}
		if !m.Created || m.WatchId != st.id || m.Canceled != st.canceled || m.CancelReason != st.reason {
			return fmt.Errorf("step %d: got id %d created %v canceled %v reason %q", i, m.WatchId, m.Created, m.Canceled, m.CancelReason)
		}
	}
	r.s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	if m, err := r.next(); err != nil || !m.Canceled || m.WatchId != 7 {
		return fmt.Errorf("cancel 7: %v %v", m, err)
	}
	r.s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 42}}})
	p, err := c.Put(ctxT(5*time.Second), "raw", "1")
	if err != nil {
		return err
	}
	seen := map[int64]bool{}
	for len(seen) < 3 {
		m, err := r.next()
		if err != nil {
			return fmt.Errorf("events: %v (got %v)", err, seen)
		}
		if m.Canceled || len(m.Events) != 1 || m.Events[0].Kv.ModRevision != p.Header.Revision {
			return fmt.Errorf("unexpected response %v", m)
		}
		seen[m.WatchId] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return fmt.Errorf("events went to %v, want 0 1 2", seen)
	}
	return nil
}

// checkFragment: history of over --max-request-bytes + 512 KiB (etcd's limit) in one batch arrives in
// fragments when asked.
func checkFragment(c *clientv3.Client) error {
	const fragEvents = 30
	rev0 := rev(c)
	val := strings.Repeat("f", 100*1024)
	for i := 0; i < fragEvents; i++ {
		if _, err := c.Put(ctxT(5*time.Second), fmt.Sprintf("frag/%02d", i), val); err != nil {
			return err
		}
	}
	for _, frag := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		r, err := newRaw(c, ctx)
		if err != nil {
			cancel()
			return err
		}
		r.create(&pb.WatchCreateRequest{Key: []byte("frag/"), RangeEnd: []byte("frag0"), StartRevision: rev0 + 1, Fragment: frag})
		m, err := r.next()
		if err != nil || !m.Created {
			cancel()
			return fmt.Errorf("created: %v %v", m, err)
		}
		n, parts, flagged := 0, 0, 0
		for n < fragEvents && err == nil {
			if m, err = r.next(); err == nil {
				n += len(m.Events)
				parts++
				if m.Fragment {
					flagged++
				}
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("fragment=%v: %v after %d events", frag, err, n)
		}
		if frag && (parts < 2 || flagged != parts-1) {
			return fmt.Errorf("fragment=true: %d responses, %d marked fragment", parts, flagged)
		}
		if !frag && (parts != 1 || flagged != 0) {
			return fmt.Errorf("fragment=false: %d responses, %d marked fragment", parts, flagged)
		}
	}
	return nil
}

// checkProgressLive: a progress request right after writes is answered after their events.
func checkProgressLive(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.Watch(ctx, "prg", clientv3.WithCreatedNotify())
	if err := created(ch); err != nil {
		return err
	}
	var last int64
	for i := 0; i < 50; i++ {
		p, err := c.Put(ctxT(5*time.Second), "prg", fmt.Sprint(i))
		if err != nil {
			return err
		}
		last = p.Header.Revision
	}
	got := 0
	if !*strict {
		_, evs := collect(ch, 50, 10*time.Second)
		got = len(evs)
	}
	if err := c.RequestProgress(ctx); err != nil {
		return err
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return fmt.Errorf("watch closed")
			}
			if r.IsProgressNotify() {
				if got != 50 || r.Header.Revision < last {
					return fmt.Errorf("progress at %d after %d of 50 events (last put %d)", r.Header.Revision, got, last)
				}
				return nil
			}
			got += len(r.Events)
		case <-deadline:
			return fmt.Errorf("no progress notification (got %d events)", got)
		}
	}
}

// checkProgressCatchUp: a watcher still reading history gets a progress notification only after every
// event up to its revision (etcd 3.5's rule; cetcd delays the answer until the watcher caught up).
func checkProgressCatchUp(c *clientv3.Client) error {
	rev0 := rev(c)
	val := strings.Repeat("h", 2048)
	const n = 3000
	var wg sync.WaitGroup
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 10 {
				c.Put(ctxT(10*time.Second), fmt.Sprintf("prh/%04d", i), val)
			}
		}(w)
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.Watch(ctx, "prh/", clientv3.WithPrefix(), clientv3.WithRev(rev0+1))
	got := 0
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	c.RequestProgress(ctx)
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return fmt.Errorf("watch closed")
			}
			if r.IsProgressNotify() {
				if got != n {
					return fmt.Errorf("progress at %d after %d of %d events", r.Header.Revision, got, n)
				}
				return nil
			}
			got += len(r.Events)
		case <-tick.C:
			c.RequestProgress(ctx)
		case <-deadline:
			return fmt.Errorf("no progress notification (got %d of %d events)", got, n)
		}
	}
}

func checkProgressNotify(c *clientv3.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.Watch(ctx, "pn", clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	if err := created(ch); err != nil {
		return err
	}
	p, err := c.Put(ctxT(5*time.Second), "unwatched", "x")
	if err != nil {
		return err
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-ch:
			if r.IsProgressNotify() && r.Header.Revision >= p.Header.Revision {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no progress notification in 10s")
		}
	}
}

// checkMany: *nWatchers watchers of one key over 100 clients all get the event.
func checkMany() error {
	const clients = 100
	per := *nWatchers / clients
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cls []*clientv3.Client
	defer func() {
		for _, cl := range cls {
			cl.Close()
		}
	}()
	var got, ready int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < clients; i++ {
		cl := newClient()
		cls = append(cls, cl)
		for j := 0; j < per; j++ {
			ch := cl.Watch(ctx, "tenk", clientv3.WithCreatedNotify())
			wg.Add(1)
			go func() {
				defer wg.Done()
				if created(ch) != nil {
					return
				}
				atomic.AddInt64(&ready, 1)
				for r := range ch {
					for _, ev := range r.Events {
						if string(ev.Kv.Value) == "go" {
							atomic.AddInt64(&got, 1)
							return
						}
					}
				}
			}()
		}
	}
	total := int64(per * clients)
	for atomic.LoadInt64(&ready) < total && time.Since(start) < 60*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if r := atomic.LoadInt64(&ready); r != total {
		return fmt.Errorf("only %d of %d watchers created", r, total)
	}
	created := time.Since(start)
	if _, err := cls[0].Put(ctxT(5*time.Second), "tenk", "go"); err != nil {
		return err
	}
	t0 := time.Now()
	for atomic.LoadInt64(&got) < total && time.Since(t0) < 30*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if g := atomic.LoadInt64(&got); g != total {
		return fmt.Errorf("%d of %d watchers got the event", g, total)
	}
	fmt.Printf("     %d watchers created in %v, all notified in %v\n", total, created.Round(time.Millisecond),
		time.Since(t0).Round(time.Millisecond))
	cancel()
	wg.Wait()
	return nil
}

// checkSlowReader: a stream whose client stops reading while 30 MB of events are written gets every
// event, in order, once it reads again (the server parks it and catches it up from history).
func checkSlowReader() error {
	sc := newClient()
	defer sc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := pb.NewWatchClient(sc.ActiveConnection()).Watch(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	if err != nil {
		return err
	}
	if err := s.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("slow/"), RangeEnd: []byte("slow0")}}}); err != nil {
		return err
	}
	m, err := s.Recv()
	if err != nil || !m.Created {
		return fmt.Errorf("created: %v %v", m, err)
	}
	c := newClient()
	defer c.Close()
	const n = 300
	val := strings.Repeat("s", 100*1024)
	var first int64
	for i := 0; i < n; i++ {
		p, err := c.Put(ctxT(10*time.Second), fmt.Sprintf("slow/%03d", i), val)
		if err != nil {
			return err
		}
		if i == 0 {
			first = p.Header.Revision
		}
	}
	time.Sleep(500 * time.Millisecond)
	next := first
	for next < first+n {
		m, err := s.Recv()
		if err != nil {
			return fmt.Errorf("after %d events: %v", next-first, err)
		}
		for _, ev := range m.Events {
			if ev.Kv.ModRevision != next || len(ev.Kv.Value) != len(val) {
				return fmt.Errorf("event revision %d, want %d", ev.Kv.ModRevision, next)
			}
			next++
		}
	}
	return nil
}

func checkCompacted(c *clientv3.Client) error {
	for i := 0; i < 5; i++ {
		c.Put(ctxT(5*time.Second), "cmp", fmt.Sprint(i))
	}
	cur := rev(c)
	if _, err := c.Compact(ctxT(5*time.Second), cur); err != nil {
		return err
	}
	ch := c.Watch(context.Background(), "cmp", clientv3.WithRev(cur-3))
	select {
	case r, ok := <-ch:
		if !ok || !r.Canceled || r.CompactRevision != cur {
			return fmt.Errorf("got canceled %v compact_revision %d, want true %d", r.Canceled, r.CompactRevision, cur)
		}
		if r.Err() == nil || !strings.Contains(r.Err().Error(), "required revision has been compacted") {
			return fmt.Errorf("error %v", r.Err())
		}
	case <-time.After(5 * time.Second):
		return fmt.Errorf("timeout")
	}
	return nil
}

func main() {
	flag.Parse()
	c := newClient()
	defer c.Close()
	report("ordering: live events in revision order, one revision per response", checkOrdering(c))
	report("history to live under 8 writers: no gap, no repeat", checkSwitch(c))
	live, hist := checkPrevKV(c)
	report("prev_kv on every delete and update (live)", live)
	report("prev_kv on every delete and update (history)", hist)
	report("filters NOPUT and NODELETE", checkFilters(c))
	report("watch ids: auto from 0, chosen, duplicate, empty range; cancel", checkIDs(c))
	report("cancel closes the watch channel", checkCancel(c))
	report("fragment splits a large response, only when asked", checkFragment(c))
	report("progress request answered after the events before it", checkProgressLive(c))
	if *strict {
		report("progress request waits for a watcher catching up", checkProgressCatchUp(c))
	}
	if *notifyOn {
		report("progress_notify sends periodic progress", checkProgressNotify(c))
	}
	report(fmt.Sprintf("%d watchers of one key over 100 clients all notified", *nWatchers), checkMany())
	report("a stream that stops reading gets every event once it reads again", checkSlowReader())
	report("start below compaction: canceled with compact_revision", checkCompacted(c))
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
