// listbench: times large prefix Ranges (issue 16, "large ranges") the way kube-apiserver lists: one Range
// of a whole prefix, and pages of -page keys pinned to the first page's revision, serializable and
// linearizable, with the real Go clientv3. Also a "raw" full Range whose reply gRPC receives but nobody
// decodes, to tell the client's protobuf decode from the server's work. Built offline with Debian's Go
// packages in GOPATH mode (bench/list_bench.sh does it); -load fills a prefix first.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/protobuf/proto"
	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
)

var (
	endpoint = flag.String("endpoint", "127.0.0.1:2379", "server endpoint")
	prefix   = flag.String("prefix", "/lb/", "the prefix listed (and loaded)")
	keys     = flag.Int("keys", 20000, "keys under the prefix (-load writes them; the lists check the count)")
	valSize  = flag.Int("val-size", 1024, "value bytes (-load)")
	load     = flag.Bool("load", false, "write -keys keys of -val-size bytes under -prefix, then exit")
	page     = flag.Int64("page", 500, "keys per page in the paged lists")
	reps     = flag.Int("reps", 3, "lists per row; the row's time is their median")
	rows     = flag.String("rows", "full-s,full-l,pages-s,pages-l,raw-s", "rows to run, in this order")
	pid      = flag.Int("pid", 0, "server pid, for its CPU time per list")
	timeout  = flag.Duration("timeout", 300*time.Second, "give up after")
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "listbench: "+format+"\n", a...)
	os.Exit(1)
}

// cpuTicks: the server's utime+stime in clock ticks (1/100 s), -1 if unknown.
func cpuTicks() int64 {
	if *pid == 0 {
		return -1
	}
	b, err := ioutil.ReadFile("/proc/" + strconv.Itoa(*pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// selfCPU: this process's user+system CPU time, in ms (the client's decode shows here).
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func key(i int) string { return fmt.Sprintf("%s%08d", *prefix, i) }

// loadKeys writes the keys in Txns of 100 puts from 8 writers.
func loadKeys(ctx context.Context, cli *clientv3.Client) {
	val := strings.Repeat("v", *valSize)
	const batch, writers = 100, 8
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range next {
				var ops []clientv3.Op
				for i := start; i < start+batch && i < *keys; i++ {
					ops = append(ops, clientv3.OpPut(key(i), val))
				}
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					die("load: %v", err)
				}
			}
		}()
	}
	for i := 0; i < *keys; i += batch {
		next <- i
	}
	close(next)
	wg.Wait()
}

func readOpts(serializable bool, extra ...clientv3.OpOption) []clientv3.OpOption {
	if serializable {
		extra = append(extra, clientv3.WithSerializable())
	}
	return extra
}

// full: one Range of the whole prefix; returns the keys seen and the reply's bytes.
func full(ctx context.Context, cli *clientv3.Client, serializable bool) (int, int) {
	r, err := cli.Get(ctx, *prefix, readOpts(serializable, clientv3.WithPrefix())...)
	if err != nil {
		die("full range: %v", err)
	}
	return len(r.Kvs), (*pb.RangeResponse)(r).Size()
}

// pages: pages of -page keys, every page after the first at the first page's revision.
func pages(ctx context.Context, cli *clientv3.Client, serializable bool) (int, int) {
	end := clientv3.GetPrefixRangeEnd(*prefix)
	from, rev, n, size := *prefix, int64(0), 0, 0
	for {
		opts := readOpts(serializable, clientv3.WithRange(end), clientv3.WithLimit(*page))
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		r, err := cli.Get(ctx, from, opts...)
		if err != nil {
			die("page: %v", err)
		}
		if rev == 0 {
			rev = r.Header.Revision
		}
		if r.Count != int64(*keys-n) { // each page counts itself and every key after it
			die("page after %d keys: count %d, want %d", n, r.Count, *keys-n)
		}
		n += len(r.Kvs)
		size += (*pb.RangeResponse)(r).Size()
		if !r.More || len(r.Kvs) == 0 {
			return n, size
		}
		from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
}

// rawReply takes a reply's bytes without decoding them.
type rawReply struct{ n int }

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	v.(*rawReply).n = len(data)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// raw: the full Range over the client's connection, the reply received but not decoded.
func raw(ctx context.Context, cli *clientv3.Client, serializable bool) (int, int) {
	req := &pb.RangeRequest{Key: []byte(*prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(*prefix)),
		Serializable: serializable}
	var out rawReply
	err := cli.ActiveConnection().Invoke(ctx, "/etcdserverpb.KV/Range", req, &out, grpc.ForceCodec(rawCodec{}),
		grpc.MaxCallRecvMsgSize(1<<30))
	if err != nil {
		die("raw range: %v", err)
	}
	return *keys, out.n
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// row runs one row -reps times and prints "row wall_ms_median wall_min wall_max server_cpu_ms reply_MB
// client_cpu_ms", the CPU times per list.
func row(ctx context.Context, cli *clientv3.Client, name string) {
	var fn func(context.Context, *clientv3.Client, bool) (int, int)
	switch name[:len(name)-2] {
	case "full":
		fn = full
	case "pages":
		fn = pages
	case "raw":
		fn = raw
	default:
		die("unknown row %q", name)
	}
	serializable := strings.HasSuffix(name, "-s")
	fn(ctx, cli, serializable) // warm: the connection, and the server's caches
	walls := make([]float64, 0, *reps)
	size := 0
	t0, c0 := cpuTicks(), selfCPU()
	for i := 0; i < *reps; i++ {
		start := time.Now()
		n, sz := fn(ctx, cli, serializable)
		walls = append(walls, float64(time.Since(start).Microseconds())/1000)
		if n != *keys {
			die("%s: %d keys, want %d", name, n, *keys)
		}
		size = sz
	}
	cpu := -1.0
	if t1 := cpuTicks(); t0 >= 0 && t1 >= 0 {
		cpu = float64(t1-t0) * 10 / float64(*reps)
	}
	client := (selfCPU() - c0) / float64(*reps)
	sort.Float64s(walls)
	fmt.Printf("%s %.1f %.1f %.1f %.1f %.1f %.1f\n", name, median(walls), walls[0], walls[len(walls)-1], cpu,
		float64(size)/1e6, client)
}

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second,
		MaxCallRecvMsgSize: 1 << 30})
	if err != nil {
		die("connect: %v", err)
	}
	defer cli.Close()
	if *load {
		loadKeys(ctx, cli)
		return
	}
	for _, name := range strings.Split(*rows, ",") {
		row(ctx, cli, name)
	}
}
