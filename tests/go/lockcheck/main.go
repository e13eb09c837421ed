// lockcheck: checks an etcd v3 server's Lock and Election services (v3lockpb, v3electionpb) with
// Debian's Go clientv3, built offline with GOPATH, against the clientv3 concurrency package (which
// locks and campaigns over KV and Watch): both must exclude each other on the same names. With
// -mode suite (the default) it runs every check and prints ok/FAIL lines and "N passed, N failed";
// the other modes are single steps for the shell suite (lock, hold, leader, campaign).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	endpoints = flag.String("endpoints", "127.0.0.1:2379", "server endpoint")
	mode      = flag.String("mode", "suite", "suite | lock | hold | leader | campaign")
	name      = flag.String("name", "lk", "lock or election name (single-step modes)")
	value     = flag.String("value", "v", "campaign value")
	timeout   = flag.Duration("timeout", 5*time.Second, "how long a single step may wait")
	holdFor   = flag.Duration("hold", time.Second, "hold: how long the lock is kept")
	etcd35    = flag.Bool("etcd35", true,
		"the server ends a Lock whose own key went while it waited with \"mutex: session is expired\" "+
			"(etcd 3.5; 3.4 answers as if the lock were taken)")
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

type env struct {
	c  *clientv3.Client
	lk v3lockpb.LockClient
	el v3electionpb.ElectionClient
}

func connect() *env {
	c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Printf("FAIL - connect: %v\n0 passed, 1 failed\n", err)
		os.Exit(1)
	}
	return &env{c, v3lockpb.NewLockClient(c.ActiveConnection()), v3electionpb.NewElectionClient(c.ActiveConnection())}
}

func ctxT(d time.Duration) context.Context {
	ctx, _ := context.WithTimeout(context.Background(), d) //nolint:govet // ends with the program
	return ctx
}

func (e *env) lease(ttl int64) int64 {
	g, err := e.c.Grant(ctxT(5*time.Second), ttl)
	if err != nil {
		panic(err)
	}
	return int64(g.ID)
}

// wantErr checks an error's gRPC code and message.
func wantErr(err error, code codes.Code, msg string) error {
	if err == nil {
		return fmt.Errorf("no error, want %v %q", code, msg)
	}
	s, _ := status.FromError(err)
	if s.Code() != code || s.Message() != msg {
		return fmt.Errorf("got %v %q, want %v %q", s.Code(), s.Message(), code, msg)
	}
	return nil
}

// wantDeadline: a call that outlived its deadline. The client's own timer gives DeadlineExceeded;
// etcd's server often ends the call first, with its context's error, which grpc-go sends as Unknown.
func wantDeadline(err error) error {
	if s, _ := status.FromError(err); s.Code() == codes.Unknown {
		return wantErr(err, codes.Unknown, "context deadline exceeded")
	}
	return wantErr(err, codes.DeadlineExceeded, "context deadline exceeded")
}

func (e *env) keys(prefix string) []string {
	r, err := e.c.Get(ctxT(5*time.Second), prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		panic(err)
	}
	var out []string
	for _, kv := range r.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// lockAsync starts a Lock and returns the channel of its result.
func (e *env) lockAsync(ctx context.Context, name string, lease int64) chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := e.lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: lease})
		ch <- err
	}()
	return ch
}

func pending(ch chan error, d time.Duration) error {
	select {
	case err := <-ch:
		return fmt.Errorf("returned while it should wait: %v", err)
	case <-time.After(d):
		return nil
	}
}

func done(ch chan error, d time.Duration) error {
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		return errors.New("still waiting")
	}
}

// ---------- Lock ----------

func checkLockBasics(e *env) {
	l := e.lease(30)
	r, err := e.lk.Lock(ctxT(5*time.Second), &v3lockpb.LockRequest{Name: []byte("lb"), Lease: l})
	report("lock: uncontended lock answers at once with <name>/<lease hex>", func() error {
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("lb/%x", l); string(r.Key) != want {
			return fmt.Errorf("key %q, want %q", r.Key, want)
		}
		g, _ := e.c.Get(ctxT(5*time.Second), string(r.Key))
		if len(g.Kvs) != 1 || g.Kvs[0].Lease != l || g.Kvs[0].CreateRevision != r.Header.Revision {
			return fmt.Errorf("key not held as expected: %v (header %v)", g.Kvs, r.Header)
		}
		return nil
	}())
	r2, err := e.lk.Lock(ctxT(2*time.Second), &v3lockpb.LockRequest{Name: []byte("lb"), Lease: l})
	report("lock: the same lease again is the same lock", func() error {
		if err != nil {
			return err
		}
		if string(r2.Key) != string(r.Key) {
			return fmt.Errorf("key %q, want %q", r2.Key, r.Key)
		}
		return nil
	}())
	u, err := e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{Key: r.Key})
	report("lock: unlock deletes the key", func() error {
		if err != nil {
			return err
		}
		if k := e.keys("lb/"); len(k) != 0 || u.Header.Revision != r.Header.Revision+1 {
			return fmt.Errorf("keys %v, unlock header %v", k, u.Header)
		}
		return nil
	}())
	r0, err := e.lk.Lock(ctxT(5*time.Second), &v3lockpb.LockRequest{Name: []byte("l0")})
	report("lock: lease 0 gets a new lease of 60 s", func() error {
		if err != nil {
			return err
		}
		g, _ := e.c.Get(ctxT(5*time.Second), string(r0.Key))
		if len(g.Kvs) != 1 {
			return errors.New("no key")
		}
		t, err := e.c.TimeToLive(ctxT(5*time.Second), clientv3.LeaseID(g.Kvs[0].Lease))
		if err != nil || t.GrantedTTL != 60 || string(r0.Key) != fmt.Sprintf("l0/%x", g.Kvs[0].Lease) {
			return fmt.Errorf("lease %v %v, key %q", t, err, r0.Key)
		}
		return nil
	}())
	_, err = e.lk.Lock(ctxT(5*time.Second), &v3lockpb.LockRequest{Name: []byte("lb"), Lease: 424242})
	report("lock: unknown lease", wantErr(err, codes.Unknown, "etcdserver: requested lease not found"))
	_, err = e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{})
	report("lock: unlock of no key", wantErr(err, codes.Unknown, "etcdserver: key is not provided"))
}

func checkLockWaits(e *env) {
	a := e.lease(30)
	ra, err := e.lk.Lock(ctxT(5*time.Second), &v3lockpb.LockRequest{Name: []byte("lw"), Lease: a})
	if err != nil {
		report("lock: holder", err)
		return
	}
	b := e.lease(30)
	ch := e.lockAsync(ctxT(10*time.Second), "lw", b)
	report("lock: a second lease waits", pending(ch, 300*time.Millisecond))
	e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{Key: ra.Key})
	report("lock: the waiter gets the lock once the holder unlocks", done(ch, 3*time.Second))

	c := e.lease(30)
	ch = e.lockAsync(ctxT(10*time.Second), "lw", c)
	report("lock: a third waits for the second", pending(ch, 300*time.Millisecond))
	e.c.Revoke(ctxT(5*time.Second), clientv3.LeaseID(b))
	report("lock: the waiter gets the lock once the holder's lease is revoked", done(ch, 3*time.Second))

	d := e.lease(30)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = e.lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("lw"), Lease: d})
	cancel()
	report("lock: a waiter's deadline ends its call", wantDeadline(err))
	time.Sleep(200 * time.Millisecond)
	report("lock: ...and its key is removed", func() error {
		if k := e.keys("lw/"); len(k) != 1 || k[0] != fmt.Sprintf("lw/%x", c) {
			return fmt.Errorf("keys %v", k)
		}
		return nil
	}())
	if *etcd35 {
		short := e.lease(2)
		ch = e.lockAsync(ctxT(10*time.Second), "lw", short)
		report("lock: a waiter whose lease expires ends with etcd 3.5's error",
			wantErr(done(ch, 6*time.Second), codes.Unknown, "mutex: session is expired"))
	}
	e.c.Revoke(ctxT(5*time.Second), clientv3.LeaseID(c))
}

// Waiters get the lock in the order they queued (create revision), each woken by its predecessor's
// delete only.
func checkLockOrder(e *env) {
	const n = 60
	ra, err := e.lk.Lock(ctxT(5*time.Second), &v3lockpb.LockRequest{Name: []byte("lo"), Lease: e.lease(60)})
	if err != nil {
		report("lock: holder for the queue", err)
		return
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int, lease int64) {
			defer wg.Done()
			r, err := e.lk.Lock(ctxT(30*time.Second), &v3lockpb.LockRequest{Name: []byte("lo"), Lease: lease})
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			if _, err := e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{Key: r.Key}); err != nil {
				errc <- err
			}
		}(i, e.lease(60))
		for deadline := time.Now().Add(5 * time.Second); len(e.keys("lo/")) < i+2 && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
	}
	e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{Key: ra.Key})
	wg.Wait()
	close(errc)
	err = <-errc
	if err == nil {
		for i, got := range order {
			if got != i {
				err = fmt.Errorf("order %v", order)
				break
			}
		}
		if err == nil && len(order) != n {
			err = fmt.Errorf("%d of %d got the lock", len(order), n)
		}
	}
	report(fmt.Sprintf("lock: %d waiters get the lock in the order they queued", n), err)
}

// Lock by the service and by clientv3's Mutex (KV + watch) at once: never two holders.
func checkLockExclusion(e *env) {
	var holders, entries int32
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	critical := func(who string) {
		if n := atomic.AddInt32(&holders, 1); n != 1 {
			errc <- fmt.Errorf("%s: %d holders at once", who, n)
		}
		atomic.AddInt32(&entries, 1)
		time.Sleep(3 * time.Millisecond)
		atomic.AddInt32(&holders, -1)
	}
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func(i int) { // the Lock service
			defer wg.Done()
			l := e.lease(30)
			for j := 0; j < 8; j++ {
				r, err := e.lk.Lock(ctxT(20*time.Second), &v3lockpb.LockRequest{Name: []byte("lx"), Lease: l})
				if err != nil {
					errc <- err
					return
				}
				critical("service")
				if _, err := e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{Key: r.Key}); err != nil {
					errc <- err
					return
				}
			}
		}(i)
		go func(i int) { // clientv3's concurrency.Mutex, as etcdctl lock
			defer wg.Done()
			s, err := concurrency.NewSession(e.c, concurrency.WithTTL(30))
			if err != nil {
				errc <- err
				return
			}
			defer s.Close()
			m := concurrency.NewMutex(s, "lx")
			for j := 0; j < 8; j++ {
				if err := m.Lock(ctxT(20 * time.Second)); err != nil {
					errc <- err
					return
				}
				critical("mutex")
				if err := m.Unlock(ctxT(5 * time.Second)); err != nil {
					errc <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errc)
	var err error
	for e := range errc {
		if err == nil {
			err = e
		}
	}
	if err == nil && entries != 64 {
		err = fmt.Errorf("%d entries, want 64", entries)
	}
	report("lock: the service and clientv3's Mutex exclude each other (8 clients x 8 rounds)", err)
}

// ---------- Election ----------

func checkElectionBasics(e *env) {
	ctx := ctxT(10 * time.Second)
	_, err := e.el.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("eb")})
	report("election: no leader", wantErr(err, codes.Unknown, "election: no leader"))
	_, err = e.el.Proclaim(ctx, &v3electionpb.ProclaimRequest{Value: []byte("x")})
	report("election: proclaim without leader key", wantErr(err, codes.Unknown, `"leader" field must be provided`))
	_, err = e.el.Resign(ctx, &v3electionpb.ResignRequest{})
	report("election: resign without leader key", wantErr(err, codes.Unknown, `"leader" field must be provided`))
	_, err = e.el.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("eb"), Lease: 424242})
	report("election: campaign with an unknown lease", wantErr(err, codes.Unknown, "etcdserver: requested lease not found"))

	l := e.lease(30)
	c, err := e.el.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("eb"), Lease: l, Value: []byte("v1")})
	report("election: campaign wins at once", func() error {
		if err != nil {
			return err
		}
		lk := c.Leader
		if string(lk.Name) != "eb" || string(lk.Key) != fmt.Sprintf("eb/%x", l) || lk.Lease != l || lk.Rev != c.Header.Revision {
			return fmt.Errorf("leader key %v, header %v", lk, c.Header)
		}
		return nil
	}())
	if err != nil {
		return
	}
	r, err := e.el.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("eb")})
	report("election: leader", func() error {
		if err != nil {
			return err
		}
		if string(r.Kv.Value) != "v1" || string(r.Kv.Key) != string(c.Leader.Key) {
			return fmt.Errorf("leader %v", r.Kv)
		}
		return nil
	}())
	_, err = e.el.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c.Leader, Value: []byte("v2")})
	r, _ = e.el.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("eb")})
	report("election: proclaim", func() error {
		if err != nil {
			return err
		}
		if string(r.Kv.Value) != "v2" || r.Kv.Version != 2 {
			return fmt.Errorf("leader %v", r.Kv)
		}
		return nil
	}())
	again, err := e.el.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("eb"), Lease: l, Value: []byte("v3")})
	r, _ = e.el.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("eb")})
	report("election: campaign again with the same lease proclaims the new value", func() error {
		if err != nil {
			return err
		}
		if again.Leader.Rev != c.Leader.Rev || string(r.Kv.Value) != "v3" || again.Header.Revision != r.Kv.ModRevision-1 {
			return fmt.Errorf("campaign %v, leader %v", again, r.Kv)
		}
		return nil
	}())
	bad := *c.Leader
	bad.Rev++
	_, err = e.el.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: &bad, Value: []byte("x")})
	report("election: proclaim with a stale leader key", wantErr(err, codes.Unknown, "election: not leader"))
	rs, err := e.el.Resign(ctx, &v3electionpb.ResignRequest{Leader: &bad})
	report("election: resign with a stale leader key changes nothing", func() error {
		if err != nil {
			return err
		}
		if len(e.keys("eb/")) != 1 {
			return errors.New("the key went")
		}
		return nil
	}())
	rs, err = e.el.Resign(ctx, &v3electionpb.ResignRequest{Leader: c.Leader})
	_, lerr := e.el.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("eb")})
	report("election: resign", func() error {
		if err != nil {
			return err
		}
		if rs.Header.Revision != r.Kv.ModRevision+1 {
			return fmt.Errorf("resign header %v", rs.Header)
		}
		return wantErr(lerr, codes.Unknown, "election: no leader")
	}())
}

// The service's campaigners and clientv3's Election (etcdctl elect) queue on the same name; an
// Observe stream of each kind sees the same leaders in the same order.
func checkElectionMixed(e *env) {
	octx, ocancel := context.WithCancel(context.Background())
	defer ocancel()
	obs, err := e.el.Observe(octx, &v3electionpb.LeaderRequest{Name: []byte("em")})
	if err != nil {
		report("election: observe", err)
		return
	}
	var svcSeen []string
	svcDone := make(chan struct{})
	go func() {
		defer close(svcDone)
		for len(svcSeen) < 5 {
			r, err := obs.Recv()
			if err != nil {
				return
			}
			svcSeen = append(svcSeen, string(r.Kv.Value))
		}
	}()
	s0, _ := concurrency.NewSession(e.c, concurrency.WithTTL(30))
	defer s0.Close()
	var cliSeen []string
	cliDone := make(chan struct{})
	go func() {
		defer close(cliDone)
		for r := range concurrency.NewElection(s0, "em").Observe(octx) {
			cliSeen = append(cliSeen, string(r.Kvs[0].Value))
			if len(cliSeen) == 5 {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)

	la := e.lease(30)
	ca, err := e.el.Campaign(ctxT(5*time.Second), &v3electionpb.CampaignRequest{Name: []byte("em"), Lease: la, Value: []byte("a1")})
	if err != nil {
		report("election: service campaign", err)
		return
	}
	time.Sleep(100 * time.Millisecond)
	e.el.Proclaim(ctxT(5*time.Second), &v3electionpb.ProclaimRequest{Leader: ca.Leader, Value: []byte("a2")})

	sb, _ := concurrency.NewSession(e.c, concurrency.WithTTL(30))
	defer sb.Close()
	eb := concurrency.NewElection(sb, "em")
	bc := make(chan error, 1)
	go func() { bc <- eb.Campaign(ctxT(10*time.Second), "b1") }()
	lc := e.lease(30)
	cc := make(chan error, 1)
	var ccResp *v3electionpb.CampaignResponse
	time.Sleep(100 * time.Millisecond)
	go func() {
		var err error
		ccResp, err = e.el.Campaign(ctxT(10*time.Second), &v3electionpb.CampaignRequest{Name: []byte("em"), Lease: lc, Value: []byte("c1")})
		cc <- err
	}()
	report("election: clientv3 and service campaigners wait behind the leader",
		func() error {
			if err := pending(bc, 300*time.Millisecond); err != nil {
				return err
			}
			return pending(cc, 10*time.Millisecond)
		}())
	e.el.Resign(ctxT(5*time.Second), &v3electionpb.ResignRequest{Leader: ca.Leader})
	report("election: after the service leader resigns, clientv3's campaigner leads", done(bc, 3*time.Second))
	report("election: ...and the service campaigner still waits", pending(cc, 300*time.Millisecond))
	eb.Proclaim(ctxT(5*time.Second), "b2")
	time.Sleep(100 * time.Millisecond)
	eb.Resign(ctxT(5 * time.Second))
	report("election: after clientv3's leader resigns, the service campaigner leads", done(cc, 3*time.Second))
	select {
	case <-svcDone:
	case <-time.After(3 * time.Second):
	}
	select {
	case <-cliDone:
	case <-time.After(3 * time.Second):
	}
	want := "a1 a2 b1 b2 c1"
	report("election: the service's Observe sees every leader value in order", func() error {
		if got := strings.Join(svcSeen, " "); got != want {
			return fmt.Errorf("saw %q, want %q", got, want)
		}
		return nil
	}())
	report("election: clientv3's Observe sees the same", func() error {
		if got := strings.Join(cliSeen, " "); got != want {
			return fmt.Errorf("saw %q, want %q", got, want)
		}
		return nil
	}())
	if ccResp != nil {
		e.el.Resign(ctxT(5*time.Second), &v3electionpb.ResignRequest{Leader: ccResp.Leader})
	}

	// a campaign that times out while it waits resigns
	ld := e.lease(30)
	lead, _ := e.el.Campaign(ctxT(5*time.Second), &v3electionpb.CampaignRequest{Name: []byte("em"), Lease: ld, Value: []byte("d")})
	le := e.lease(30)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = e.el.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("em"), Lease: le, Value: []byte("e")})
	cancel()
	time.Sleep(200 * time.Millisecond)
	report("election: a campaign whose deadline passes removes its key", func() error {
		if err := wantDeadline(err); err != nil {
			return err
		}
		if k := e.keys("em/"); len(k) != 1 || k[0] != string(lead.Leader.Key) {
			return fmt.Errorf("keys %v", k)
		}
		return nil
	}())
}

// ---------- single steps for the shell suite ----------

func step(e *env) int {
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fail := func(err error) int {
		s, _ := status.FromError(err)
		fmt.Printf("error: %v %s\n", s.Code(), s.Message())
		return 1
	}
	switch *mode {
	case "lock", "hold":
		r, err := e.lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(*name), Lease: e.lease(30)})
		if err != nil {
			return fail(err)
		}
		fmt.Println("locked")
		if *mode == "hold" {
			time.Sleep(*holdFor)
		}
		if _, err := e.lk.Unlock(ctxT(5*time.Second), &v3lockpb.UnlockRequest{Key: r.Key}); err != nil {
			return fail(err)
		}
		fmt.Println("unlocked")
	case "leader":
		r, err := e.el.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte(*name)})
		if err != nil {
			return fail(err)
		}
		fmt.Printf("leader %s\n", r.Kv.Value)
	case "campaign":
		r, err := e.el.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte(*name), Lease: e.lease(30), Value: []byte(*value)})
		if err != nil {
			return fail(err)
		}
		fmt.Println("elected")
		e.el.Resign(ctxT(5*time.Second), &v3electionpb.ResignRequest{Leader: r.Leader})
	default:
		fmt.Printf("unknown mode %q\n", *mode)
		return 2
	}
	return 0
}

func main() {
	flag.Parse()
	e := connect()
	if *mode != "suite" {
		os.Exit(step(e))
	}
	checkLockBasics(e)
	checkLockWaits(e)
	checkLockOrder(e)
	checkLockExclusion(e)
	checkElectionBasics(e)
	checkElectionMixed(e)
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
