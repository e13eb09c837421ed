// selftest.go: the checker must be able to fail. Two kinds of evidence:
//
//   - small hand-written histories, one per kind of violation (and clean ones that must pass: unknown
//     ops that did or did not take effect, deletes that need the exact matching);
//   - a simulated server: 16 clients' random ops (the same generator as the real run) applied to a
//     sequential model of etcd's KV written separately from check.go, with responses lost (unknown ops
//     that took effect) and requests lost (unknown ops that did not). Clean, its histories must pass;
//     with one injected bug each (a stale read, a read of a stale value, the tail of the log lost in a
//     crash after its writes were acknowledged, an acknowledged write never applied, two writes with one
//     revision, a write applied twice, a wrong prev_kv, a txn taking the wrong branch, a phantom write,
//     a read of a write that is then lost), every history must be refused.
package main

import (
	"fmt"
	"math/rand"
	"strings"
)

// ---- hand-written histories ----

func put(cl, seq int, inv, ret int64, key, val string, rev int64, prev *KV) *Op {
	o := &Op{Client: cl, Seq: seq, Then: Req{Kind: ReqPut, Key: key, Value: val}, Inv: inv, Ret: ret, Rev: rev}
	if prev != nil {
		o.Found, o.Res = true, *prev
	}
	return o
}

func get(cl, seq int, inv, ret int64, key string, rev int64, kv *KV) *Op {
	o := &Op{Client: cl, Seq: seq, Then: Req{Kind: ReqGet, Key: key}, Inv: inv, Ret: ret, Rev: rev}
	if kv != nil {
		o.Found, o.Res = true, *kv
	}
	return o
}

func del(cl, seq int, inv, ret int64, key string, rev, deleted int64, prev *KV) *Op {
	o := &Op{Client: cl, Seq: seq, Then: Req{Kind: ReqDel, Key: key}, Inv: inv, Ret: ret, Rev: rev, Deleted: deleted}
	if prev != nil {
		o.Found, o.Res = true, *prev
	}
	return o
}

func unknown(o *Op) *Op {
	return &Op{Client: o.Client, Seq: o.Seq, Txn: o.Txn, Cmp: o.Cmp, Then: o.Then, Else: o.Else, Inv: o.Inv,
		Ret: o.Ret, Unknown: true}
}

func kvp(key, val string, c, m, v int64) *KV {
	return &KV{Key: key, Value: val, Create: c, Mod: m, Ver: v}
}
func pev(key, val string, c, m, v int64) Event {
	return Event{KV: KV{Key: key, Value: val, Create: c, Mod: m, Ver: v}}
}
func dev(key string, m int64) Event { return Event{Delete: true, KV: KV{Key: key, Mod: m}} }

type handCase struct {
	name string
	good bool
	hist History
	want string // a word the first violation must contain (bad cases)
}

func handCases() []handCase {
	a1 := kvp("a", "1", 2, 2, 1)
	txn := &Op{Client: 3, Seq: 1, Txn: true, Cmp: Cmp{Key: "a", Value: "1"}, Then: Req{Kind: ReqPut, Key: "a", Value: "3"},
		Else: Req{Kind: ReqGet, Key: "a"}, Inv: 12, Ret: 20, Rev: 4, Succeeded: true, Found: true, Res: *kvp("a", "1", 2, 2, 1)}
	base := []*Op{
		put(1, 1, 0, 10, "a", "1", 2, nil),
		get(2, 1, 11, 15, "a", 2, a1),
		unknown(put(4, 1, 5, 6, "b", "u", 0, nil)), // took effect: revision 3
		txn,
		unknown(put(5, 1, 30, 31, "b", "never", 0, nil)), // never took effect
		get(2, 2, 40, 41, "a", 4, kvp("a", "3", 2, 4, 2)),
	}
	baseLog := []Event{pev("a", "1", 2, 2, 1), pev("b", "u", 3, 3, 1), pev("a", "3", 2, 4, 2)}
	clone := func(ops []*Op) []*Op {
		out := make([]*Op, len(ops))
		for i, o := range ops {
			c := *o
			out[i] = &c
		}
		return out
	}
	cases := []handCase{
		{name: "clean: puts, a txn, reads, one unknown put applied and one not", good: true,
			hist: History{R0: 1, R: 4, Ops: base, Log: baseLog}},
	}
	// stale read: the get is invoked after put a=1 returned (revision 2) but reads revision 1
	{
		ops := clone(base)
		ops[1] = get(2, 1, 11, 15, "a", 1, nil)
		cases = append(cases, handCase{name: "stale read (revision before a write that had returned)",
			hist: History{R0: 1, R: 4, Ops: ops, Log: baseLog}, want: "real time"})
	}
	// stale value: the get's revision is current but its value is not
	{
		ops := clone(base)
		ops[5] = get(2, 2, 40, 41, "a", 4, a1)
		cases = append(cases, handCase{name: "stale value (current revision, old value)",
			hist: History{R0: 1, R: 4, Ops: ops, Log: baseLog}, want: "read"})
	}
	// lost acknowledged write: the crash lost revision 4 and after the restart the log ends at 3
	{
		ops := clone(base)[:5]
		cases = append(cases, handCase{name: "lost acknowledged write (log ends before it)",
			hist: History{R0: 1, R: 3, Ops: ops, Log: baseLog[:2]}, want: "outside the history"})
	}
	// lost acknowledged write whose revision is reused by a later write
	{
		ops := clone(base)[:5]
		ops = append(ops, put(6, 1, 50, 60, "c", "x", 4, nil))
		log := []Event{baseLog[0], baseLog[1], pev("c", "x", 4, 4, 1)}
		cases = append(cases, handCase{name: "lost acknowledged write (its revision reused after a restart)",
			hist: History{R0: 1, R: 4, Ops: ops, Log: log}, want: "should be its write"})
	}
	// two writes with one revision (the log holds both changes at revision 2)
	{
		ops := []*Op{put(1, 1, 0, 10, "a", "1", 2, nil), put(2, 1, 0, 10, "b", "1", 2, nil)}
		log := []Event{pev("a", "1", 2, 2, 1), pev("b", "1", 2, 2, 1)}
		cases = append(cases, handCase{name: "two acknowledged writes with the same revision",
			hist: History{R0: 1, R: 2, Ops: ops, Log: log}, want: "revision 2"})
	}
	// two writes claim one revision, the log has one of them at 2 and the other at 3
	{
		ops := []*Op{put(1, 1, 0, 10, "a", "1", 2, nil), del(2, 1, 0, 10, "a", 2, 1, a1)}
		log := []Event{pev("a", "1", 2, 2, 1), dev("a", 3)}
		cases = append(cases, handCase{name: "two acknowledged writes claim the same revision",
			hist: History{R0: 1, R: 3, Ops: ops, Log: log}, want: "revision"})
	}
	// real-time order of writes violated: put a returned before put b was invoked, yet has the later revision
	{
		ops := []*Op{put(1, 1, 0, 10, "a", "1", 3, nil), put(2, 1, 20, 30, "b", "1", 2, nil)}
		log := []Event{pev("b", "1", 2, 2, 1), pev("a", "1", 3, 3, 1)}
		cases = append(cases, handCase{name: "real-time order of two writes violated",
			hist: History{R0: 1, R: 3, Ops: ops, Log: log}, want: "real time"})
	}
	// an unknown write that took effect before it was invoked: a get that returned before the put's
	// invocation read revision 3, so the put can only have made revision 4 or later, yet it is 2
	{
		ops := []*Op{unknown(put(1, 1, 50, 51, "a", "1", 0, nil)), get(2, 1, 0, 40, "b", 3, kvp("b", "9", 3, 3, 1)),
			put(3, 1, 0, 5, "b", "9", 3, nil)}
		log := []Event{pev("a", "1", 2, 2, 1), pev("b", "9", 3, 3, 1)}
		cases = append(cases, handCase{name: "unknown write placed before its invocation",
			hist: History{R0: 1, R: 3, Ops: ops, Log: log}, want: "cannot take revision"})
	}
	// a phantom write: nobody put b=ghost
	{
		log := append(append([]Event{}, baseLog...), pev("b", "ghost", 3, 5, 2))
		cases = append(cases, handCase{name: "phantom write in the log",
			hist: History{R0: 1, R: 5, Ops: clone(base), Log: log}, want: "no operation"})
	}
	// an unknown put applied twice
	{
		log := append(append([]Event{}, baseLog...), pev("b", "u", 3, 5, 2))
		cases = append(cases, handCase{name: "unknown write applied twice",
			hist: History{R0: 1, R: 5, Ops: clone(base), Log: log}, want: "revision 5"})
	}
	// an acknowledged put applied twice
	{
		log := append(append([]Event{}, baseLog...), pev("a", "1", 2, 5, 3))
		cases = append(cases, handCase{name: "acknowledged write applied twice",
			hist: History{R0: 1, R: 5, Ops: clone(base), Log: log}, want: "applied twice"})
	}
	// the txn says it succeeded but its compare was false (a was 1, it compared with 2)
	{
		ops := clone(base)
		ops[3].Cmp.Value = "2"
		cases = append(cases, handCase{name: "txn succeeded on a false compare",
			hist: History{R0: 1, R: 4, Ops: ops, Log: baseLog}, want: "compare"})
	}
	// wrong prev_kv
	{
		ops := clone(base)
		ops[3].Res.Ver = 7
		cases = append(cases, handCase{name: "wrong prev_kv",
			hist: History{R0: 1, R: 4, Ops: ops, Log: baseLog}, want: "prev_kv"})
	}
	// a dirty read: a get sees the unknown put b=never, which is not in the log
	{
		ops := clone(base)
		ops = append(ops, get(7, 1, 32, 33, "b", 4, kvp("b", "never", 3, 4, 2)))
		cases = append(cases, handCase{name: "read of a write that never took effect",
			hist: History{R0: 1, R: 4, Ops: ops, Log: baseLog}, want: "read"})
	}
	// a log that breaks the model (the version does not grow)
	{
		log := []Event{baseLog[0], baseLog[1], pev("a", "3", 2, 4, 1)}
		cases = append(cases, handCase{name: "log breaks the model (version)",
			hist: History{R0: 1, R: 4, Ops: clone(base), Log: log}, want: "model"})
	}
	// two unknown deletes of a (revisions 3 and 5): the late one was invoked after a read at revision 4
	// returned, so only revision 5 can be its; revision 3 must go to the early one.
	{
		ops := []*Op{
			put(1, 1, 0, 1, "a", "1", 2, nil),
			unknown(del(2, 1, 2, 3, "a", 0, 0, nil)), // early: may take 3 or 5
			put(1, 2, 2, 9, "a", "2", 4, nil),
			get(3, 1, 10, 11, "z", 4, nil),
			unknown(del(4, 1, 12, 13, "a", 0, 0, nil)), // late: only 5
		}
		log := []Event{pev("a", "1", 2, 2, 1), dev("a", 3), pev("a", "2", 4, 4, 1), dev("a", 5)}
		cases = append(cases, handCase{name: "clean: two unknown deletes, matched exactly", good: true,
			hist: History{R0: 1, R: 5, Ops: ops, Log: log}})
		ops2 := append([]*Op{}, ops...)
		ops2[1] = unknown(del(2, 1, 12, 13, "a", 0, 0, nil)) // now both are late: revision 3 is no one's
		cases = append(cases, handCase{name: "two unknown deletes, both invoked too late for revision 3",
			hist: History{R0: 1, R: 5, Ops: ops2, Log: log}, want: "revision 3"})
	}
	return cases
}

// ---- the simulated server ----

type fault int

const (
	fNone fault = iota
	fStaleRead
	fStaleValue
	fLoseTail
	fAckNoApply
	fSameRevision
	fApplyTwice
	fWrongPrev
	fWrongBranch
	fPhantom
	fDirtyRead
	nFaults
)

var faultNames = []string{"clean", "stale read", "stale value", "acknowledged tail lost in a crash",
	"acknowledged write never applied", "two writes with one revision", "write applied twice",
	"wrong prev_kv", "txn takes the wrong branch", "phantom write", "read of a write then lost"}

// simModel: a sequential etcd KV, kept apart from check.go's code on purpose.
type simModel struct {
	rev  int64
	kvs  map[string]KV
	log  []Event
	snap map[int64]map[string]KV // state after each revision, for the stale-read faults
}

func (m *simModel) copyState() map[string]KV {
	c := make(map[string]KV, len(m.kvs))
	for k, v := range m.kvs {
		c[k] = v
	}
	return c
}

func (m *simModel) put(key, val string, sameRev bool) {
	if !sameRev {
		m.rev++
	}
	old, ok := m.kvs[key]
	kv := KV{Key: key, Value: val, Create: m.rev, Mod: m.rev, Ver: 1}
	if ok {
		kv.Create, kv.Ver = old.Create, old.Ver+1
	}
	m.kvs[key] = kv
	m.log = append(m.log, Event{KV: kv})
	m.snap[m.rev] = m.copyState()
}

func (m *simModel) del(key string) {
	m.rev++
	delete(m.kvs, key)
	m.log = append(m.log, Event{Delete: true, KV: KV{Key: key, Mod: m.rev}})
	m.snap[m.rev] = m.copyState()
}

// truncate rolls the model back to revision r (a crash that loses the tail).
func (m *simModel) truncate(r int64) {
	for len(m.log) > 0 && m.log[len(m.log)-1].KV.Mod > r {
		m.log = m.log[:len(m.log)-1]
	}
	for x := r + 1; x <= m.rev; x++ {
		delete(m.snap, x)
	}
	m.rev = r
	m.kvs = map[string]KV{}
	for k, v := range m.snap[r] {
		m.kvs[k] = v
	}
}

// apply runs o on the model, filling its result; the fault, if armed, bends it.
func (m *simModel) apply(o *Op, f fault, lastRetWrite int64) (faulted bool) {
	cmpOK := func() bool {
		cur := m.kvs[o.Cmp.Key]
		if o.Cmp.OnMod {
			return cur.Mod == o.Cmp.ModRev
		}
		_, present := m.kvs[o.Cmp.Key]
		return present && cur.Value == o.Cmp.Value
	}
	if o.Txn {
		o.Succeeded = cmpOK()
		if f == fWrongBranch {
			o.Succeeded = !o.Succeeded
			faulted = true
		}
	}
	br := o.branch()
	switch br.Kind {
	case ReqNone:
		o.Rev = m.rev
	case ReqGet:
		state, rev := m.kvs, m.rev
		if !o.Txn && f == fStaleRead && lastRetWrite > 1 {
			rev = lastRetWrite - 1 // before a write that had returned when this read was invoked
			state, faulted = m.snap[rev], true
		}
		kv, ok := state[br.Key]
		if !o.Txn && f == fStaleValue {
			for r := m.rev - 1; r >= 1; r-- {
				if old, ok2 := m.snap[r][br.Key]; ok2 != ok || old.Value != kv.Value {
					kv, ok, faulted = old, ok2, true
					break
				}
			}
		}
		o.Rev, o.Found, o.Res = rev, ok, kv
	case ReqPut:
		prev, ok := m.kvs[br.Key]
		o.Found, o.Res = ok, prev
		switch {
		case f == fAckNoApply:
			o.Rev, faulted = m.rev+1, true
			return
		case f == fWrongPrev && ok:
			o.Res.Ver++
			faulted = true
		}
		m.put(br.Key, br.Value, f == fSameRevision && m.rev > 1 && m.log[len(m.log)-1].KV.Key != br.Key)
		if f == fSameRevision && m.rev > 1 && m.log[len(m.log)-2].KV.Mod == m.rev {
			faulted = true
		}
		o.Rev = m.rev
	case ReqDel:
		prev, ok := m.kvs[br.Key]
		o.Found, o.Res = ok, prev
		if ok {
			m.del(br.Key)
			o.Deleted = 1
		}
		o.Rev = m.rev
	}
	return
}

type simClient struct {
	w       *worker
	op      *Op
	applied bool
	faulty  bool
	lastRet int64 // the largest write revision returned to anyone when this op was invoked
}

// simulate returns the history of nClients random clients against the model, with fault f injected
// once; injected reports whether it could be.
func simulate(seed int64, steps int, f fault) (h *History, injected bool) {
	rng := rand.New(rand.NewSource(seed))
	keys := []string{"k0", "k1", "k2", "k3"}
	m := &simModel{rev: 1, kvs: map[string]KV{}, snap: map[int64]map[string]KV{1: {}}}
	h = &History{R0: 1}
	cls := make([]*simClient, 16)
	for i := range cls {
		cls[i] = &simClient{w: &worker{id: i, rng: rand.New(rand.NewSource(seed*100 + int64(i))), keys: keys,
			lastVal: map[string]string{}, lastMod: map[string]int64{}}}
	}
	armAt := steps/4 + rng.Intn(steps/2) // the fault goes to the first eligible op after this step
	var lastRetWrite int64 = 1
	var twice *Op // an unknown put to apply a second time
	var seq int
	var tail struct {
		op       *Op // a plain put: once it returned and 3 more revisions exist, the crash loses it and all after
		returned bool
		done     bool
	}
	for t := 0; t < steps; t++ {
		now := int64(t) * 1000
		if f == fApplyTwice && twice != nil && rng.Intn(20) == 0 {
			m.put(twice.Then.Key, twice.Then.Value, false)
			twice, injected = nil, true
		}
		if f == fPhantom && !injected && t > armAt {
			m.put(keys[rng.Intn(len(keys))], "ghost", false)
			injected = true
		}
		if f == fLoseTail && tail.returned && !tail.done && m.rev >= tail.op.Rev+3 {
			// crash: the log loses the acknowledged put and everything after it; pending ops become
			// unknown
			m.truncate(tail.op.Rev - 1)
			for _, c := range cls {
				if c.op != nil {
					h.Ops = append(h.Ops, unknown(c.op))
					c.op = nil
				}
			}
			tail.done, injected = true, true
		}
		c := cls[rng.Intn(len(cls))]
		switch {
		case c.op == nil:
			seq++
			c.op = c.w.genOp(seq)
			c.op.Inv, c.applied, c.faulty, c.lastRet = now, false, false, lastRetWrite
		case !c.applied:
			if rng.Intn(40) == 0 { // the request is lost: unknown, never applied
				h.Ops = append(h.Ops, unknown(c.op))
				c.op = nil
				continue
			}
			ff := fNone
			if !injected && t > armAt {
				ff = f
				if f == fDirtyRead {
					ff = fNone
				}
			}
			if f == fLoseTail {
				ff = fNone
			}
			if m.apply(c.op, ff, c.lastRet) {
				injected, c.faulty = true, true
			}
			c.applied = true
			if f == fLoseTail && tail.op == nil && t > armAt && !c.op.Txn && c.op.Then.Kind == ReqPut {
				tail.op = c.op
			}
			if f == fDirtyRead && !injected && t > armAt && !c.op.Txn && c.op.Then.Kind == ReqPut {
				// this put is read by a get, then lost with the tail in a crash before it returns
				r := c.op.Rev
				v := m.kvs[c.op.Then.Key]
				g := get(99, seq, now, now+1, c.op.Then.Key, r, &v)
				h.Ops = append(h.Ops, g)
				m.truncate(r - 1)
				for _, c2 := range cls {
					if c2.op != nil {
						h.Ops = append(h.Ops, unknown(c2.op))
						c2.op = nil
					}
				}
				injected = true
			}
		default:
			if rng.Intn(30) == 0 && !c.faulty { // the response is lost: unknown, applied (a faulty
				// response is always delivered: lost, it would show nothing)
				if f == fApplyTwice && twice == nil && !injected && !c.op.Txn && c.op.Then.Kind == ReqPut {
					twice = c.op
				}
				if c.op == tail.op && !tail.done {
					tail.op = nil // its loss would be no violation: choose another
				}
				h.Ops = append(h.Ops, unknown(c.op))
				c.op = nil
				continue
			}
			c.op.Ret = now
			if br := c.op.branch(); br.Kind == ReqPut || (br.Kind == ReqDel && c.op.Deleted > 0) {
				if c.op.Rev > lastRetWrite {
					lastRetWrite = c.op.Rev
				}
			}
			if c.op == tail.op {
				tail.returned = true
			}
			c.w.learn(c.op)
			h.Ops = append(h.Ops, c.op)
			c.op = nil
		}
	}
	for _, c := range cls { // still pending at the end: unknown
		if c.op != nil {
			h.Ops = append(h.Ops, unknown(c.op))
		}
	}
	end := int64(steps) * 1000
	for i, k := range keys {
		kv, ok := m.kvs[k]
		o := get(16, i+1, end+int64(i)*2, end+int64(i)*2+1, k, m.rev, nil)
		o.Found, o.Res = ok, kv
		h.Ops = append(h.Ops, o)
	}
	h.R, h.Log = m.rev, m.log
	if f == fNone {
		injected = true
	}
	return h, injected
}

func runSelftest() {
	for _, hc := range handCases() {
		hist := hc.hist
		res := Check(&hist)
		switch {
		case hc.good && res.ok():
			report("selftest: accepted: "+hc.name, nil)
		case hc.good:
			report("selftest: accepted: "+hc.name, fmt.Errorf("refused: %s", strings.Join(res.Violations, "; ")))
		case res.ok():
			report("selftest: refused: "+hc.name, fmt.Errorf("accepted"))
		case !strings.Contains(res.Violations[0], hc.want):
			report("selftest: refused: "+hc.name, fmt.Errorf("refused for another reason: %s", res.Violations[0]))
		default:
			report("selftest: refused: "+hc.name+" ("+firstLine(res.Violations[0])+")", nil)
		}
	}
	const seeds, steps = 40, 6000
	for f := fNone; f < nFaults; f++ {
		caught, tried, ops, unk, unkApplied := 0, 0, 0, 0, 0
		var err error
		for s := int64(1); s <= seeds; s++ {
			h, injected := simulate(s*7919+int64(f), steps, f)
			if !injected {
				continue
			}
			tried++
			res := Check(h)
			ops += res.Ops
			unk += res.Unknown
			unkApplied += res.UnknownApplied
			if f == fNone && !res.ok() && err == nil {
				err = fmt.Errorf("seed %d refused: %s\n%s", s, strings.Join(res.Violations, "\n"),
					Excerpt(h, res.FirstKey, res.FirstRev, 3))
			}
			if f != fNone && !res.ok() {
				caught++
			}
			if f != fNone && res.ok() && err == nil {
				err = fmt.Errorf("seed %d: the injected bug was accepted", s)
			}
		}
		if tried < seeds/2 && err == nil {
			err = fmt.Errorf("the fault was injected in only %d of %d histories", tried, seeds)
		}
		if f == fNone {
			if unkApplied == 0 && err == nil {
				err = fmt.Errorf("no unknown op took effect: the matching was not exercised")
			}
			report(fmt.Sprintf("selftest: simulated clean histories accepted: %d of %d (%d ops, %d unknown, %d of "+
				"them took effect)", tried, tried, ops, unk, unkApplied), err)
		} else {
			report(fmt.Sprintf("selftest: simulated server with '%s': refused %d of %d histories",
				faultNames[f], caught, tried), err)
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 150 {
		s = s[:150] + "..."
	}
	return s
}
