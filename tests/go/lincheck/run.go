// run.go: the workload (16 clients of puts, txns, linearizable gets and deletes over a few keys), the
// server it may own (started, killed with SIGKILL by PID and restarted on the same data dir and port),
// and the recovery of the server's write log with a Watch from the first revision.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"go.etcd.io/etcd/pkg/logutil"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/status"
)

type runConfig struct {
	endpoint   string
	clients    int
	keys       int
	duration   time.Duration
	opTimeout  time.Duration
	restartMin time.Duration // 0: no restarts
	restartMax time.Duration
	srv        *server // nil: the server is not ours
	rollback   bool    // sabotage: the data dir is rolled back to an older copy at the 4th restart
}

type runStats struct {
	restarts    int
	failedReads int // plain gets that failed: dropped, a read changes nothing
	errs        map[string]int
	logRead     time.Duration // reading the server's log back with a Watch
	elapsed     time.Duration
}

// server is a cetcd this program starts, kills and restarts.
type server struct {
	bin, dir, ep string
	extra        []string // more flags (etcd's peer URLs, to run the real etcd the same way)
	log          *os.File
	cmd          *exec.Cmd
	exited       chan struct{}
}

func (s *server) start() error {
	url := "http://" + s.ep
	args := append([]string{"--data-dir", s.dir, "--listen-client-urls", url, "--advertise-client-urls", url}, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives us
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func(ch chan struct{}) { cmd.Wait(); close(ch) }(s.exited)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("server pid %d exited while starting: %v", cmd.Process.Pid, cmd.ProcessState)
		default:
		}
		if c, err := net.DialTimeout("tcp", s.ep, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server pid %d does not listen on %s after 10 s", cmd.Process.Pid, s.ep)
}

// kill9 kills the server by its PID with SIGKILL and waits for it.
func (s *server) kill9() error {
	select {
	case <-s.exited:
		return fmt.Errorf("server pid %d had exited by itself: %v", s.cmd.Process.Pid, s.cmd.ProcessState)
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	return nil
}

func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func newClient(ep string) (*clientv3.Client, error) {
	lcfg := logutil.DefaultZapLoggerConfig
	lcfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel) // not a warning per op failed at a restart
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{ep},
		LogConfig:   &lcfg,
		DialTimeout: 5 * time.Second,
		// reconnect soon after a restart (gRPC's default backoff grows to minutes)
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 300 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
	})
}

// worker is one client: its own connection, its own random ops, its own slice of the history.
type worker struct {
	id      int
	cli     *clientv3.Client
	rng     *rand.Rand
	keys    []string
	t0      time.Time
	ops     []*Op
	lastVal map[string]string // what this client last saw, to make compares that may succeed
	lastMod map[string]int64
	failedR int
	errs    map[string]int // why ops became unknown (or reads were dropped), by gRPC code
}

func (w *worker) now() int64 { return int64(time.Since(w.t0)) } // monotonic

func (w *worker) genOp(seq int) *Op {
	o := &Op{Client: w.id, Seq: seq}
	key := w.keys[w.rng.Intn(len(w.keys))]
	val := fmt.Sprintf("c%d-%d", w.id, seq)
	switch p := w.rng.Intn(100); {
	case p < 25:
		o.Then = Req{Kind: ReqGet, Key: key}
	case p < 50:
		o.Then = Req{Kind: ReqPut, Key: key, Value: val}
	case p < 60:
		o.Then = Req{Kind: ReqDel, Key: key}
	case p < 80: // compare-and-set on the value
		o.Txn = true
		o.Cmp = Cmp{Key: key, Value: w.lastVal[key]}
		if w.rng.Intn(4) == 0 {
			o.Cmp.Value = fmt.Sprintf("c%d-%d", w.rng.Intn(16), w.rng.Intn(seq+1))
		}
		o.Then = Req{Kind: ReqPut, Key: key, Value: val}
		o.Else = Req{Kind: ReqGet, Key: key}
	default: // compare on mod_revision, then put or delete; else read, put another key, or nothing
		o.Txn = true
		o.Cmp = Cmp{Key: key, OnMod: true, ModRev: w.lastMod[key]}
		if w.rng.Intn(5) == 0 {
			o.Cmp.ModRev = 0 // "absent"
		}
		if w.rng.Intn(3) == 0 {
			o.Then = Req{Kind: ReqDel, Key: key}
		} else {
			o.Then = Req{Kind: ReqPut, Key: key, Value: val}
		}
		k2 := w.keys[w.rng.Intn(len(w.keys))]
		switch w.rng.Intn(3) {
		case 0:
			o.Else = Req{Kind: ReqGet, Key: key}
		case 1:
			o.Else = Req{Kind: ReqPut, Key: k2, Value: val}
		default:
			o.Else = Req{Kind: ReqNone}
		}
	}
	return o
}

func toKV(kv *mvccpb.KeyValue) KV {
	return KV{Key: string(kv.Key), Value: string(kv.Value), Create: kv.CreateRevision, Mod: kv.ModRevision, Ver: kv.Version}
}

func clientOp(r Req) clientv3.Op {
	switch r.Kind {
	case ReqGet:
		return clientv3.OpGet(r.Key)
	case ReqPut:
		return clientv3.OpPut(r.Key, r.Value, clientv3.WithPrevKV())
	default:
		return clientv3.OpDelete(r.Key, clientv3.WithPrevKV())
	}
}

func (o *Op) setKV(kvs []*mvccpb.KeyValue) error {
	if len(kvs) > 1 {
		return fmt.Errorf("%d kvs for one key", len(kvs))
	}
	if len(kvs) == 1 {
		o.Found, o.Res = true, toKV(kvs[0])
	}
	return nil
}

var errMalformed = errors.New("malformed response")

// exec runs o; an error means the op is unknown (or, for a plain get, dropped).
func (w *worker) exec(ctx context.Context, o *Op) error {
	kv := w.cli.KV
	if !o.Txn {
		switch o.Then.Kind {
		case ReqGet:
			r, err := kv.Get(ctx, o.Then.Key)
			if err != nil {
				return err
			}
			o.Rev = r.Header.Revision
			return o.setKV(r.Kvs)
		case ReqPut:
			r, err := kv.Put(ctx, o.Then.Key, o.Then.Value, clientv3.WithPrevKV())
			if err != nil {
				return err
			}
			o.Rev = r.Header.Revision
			if r.PrevKv != nil {
				o.Found, o.Res = true, toKV(r.PrevKv)
			}
			return nil
		default:
			r, err := kv.Delete(ctx, o.Then.Key, clientv3.WithPrevKV())
			if err != nil {
				return err
			}
			o.Rev, o.Deleted = r.Header.Revision, r.Deleted
			return o.setKV(r.PrevKvs)
		}
	}
	var cmp clientv3.Cmp
	if o.Cmp.OnMod {
		cmp = clientv3.Compare(clientv3.ModRevision(o.Cmp.Key), "=", o.Cmp.ModRev)
	} else {
		cmp = clientv3.Compare(clientv3.Value(o.Cmp.Key), "=", o.Cmp.Value)
	}
	var thenOps, elseOps []clientv3.Op
	if o.Then.Kind != ReqNone {
		thenOps = append(thenOps, clientOp(o.Then))
	}
	if o.Else.Kind != ReqNone {
		elseOps = append(elseOps, clientOp(o.Else))
	}
	r, err := kv.Txn(ctx).If(cmp).Then(thenOps...).Else(elseOps...).Commit()
	if err != nil {
		return err
	}
	o.Rev, o.Succeeded = r.Header.Revision, r.Succeeded
	br := o.branch()
	if br.Kind == ReqNone {
		if len(r.Responses) != 0 {
			return errMalformed
		}
		return nil
	}
	if len(r.Responses) != 1 {
		return errMalformed
	}
	switch br.Kind {
	case ReqGet:
		rr := r.Responses[0].GetResponseRange()
		if rr == nil {
			return errMalformed
		}
		return o.setKV(rr.Kvs)
	case ReqPut:
		pr := r.Responses[0].GetResponsePut()
		if pr == nil {
			return errMalformed
		}
		if pr.PrevKv != nil {
			o.Found, o.Res = true, toKV(pr.PrevKv)
		}
	case ReqDel:
		dr := r.Responses[0].GetResponseDeleteRange()
		if dr == nil {
			return errMalformed
		}
		o.Deleted = dr.Deleted
		return o.setKV(dr.PrevKvs)
	}
	return nil
}

// learn keeps what o showed of the keys, for later compares.
func (w *worker) learn(o *Op) {
	br := o.branch()
	switch {
	case br.Kind == ReqPut:
		w.lastVal[br.Key], w.lastMod[br.Key] = br.Value, o.Rev
	case br.Kind == ReqDel:
		delete(w.lastVal, br.Key)
		w.lastMod[br.Key] = 0
	case br.Kind == ReqGet && o.Found:
		w.lastVal[br.Key], w.lastMod[br.Key] = o.Res.Value, o.Res.Mod
	case br.Kind == ReqGet:
		delete(w.lastVal, br.Key)
		w.lastMod[br.Key] = 0
	}
}

func (w *worker) loop(stop <-chan struct{}, timeout time.Duration) {
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		o := w.genOp(seq)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		o.Inv = w.now()
		err := w.exec(ctx, o)
		o.Ret = w.now()
		timedOut := ctx.Err() != nil
		cancel()
		if err == errMalformed {
			fmt.Printf("FAIL - malformed response to %s\n", o)
			failedMalformed.Store(true)
		}
		if err != nil {
			code := status.Code(err).String()
			if timedOut {
				code = "timeout"
			}
			w.errs[code]++
			if !o.Txn && o.Then.Kind == ReqGet {
				w.failedR++ // a failed read changes nothing: not part of the history
			} else {
				*o = Op{Client: o.Client, Seq: o.Seq, Txn: o.Txn, Cmp: o.Cmp, Then: o.Then, Else: o.Else,
					Inv: o.Inv, Ret: o.Ret, Unknown: true}
				w.ops = append(w.ops, o)
			}
			time.Sleep(time.Duration(10+w.rng.Intn(40)) * time.Millisecond) // no busy loop while down
			continue
		}
		w.learn(o)
		w.ops = append(w.ops, o)
	}
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) Store(v bool) { b.mu.Lock(); b.v = v; b.mu.Unlock() }
func (b *atomicBool) Load() bool   { b.mu.Lock(); defer b.mu.Unlock(); return b.v }

var failedMalformed atomicBool

// runHistory runs the workload and returns its history, with the server's log.
func runHistory(cfg runConfig) (*History, runStats, error) {
	st := runStats{errs: map[string]int{}}
	keys := make([]string, cfg.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("lin/k%d", i)
	}
	ctl, err := newClient(cfg.endpoint)
	if err != nil {
		return nil, st, err
	}
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	all, err := ctl.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return nil, st, fmt.Errorf("initial read: %v", err)
	}
	if all.Count != 0 {
		return nil, st, fmt.Errorf("the store is not empty (%d keys): the check needs a fresh one", all.Count)
	}
	h := &History{R0: all.Header.Revision}

	t0 := time.Now()
	workers := make([]*worker, cfg.clients)
	for i := range workers {
		cli, err := newClient(cfg.endpoint)
		if err != nil {
			return nil, st, err
		}
		defer cli.Close()
		workers[i] = &worker{id: i, cli: cli, rng: rand.New(rand.NewSource(time.Now().UnixNano() + int64(i))),
			keys: keys, t0: t0, lastVal: map[string]string{}, lastMod: map[string]int64{}, errs: map[string]int{}}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func(w *worker) { defer wg.Done(); w.loop(stop, cfg.opTimeout) }(w)
	}

	// the restarter: kill -9 by PID every restartMin..restartMax, restart on the same dir and port
	var restartErr error
	restarterDone := make(chan struct{})
	go func() {
		defer close(restarterDone)
		if cfg.srv == nil || cfg.restartMin <= 0 {
			return
		}
		rng := rand.New(rand.NewSource(time.Now().UnixNano()))
		end := t0.Add(cfg.duration)
		for {
			d := cfg.restartMin + time.Duration(rng.Int63n(int64(cfg.restartMax-cfg.restartMin)+1))
			if time.Now().Add(d).After(end) {
				return
			}
			time.Sleep(d)
			if err := cfg.srv.kill9(); err != nil {
				restartErr = err
				return
			}
			st.restarts++
			if cfg.rollback {
				if err := sabotage(cfg.srv.dir, st.restarts); err != nil {
					restartErr = err
					return
				}
			}
			time.Sleep(time.Duration(rng.Intn(100)) * time.Millisecond)
			if err := cfg.srv.start(); err != nil {
				restartErr = fmt.Errorf("restart %d: %v", st.restarts, err)
				return
			}
		}
	}()
	<-restarterDone // returns at once without restarts; early on a failed restart
	if restartErr == nil {
		time.Sleep(time.Until(t0.Add(cfg.duration)))
	}
	close(stop)
	wg.Wait()
	st.elapsed = time.Since(t0)
	if restartErr != nil {
		return nil, st, restartErr
	}
	if cfg.srv != nil && !cfg.srv.alive() {
		return nil, st, fmt.Errorf("the server exited by itself: %v", cfg.srv.cmd.ProcessState)
	}
	for _, w := range workers {
		h.Ops = append(h.Ops, w.ops...)
		st.failedReads += w.failedR
		for k, n := range w.errs {
			st.errs[k] += n
		}
	}

	// final reads of every key (part of the history), then the last revision and the log
	fin := &worker{id: cfg.clients, cli: ctl, t0: t0}
	for i, k := range keys {
		o := &Op{Client: fin.id, Seq: i + 1, Then: Req{Kind: ReqGet, Key: k}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		o.Inv = fin.now()
		err := fin.exec(ctx, o)
		o.Ret = fin.now()
		cancel()
		if err != nil {
			return nil, st, fmt.Errorf("final read of %s: %v", k, err)
		}
		h.Ops = append(h.Ops, o)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	last, err := ctl.Get(ctx, "lin/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return nil, st, fmt.Errorf("final revision: %v", err)
	}
	h.R = last.Header.Revision
	t1 := time.Now()
	h.Log, err = readLog(ctl, h.R0, h.R)
	st.logRead = time.Since(t1)
	return h, st, err
}

// sabotage makes a server that loses acknowledged writes, to show that the check sees it: at the 2nd
// restart (the server is dead) the data dir is copied; at the 4th it is replaced by that copy. cetcd
// cannot tell (the copy is the consistent state of an earlier crash), so every write acknowledged
// between the two restarts is lost.
func sabotage(dir string, restart int) error {
	saved := dir + ".rollback"
	switch restart {
	case 2:
		if err := os.MkdirAll(saved, 0o755); err != nil {
			return err
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(saved, e.Name()), b, 0o644); err != nil {
				return err
			}
		}
		fmt.Printf("# sabotage: data dir copied at restart 2\n")
	case 4:
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.Rename(saved, dir); err != nil {
			return err
		}
		fmt.Printf("# sabotage: data dir rolled back to that copy at restart 4\n")
	}
	return nil
}

// readLog returns every change of revisions r0+1..r, from a Watch of all keys from r0+1.
func readLog(cli *clientv3.Client, r0, r int64) ([]Event, error) {
	if r <= r0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var log []Event
	for wr := range cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(r0+1)) {
		if err := wr.Err(); err != nil {
			return nil, fmt.Errorf("watch from revision %d: %v", r0+1, err)
		}
		for _, ev := range wr.Events {
			if ev.Kv.ModRevision > r {
				return log, nil
			}
			e := Event{Delete: ev.Type == mvccpb.DELETE, KV: toKV(ev.Kv)}
			if e.Delete {
				e.KV = KV{Key: string(ev.Kv.Key), Mod: ev.Kv.ModRevision}
			}
			log = append(log, e)
		}
		if len(log) > 0 && log[len(log)-1].KV.Mod == r {
			return log, nil
		}
	}
	return nil, fmt.Errorf("watch from revision %d ended before revision %d (%d events): %v", r0+1, r, len(log), ctx.Err())
}
