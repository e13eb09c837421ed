// scaletool: helpers for tests/k8s/scale.sh, built offline with Debian's Go clientv3 (GOPATH mode).
//
//	scaletool load -endpoints EP -template /registry/configmaps/scale/cm-000000 -n 100000
//	    reads the object the apiserver wrote for the template ConfigMap (protobuf, as stored) and writes
//	    n-1 copies straight into the store, each with its own name (same length, so the protobuf
//	    lengths hold): /registry/configmaps/scale/cm-000001 ... in Txns of -batch puts from -conc
//	    clients. Prints the seconds taken.
//	scaletool list -server https://127.0.0.1:PORT -token T -ca CA -path /api/v1/... [-limit N] [-rv 0]
//	    lists through the apiserver (JSON), following continue tokens when -limit > 0; prints
//	    "items pages bytes seconds". -wait D retries failed first requests for up to D (start-up);
//	    -selector sets a fieldSelector.
//	scaletool range -endpoints EP -prefix P [-limit N]
//	    the store alone: reads the prefix as the apiserver pages a list (pinned to the first page's
//	    revision, continued from lastKey+"\x00"); prints "keys pages bytes seconds".
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "scaletool: "+f+"\n", a...)
	os.Exit(1)
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	ep := fs.String("endpoints", "127.0.0.1:2379", "store endpoint")
	tmpl := fs.String("template", "/registry/configmaps/scale/cm-000000", "key of the template object")
	n := fs.Int("n", 100000, "objects in all, the template included")
	batch := fs.Int("batch", 100, "puts per Txn")
	conc := fs.Int("conc", 8, "concurrent clients")
	fs.Parse(args)
	c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*ep, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		die("%v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	r, err := c.Get(ctx, *tmpl)
	cancel()
	if err != nil || len(r.Kvs) != 1 {
		die("template %s: %v (%d kvs)", *tmpl, err, len(r.Kvs))
	}
	val := r.Kvs[0].Value
	name := (*tmpl)[strings.LastIndex(*tmpl, "/")+1:]
	prefix := (*tmpl)[:strings.LastIndex(*tmpl, "/")+1]
	if !bytes.Contains(val, []byte(name)) {
		die("the template's value does not contain its name %q", name)
	}
	digits := len(name) - strings.LastIndex(name, "-") - 1
	stem := name[:len(name)-digits]
	t0 := time.Now()
	work := make(chan int, *conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range work {
				var ops []clientv3.Op
				for i := start; i < start+*batch && i < *n; i++ {
					nm := fmt.Sprintf("%s%0*d", stem, digits, i)
					ops = append(ops, clientv3.OpPut(prefix+nm, string(bytes.ReplaceAll(val, []byte(name), []byte(nm)))))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				_, err := c.Txn(ctx).Then(ops...).Commit()
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 1; i < *n; i += *batch {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		die("load: %v", firstErr)
	}
	fmt.Printf("%.2f\n", time.Since(t0).Seconds())
}

type listMeta struct {
	Continue        string `json:"continue"`
	ResourceVersion string `json:"resourceVersion"`
}
type listBody struct {
	Metadata listMeta          `json:"metadata"`
	Items    []json.RawMessage `json:"items"`
}

func listCmd(args []string) {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	server := fs.String("server", "", "https://127.0.0.1:PORT")
	token := fs.String("token", "", "bearer token")
	ca := fs.String("ca", "", "CA file")
	path := fs.String("path", "/api/v1/configmaps", "list path")
	limit := fs.Int("limit", 0, "page size (0: one request)")
	rv := fs.String("rv", "", "resourceVersion parameter")
	selector := fs.String("selector", "", "fieldSelector parameter")
	wait := fs.Duration("wait", 0, "retry failed first requests for this long (apiserver start-up)")
	timeout := fs.Duration("timeout", 300*time.Second, "per request")
	fs.Parse(args)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(*ca)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		die("CA %s: %v", *ca, err)
	}
	hc := &http.Client{Timeout: *timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(cont string) (*listBody, int, error) {
		q := url.Values{}
		if *limit > 0 {
			q.Set("limit", fmt.Sprint(*limit))
		}
		if cont != "" {
			q.Set("continue", cont)
		}
		if *rv != "" {
			q.Set("resourceVersion", *rv)
		}
		if *selector != "" {
			q.Set("fieldSelector", *selector)
		}
		req, _ := http.NewRequest("GET", *server+*path+"?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+*token)
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != 200 {
			return nil, 0, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, body)
		}
		var l listBody
		if err := json.Unmarshal(body, &l); err != nil {
			return nil, 0, err
		}
		return &l, len(body), nil
	}
	t0 := time.Now()
	deadline := t0.Add(*wait)
	items, pages, bytesIn := 0, 0, 0
	cont := ""
	for {
		l, nb, err := get(cont)
		if err != nil {
			if pages == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			die("list %s page %d: %v", *path, pages+1, err)
		}
		pages++
		items += len(l.Items)
		bytesIn += nb
		cont = l.Metadata.Continue
		if *limit == 0 || cont == "" {
			break
		}
	}
	fmt.Printf("%d %d %d %.3f\n", items, pages, bytesIn, time.Since(t0).Seconds())
}

// rangeCmd reads a prefix from the store the way the apiserver's etcd3 store pages a list: the first
// page at the current revision, the next ones from lastKey+"\x00" pinned to the first page's revision.
func rangeCmd(args []string) {
	fs := flag.NewFlagSet("range", flag.ExitOnError)
	ep := fs.String("endpoints", "127.0.0.1:2379", "store endpoint")
	prefix := fs.String("prefix", "/registry/configmaps/scale/", "key prefix")
	limit := fs.Int64("limit", 0, "page size (0: one request)")
	fs.Parse(args)
	c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*ep, ","), DialTimeout: 5 * time.Second,
		MaxCallRecvMsgSize: 1 << 31 - 1})
	if err != nil {
		die("%v", err)
	}
	defer c.Close()
	end := clientv3.GetPrefixRangeEnd(*prefix)
	t0 := time.Now()
	key, rev := *prefix, int64(0)
	keys, pages, nbytes := 0, 0, 0
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(*limit)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		r, err := c.Get(ctx, key, opts...)
		cancel()
		if err != nil {
			die("range page %d: %v", pages+1, err)
		}
		if rev == 0 {
			rev = r.Header.Revision
		}
		pages++
		keys += len(r.Kvs)
		for _, kv := range r.Kvs {
			nbytes += len(kv.Key) + len(kv.Value)
		}
		if !r.More || len(r.Kvs) == 0 {
			break
		}
		key = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
	fmt.Printf("%d %d %d %.3f\n", keys, pages, nbytes, time.Since(t0).Seconds())
}

func main() {
	if len(os.Args) < 2 {
		die("usage: scaletool load|list [flags]")
	}
	switch os.Args[1] {
	case "load":
		load(os.Args[2:])
	case "list":
		listCmd(os.Args[2:])
	case "range":
		rangeCmd(os.Args[2:])
	default:
		die("unknown command %s", os.Args[1])
	}
}
