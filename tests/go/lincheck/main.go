// lincheck: a linearizability check of etcd's KV against an etcd v3 server, with the real Go clientv3
// (Debian's golang-etcd-server-dev, built offline in GOPATH mode). 16 clients run puts, txns (compare
// on value or mod_revision, then put/delete, else get/put/nothing), linearizable gets and deletes over
// 8 keys, recording each op's invocation and response (monotonic clock) and result; the server may be
// killed with SIGKILL (by PID) and restarted on the same data dir and port every few seconds. After
// the run the server's write log is read with a Watch from the first revision, and check.go decides
// whether the history is linearizable (the argument is at the top of check.go).
//
// Modes:
//
//	lincheck -selftest                       doctored histories must be refused, clean ones accepted
//	lincheck -endpoints EP -seconds N        against a running server with a fresh store
//	lincheck -server BIN -data-dir D -endpoints 127.0.0.1:PORT -seconds N [-restart-min/-max]
//	                                          starts BIN itself, kill -9 restarts it
//	lincheck -check FILE                     checks a history saved with -history FILE
//
// Prints ok/FAIL lines and "N passed, N failed"; exits 1 on a failure.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

var (
	selftest   = flag.Bool("selftest", false, "check the checker on clean and doctored histories")
	endpoint   = flag.String("endpoints", "", "server endpoint host:port")
	serverBin  = flag.String("server", "", "start this cetcd binary on -endpoints and -data-dir, and kill -9 restart it")
	dataDir    = flag.String("data-dir", "", "data dir of -server")
	srvExtra   = flag.String("server-flags", "", "more flags for -server, space-separated (e.g. etcd's peer URLs)")
	serverLog  = flag.String("server-log", "", "append the server's output here (default: discarded)")
	seconds    = flag.Float64("seconds", 20, "run time")
	clients    = flag.Int("clients", 16, "concurrent clients")
	nKeys      = flag.Int("keys", 8, "keys")
	opTimeout  = flag.Duration("op-timeout", 3*time.Second, "per-op timeout; an op that times out is unknown")
	restartMin = flag.Duration("restart-min", time.Second, "least time between kill -9 restarts (0: none)")
	restartMax = flag.Duration("restart-max", 3*time.Second, "most time between kill -9 restarts")
	rollback   = flag.Bool("sabotage-rollback", false, "roll the data dir back to an older copy at the 4th restart "+
		"(acknowledged writes lost: the check must fail)")
	runName    = flag.String("name", "", "name of the run in the result lines (default: the endpoint)")
	minRestart = flag.Int("min-restarts", 0, "fail if fewer restarts happened")
	histOut    = flag.String("history", "", "write the history (JSON) here")
	failedOut  = flag.String("failed-history", "", "write the history (JSON) here if it is not linearizable")
	checkFile  = flag.String("check", "", "check a history saved with -history")
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

func finish() {
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

func saveHistory(h *History, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := json.NewEncoder(w).Encode(h); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func loadHistory(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var h History
	err = json.NewDecoder(bufio.NewReader(f)).Decode(&h)
	return &h, err
}

// verdict checks h and reports the result, with an excerpt of the history at the first violation.
func verdict(name string, h *History, extra string) bool {
	res := Check(h)
	fig := fmt.Sprintf("%d ops: %d returned (%d made a revision, %d changed nothing), %d unknown (%d of them "+
		"took effect); revisions %d..%d%s; checked in %.3f s", res.Ops, res.Returned, res.Writes, res.Reads,
		res.Unknown, res.UnknownApplied, h.R0+1, h.R, extra, res.Took.Seconds())
	if res.ok() {
		report(name+": linearizable: "+fig, nil)
		return true
	}
	msg := fmt.Sprintf("%d violation(s) in %s", res.NViolations, fig)
	for _, v := range res.Violations {
		msg += "\n  * " + v
	}
	msg += "\n  history excerpt at the first violation:\n" + Excerpt(h, res.FirstKey, res.FirstRev, 3)
	report(name+": linearizable", fmt.Errorf("%s", msg))
	return false
}

func main() {
	flag.Parse()
	switch {
	case *selftest:
		runSelftest()
	case *checkFile != "":
		h, err := loadHistory(*checkFile)
		if err != nil {
			report("load "+*checkFile, err)
			finish()
		}
		verdict(*checkFile, h, "")
	case *endpoint != "":
		cfg := runConfig{endpoint: *endpoint, clients: *clients, keys: *nKeys,
			duration: time.Duration(*seconds * float64(time.Second)), opTimeout: *opTimeout}
		name := *endpoint
		if *serverBin != "" {
			logf := os.Stderr
			if *serverLog != "" {
				f, err := os.OpenFile(*serverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					report("server log", err)
					finish()
				}
				logf = f
			} else if f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
				logf = f
			}
			cfg.srv = &server{bin: *serverBin, dir: *dataDir, ep: *endpoint, log: logf,
				extra: strings.Fields(*srvExtra)}
			cfg.restartMin, cfg.restartMax, cfg.rollback = *restartMin, *restartMax, *rollback
			if cfg.restartMax < cfg.restartMin {
				cfg.restartMax = cfg.restartMin
			}
			if err := cfg.srv.start(); err != nil {
				report("server starts", err)
				finish()
			}
			name = "cetcd (kill -9 restarts)"
			if cfg.restartMin <= 0 {
				name = "cetcd"
			}
		}
		if *runName != "" {
			name = *runName
		}
		h, st, err := runHistory(cfg)
		if failedMalformed.Load() {
			failed++
		}
		if err != nil {
			report(name+": history recorded", err)
			if cfg.srv != nil {
				cfg.srv.stop()
			}
			finish()
		}
		report(fmt.Sprintf("%s: history recorded: %d clients, %d keys, %.1f s, %d kill -9 restarts, %d failed "+
			"reads dropped, %d log events read back in %.1f s; failures by cause: %v", name, cfg.clients, cfg.keys,
			st.elapsed.Seconds(), st.restarts, st.failedReads, len(h.Log), st.logRead.Seconds(), st.errs), nil)
		if cfg.srv != nil && cfg.restartMin > 0 && *minRestart > 0 {
			var err error
			if st.restarts < *minRestart {
				err = fmt.Errorf("only %d restarts, want at least %d", st.restarts, *minRestart)
			}
			report(fmt.Sprintf("%s: at least %d restarts", name, *minRestart), err)
		}
		if *histOut != "" {
			if err := saveHistory(h, *histOut); err != nil {
				report("history saved", err)
			}
		}
		if !verdict(name, h, fmt.Sprintf(", %d restarts", st.restarts)) && *failedOut != "" {
			if err := saveHistory(h, *failedOut); err == nil {
				fmt.Printf("# the history is in %s (lincheck -check %s checks it again)\n", *failedOut, *failedOut)
			}
		}
		if cfg.srv != nil {
			cfg.srv.stop()
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
	finish()
}
