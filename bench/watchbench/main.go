// watchbench: measures how fast a server delivers events to many prefix watchers, each event matching
// one of them (issue 16: range watchers were a list every event scanned). Opens -prefixes watchers on
// distinct prefixes over -streams gRPC watch streams, writes Txns of -ops puts under random prefixes
// and prints events/s (first write to last event) and the server's CPU per event. Built offline with
// Debian's Go packages in GOPATH mode (bench/watch_prefix_bench.sh does it); run once per server.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
)

var (
	endpoint = flag.String("endpoint", "127.0.0.1:2379", "server endpoint")
	prefixes = flag.Int("prefixes", 10000, "prefix watchers, one per distinct prefix")
	streams  = flag.Int("streams", 100, "watch streams the watchers are spread over")
	conns    = flag.Int("conns", 10, "gRPC connections the streams and writers are spread over")
	txns     = flag.Int("txns", 1000, "Txns written")
	ops      = flag.Int("ops", 50, "puts per Txn (1: plain Put requests)")
	writers  = flag.Int("writers", 8, "concurrent writers")
	pid      = flag.Int("pid", 0, "server pid, for its CPU time per event")
	timeout  = flag.Duration("timeout", 120*time.Second, "give up after")
)

func prefix(i int) string { return fmt.Sprintf("/wb/%05d/", i) }

// the prefix's range end: its last byte '/' raised by one
func prefixEnd(i int) string { return fmt.Sprintf("/wb/%05d0", i) }

func cpuTicks(pid int) int64 {
	b, err := ioutil.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "watchbench: "+format+"\n", a...)
	os.Exit(1)
}

// openWatchers opens the streams and creates every watcher; events seen later are added to *events.
func openWatchers(ctx context.Context, cc []*grpc.ClientConn, events *int64) {
	var created sync.WaitGroup
	created.Add(*prefixes)
	for s := 0; s < *streams; s++ {
		st, err := pb.NewWatchClient(cc[s%len(cc)]).Watch(ctx)
		if err != nil {
			die("watch stream: %v", err)
		}
		n := 0
		for i := s; i < *prefixes; i += *streams {
			req := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
				CreateRequest: &pb.WatchCreateRequest{Key: []byte(prefix(i)), RangeEnd: []byte(prefixEnd(i))}}}
			if err := st.Send(req); err != nil {
				die("watch create: %v", err)
			}
			n++
		}
		go func(st pb.Watch_WatchClient, n int) {
			for {
				resp, err := st.Recv()
				if err != nil {
					return
				}
				if resp.Created && n > 0 {
					n--
					created.Done()
				}
				if len(resp.Events) > 0 {
					atomic.AddInt64(events, int64(len(resp.Events)))
				}
			}
		}(st, n)
	}
	done := make(chan struct{})
	go func() { created.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*timeout):
		die("watchers not all created after %v", *timeout)
	}
}

func write(ctx context.Context, kv pb.KVClient, rng *rand.Rand, n int) {
	val := []byte("v")
	for t := 0; t < n; t++ {
		if *ops == 1 {
			key := prefix(rng.Intn(*prefixes)) + "k"
			if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte(key), Value: val}); err != nil {
				die("put: %v", err)
			}
			continue
		}
		req := &pb.TxnRequest{}
		for o := 0; o < *ops; o++ {
			key := fmt.Sprintf("%sk%d", prefix(rng.Intn(*prefixes)), o) // distinct keys in one Txn
			req.Success = append(req.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{
				RequestPut: &pb.PutRequest{Key: []byte(key), Value: val}}})
		}
		if _, err := kv.Txn(ctx, req); err != nil {
			die("txn: %v", err)
		}
	}
}

func main() {
	flag.Parse()
	ctx := context.Background()
	cc := make([]*grpc.ClientConn, *conns)
	for i := range cc {
		c, err := grpc.Dial(*endpoint, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithTimeout(10*time.Second),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			die("dial %s: %v", *endpoint, err)
		}
		cc[i] = c
	}
	var events int64
	t0 := time.Now()
	openWatchers(ctx, cc, &events)
	setup := time.Since(t0)

	want := int64(*txns) * int64(*ops)
	cpu0 := cpuTicks(*pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *writers; w++ {
		n := *txns / *writers
		if w < *txns%*writers {
			n++
		}
		wg.Add(1)
		go func(w, n int) {
			defer wg.Done()
			write(ctx, pb.NewKVClient(cc[w%len(cc)]), rand.New(rand.NewSource(int64(w)+1)), n)
		}(w, n)
	}
	wg.Wait()
	wrote := time.Since(start)
	for atomic.LoadInt64(&events) < want {
		if time.Since(start) > *timeout {
			die("%d of %d events after %v", atomic.LoadInt64(&events), want, *timeout)
		}
		time.Sleep(200 * time.Microsecond)
	}
	secs := time.Since(start).Seconds()
	cpu1 := cpuTicks(*pid)
	got := atomic.LoadInt64(&events)
	cpuUs := -1.0
	if cpu0 >= 0 && cpu1 >= 0 {
		cpuUs = float64(cpu1-cpu0) / 100 * 1e6 / float64(got) // USER_HZ is 100 on Linux
	}
	fmt.Printf("events=%d secs=%.3f events_per_sec=%.0f cpu_us_per_event=%.2f writes_secs=%.3f setup_secs=%.3f\n",
		got, secs, float64(got)/secs, cpuUs, wrote.Seconds(), setup.Seconds())
}
