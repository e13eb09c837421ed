// check.go: the linearizability checker of lincheck.
//
// # The model
//
// etcd's KV as one sequential object: a map key -> (value, create_revision, mod_revision, version) and
// a global revision that grows by exactly one per write. A write is an operation that changes the map:
// a Put, a Delete of a key that exists, or a Txn whose chosen branch does one of these. A Put sets
// mod_revision to the new revision, version to the old version + 1 (1 for a new key) and keeps the
// create_revision of a live key (the new revision otherwise); a Delete removes the key. An operation
// that changes nothing (a Get, a Delete of an absent key, a Txn whose branch only reads) leaves the
// revision alone. Every response carries the header revision: the revision after the operation.
// A Txn's compare is evaluated on the state before it (etcd: a Value compare on an absent key is
// false; a ModRevision compare sees 0 for an absent key).
//
// # What a history is
//
// The ops the clients ran, each with its invocation and response times (monotonic clock, one process)
// and, if it returned, its whole result; an op that failed or timed out is "unknown": it may or may not
// have taken effect, at any point after its invocation. Plus the server's own write log, read after the
// run with a Watch from the first revision to the last: for each revision, the change it made (puts
// with all four fields, deletes). That final Watch is itself an operation of the model (etcd's state
// includes its history, which Range/Watch with a revision reads), invoked after every other op
// returned; so the log must be the history of a linearization too.
//
// # Why checking reduces to a few linear passes (soundness and completeness)
//
// In the model, the op that returns header revision h and changed the map is exactly the h-th write
// of the order, and an op that changed nothing and returned h sits after the h-th write and before the
// (h+1)-th. So the result of every returned op fixes its place up to the order among non-writes
// between the same two writes: write at h -> position 2h; non-write at h -> position 2h+1. The final
// log fixes the change of every revision. What is left to decide is which unknown op made each
// revision that no returned op claims. The checker:
//
//  1. validates the log against the model: revisions R0+1..R each present, in order, each event's
//     mod_revision its revision, create_revision and version as the model computes them, deletes only
//     of live keys. This gives the state S(r) after every revision r (S(R0) is empty: the store is
//     fresh).
//  2. for every returned op at header h: if its result says it wrote (a Put, a Delete with deleted=1,
//     a Txn whose chosen branch is one of these) the change of revision h must be exactly its change,
//     its compare must give its 'succeeded' on S(h-1), its prev_kv must be S(h-1)'s; no two returned
//     ops may claim one revision. Otherwise its compare, Get result (all four fields) or deleted=0
//     must match S(h). A header revision beyond R is a violation (a revision the server no longer has).
//  3. real time: for ops A, B with A's response before B's invocation, pos(A) <= pos(B). One sweep:
//     ops in invocation order, with M = the largest position of any op returned before that
//     invocation; pos(B) >= M for every returned B. For an unknown op U, M is its lower bound: it can
//     only take a revision r with 2r >= M.
//  4. every revision no returned op claimed must be made by a distinct unknown op U, with 2r >= lb(U)
//     and U's change on S(r-1) (its compare decides its branch) equal to the change of revision r.
//     Put values are unique per op, so a put names its op; a delete can be any unknown delete of the
//     key, so this is a bipartite matching (revisions x unknown ops), solved exactly with augmenting
//     paths. A revision no op can have made is a phantom write (or an op applied twice).
//
// If all four pass, a linearization exists: order ops by position; among non-writes of the same
// position, by response time (an interval order, so real time is respected); unknown ops matched to a
// revision are placed at it, the others are left out (they never took effect) or put last with any
// result (they never returned). Each op then sees exactly the state the model gives (checked in 1 and
// 2), and real time holds (3, and lb for unknown ops). Conversely, every step only demands what any
// linearization must have, given that header and mod revisions are part of the results: each check
// fails only if no linearization exists (the matching is exact, not greedy), so the checker is also
// complete for this model.
package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// KV is a key's state; Ver == 0 means absent.
type KV struct {
	Key    string `json:"k"`
	Value  string `json:"v,omitempty"`
	Create int64  `json:"c,omitempty"`
	Mod    int64  `json:"m,omitempty"`
	Ver    int64  `json:"ver,omitempty"`
}

func (kv KV) String() string {
	if kv.Ver == 0 {
		return kv.Key + "=<absent>"
	}
	return fmt.Sprintf("%s=%q c%d m%d v%d", kv.Key, kv.Value, kv.Create, kv.Mod, kv.Ver)
}

// Event is one change of the server's log (a delete has only Key and Mod).
type Event struct {
	Delete bool `json:"del,omitempty"`
	KV     KV   `json:"kv"`
}

func (e Event) String() string {
	if e.Delete {
		return fmt.Sprintf("rev %d DELETE %s", e.KV.Mod, e.KV.Key)
	}
	return fmt.Sprintf("rev %d PUT %s", e.KV.Mod, e.KV.String())
}

type ReqKind uint8

const (
	ReqNone ReqKind = iota // a txn branch with no operation
	ReqGet
	ReqPut
	ReqDel
)

// Req is one request: a plain op, or a txn branch's single operation.
type Req struct {
	Kind  ReqKind `json:"t"`
	Key   string  `json:"k,omitempty"`
	Value string  `json:"v,omitempty"`
}

func (r Req) String() string {
	switch r.Kind {
	case ReqGet:
		return "get " + r.Key
	case ReqPut:
		return fmt.Sprintf("put %s=%q", r.Key, r.Value)
	case ReqDel:
		return "del " + r.Key
	}
	return "nothing"
}

// Cmp is a txn's single compare: value(Key) == Value, or mod_revision(Key) == ModRev.
type Cmp struct {
	Key    string `json:"k"`
	OnMod  bool   `json:"mod,omitempty"`
	Value  string `json:"v,omitempty"`
	ModRev int64  `json:"r,omitempty"`
}

func (c Cmp) eval(cur KV) bool {
	if c.OnMod {
		return cur.Mod == c.ModRev // absent: mod 0
	}
	return cur.Ver != 0 && cur.Value == c.Value
}

func (c Cmp) String() string {
	if c.OnMod {
		return fmt.Sprintf("mod(%s)==%d", c.Key, c.ModRev)
	}
	return fmt.Sprintf("value(%s)==%q", c.Key, c.Value)
}

// Op is one client operation and its result. A plain op is Then; a txn is Cmp ? Then : Else.
type Op struct {
	Client  int   `json:"cl"`
	Seq     int   `json:"seq"`
	Txn     bool  `json:"txn,omitempty"`
	Cmp     Cmp   `json:"cmp,omitempty"`
	Then    Req   `json:"then"`
	Else    Req   `json:"else,omitempty"`
	Inv     int64 `json:"inv"` // ns since the start, monotonic
	Ret     int64 `json:"ret"` // ns; for an unknown op, when the client gave up (not a bound)
	Unknown bool  `json:"unknown,omitempty"`
	// the result of a returned op
	Rev       int64 `json:"rev,omitempty"`   // header revision
	Succeeded bool  `json:"ok,omitempty"`    // txn only
	Found     bool  `json:"found,omitempty"` // Get: a kv came back; Put/Del: a prev_kv came back
	Res       KV    `json:"res,omitempty"`   // that kv
	Deleted   int64 `json:"deleted,omitempty"`
}

func (o *Op) branch() Req {
	if o.Txn && !o.Succeeded {
		return o.Else
	}
	return o.Then
}

func (o *Op) name() string { return fmt.Sprintf("c%d#%d", o.Client, o.Seq) }

func fmtT(ns int64) string { return fmt.Sprintf("%.6fs", float64(ns)/1e9) }

func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s..", o.name(), fmtT(o.Inv))
	if o.Unknown {
		fmt.Fprintf(&b, "unknown (gave up %s)] ", fmtT(o.Ret))
	} else {
		fmt.Fprintf(&b, "%s] ", fmtT(o.Ret))
	}
	if o.Txn {
		fmt.Fprintf(&b, "txn(%s ? %s : %s)", o.Cmp, o.Then, o.Else)
	} else {
		b.WriteString(o.Then.String())
	}
	if o.Unknown {
		return b.String()
	}
	fmt.Fprintf(&b, " -> rev %d", o.Rev)
	if o.Txn {
		fmt.Fprintf(&b, " succeeded=%v", o.Succeeded)
	}
	br := o.branch()
	switch br.Kind {
	case ReqGet:
		if o.Found {
			fmt.Fprintf(&b, " kv=[%s]", o.Res)
		} else {
			b.WriteString(" kv=[]")
		}
	case ReqPut, ReqDel:
		if br.Kind == ReqDel {
			fmt.Fprintf(&b, " deleted=%d", o.Deleted)
		}
		if o.Found {
			fmt.Fprintf(&b, " prev=[%s]", o.Res)
		} else {
			b.WriteString(" prev=[]")
		}
	}
	return b.String()
}

// History is what the checker reads.
type History struct {
	R0  int64   `json:"r0"` // the revision of the empty store before the run
	R   int64   `json:"r"`  // the last revision, read after every op ended
	Ops []*Op   `json:"ops"`
	Log []Event `json:"log"` // every change of revisions R0+1..R, in order
}

// Result of a check.
type Result struct {
	Violations  []string // the first ones
	NViolations int
	Ops         int
	Returned    int
	Writes      int // returned ops that made a revision
	Reads       int // returned ops that changed nothing (gets, failed compares, deletes of absent keys)
	Unknown     int
	// unknown ops that took effect (matched to a revision)
	UnknownApplied int
	Revisions      int
	Took           time.Duration
	FirstKey       string // of the first violation
	FirstRev       int64
}

func (r *Result) ok() bool { return len(r.Violations) == 0 }

type keyAt struct {
	rev int64
	kv  KV // Ver 0: absent from rev on
}

type checker struct {
	h     *History
	res   *Result
	hist  map[string][]keyAt // each key's states, by revision
	byRev [][]Event          // byRev[r-R0-1]: the changes of revision r
	pos   []int64            // per op: 2h or 2h+1; -1 unknown
	lb    []int64            // per unknown op: the least position it may take
	owner []int              // per revision r-R0-1: the op that made it, or -1
}

const maxReported = 12

func (c *checker) violation(format string, a ...interface{}) { c.violationAt("", 0, format, a...) }

// violationAt records a violation; the first one's key and revision name the excerpt of a report.
func (c *checker) violationAt(key string, rev int64, format string, a ...interface{}) {
	if c.res.NViolations == 0 {
		c.res.FirstKey, c.res.FirstRev = key, rev
	}
	c.res.NViolations++
	if len(c.res.Violations) < maxReported {
		c.res.Violations = append(c.res.Violations, fmt.Sprintf(format, a...))
	} else if len(c.res.Violations) == maxReported {
		c.res.Violations = append(c.res.Violations, "... (further violations not listed)")
	}
}

// state returns key's state after revision r.
func (c *checker) state(key string, r int64) KV {
	hs := c.hist[key]
	i := sort.Search(len(hs), func(i int) bool { return hs[i].rev > r }) - 1
	if i < 0 {
		return KV{Key: key}
	}
	kv := hs[i].kv
	kv.Key = key
	return kv
}

func (c *checker) events(r int64) []Event {
	if r <= c.h.R0 || r > c.h.R {
		return nil
	}
	return c.byRev[r-c.h.R0-1]
}

// Check checks a history; see the comment at the top of this file.
func Check(h *History) *Result {
	t0 := time.Now()
	res := &Result{Ops: len(h.Ops), Revisions: int(h.R - h.R0)}
	c := &checker{h: h, res: res, hist: map[string][]keyAt{}}
	if c.validateLog() {
		c.checkReturned()
		c.realTime()
		c.matchUnknown()
	}
	for i, o := range h.Ops {
		switch {
		case o.Unknown:
			res.Unknown++
		case c.pos != nil && c.pos[i] >= 0 && c.pos[i]%2 == 0:
			res.Returned++
			res.Writes++
		default:
			res.Returned++
			res.Reads++
		}
	}
	res.Took = time.Since(t0)
	return res
}

// 1. the log against the model.
func (c *checker) validateLog() bool {
	h := c.h
	if h.R < h.R0 {
		c.violation("the last revision %d is below the first %d", h.R, h.R0)
		return false
	}
	c.byRev = make([][]Event, h.R-h.R0)
	c.owner = make([]int, h.R-h.R0)
	for i := range c.owner {
		c.owner[i] = -1
	}
	cur := map[string]KV{}
	last := h.R0
	bad := false
	for i, e := range h.Log {
		r := e.KV.Mod
		if r < last || r > last+1 || r <= h.R0 || r > h.R {
			c.violationAt(e.KV.Key, r, "log: event %d (%s) after revision %d: revisions must go R0+1..R=%d..%d one by one",
				i, e, last, h.R0+1, h.R)
			return false
		}
		if r == last+1 {
			last = r
		}
		for _, o := range c.byRev[r-h.R0-1] {
			if o.KV.Key == e.KV.Key {
				c.violationAt(e.KV.Key, r, "log: revision %d changes %s twice", r, e.KV.Key)
				bad = true
			}
		}
		c.byRev[r-h.R0-1] = append(c.byRev[r-h.R0-1], e)
		prev := cur[e.KV.Key]
		if e.Delete {
			if prev.Ver == 0 {
				c.violationAt(e.KV.Key, r, "log: %s deletes an absent key", e)
				bad = true
			}
			delete(cur, e.KV.Key)
			c.hist[e.KV.Key] = append(c.hist[e.KV.Key], keyAt{rev: r})
			continue
		}
		want := KV{Key: e.KV.Key, Value: e.KV.Value, Create: r, Mod: r, Ver: 1}
		if prev.Ver != 0 {
			want.Create, want.Ver = prev.Create, prev.Ver+1
		}
		if e.KV != want {
			c.violationAt(e.KV.Key, r, "log: %s, the model gives %s (previous state %s)", e, want, prev)
			bad = true
		}
		cur[e.KV.Key] = e.KV
		c.hist[e.KV.Key] = append(c.hist[e.KV.Key], keyAt{rev: r, kv: e.KV})
	}
	if last != h.R {
		c.violation("log: ends at revision %d but the server's revision is %d (revisions %d..%d have no change)",
			last, h.R, last+1, h.R)
		bad = true
	}
	return !bad
}

// change returns the single event req makes on a key whose state is cur at revision r, if any.
func change(req Req, cur KV, r int64) (Event, bool) {
	switch req.Kind {
	case ReqPut:
		kv := KV{Key: req.Key, Value: req.Value, Create: r, Mod: r, Ver: 1}
		if cur.Ver != 0 {
			kv.Create, kv.Ver = cur.Create, cur.Ver+1
		}
		return Event{KV: kv}, true
	case ReqDel:
		if cur.Ver != 0 {
			return Event{Delete: true, KV: KV{Key: req.Key, Mod: r}}, true
		}
	}
	return Event{}, false
}

func sameKV(found bool, got KV, want KV) bool {
	if !found {
		return want.Ver == 0
	}
	return want.Ver != 0 && got == want
}

func fmtFound(found bool, kv KV) string {
	if !found {
		return "none"
	}
	return kv.String()
}

// 2. each returned op against the state at its revision.
func (c *checker) checkReturned() {
	h := c.h
	c.pos = make([]int64, len(h.Ops))
	order := make([]int, len(h.Ops)) // by revision, then invocation: the first violation listed is the earliest
	for i := range order {
		order[i] = i
		c.pos[i] = -1
	}
	sort.Slice(order, func(a, b int) bool {
		x, y := h.Ops[order[a]], h.Ops[order[b]]
		return x.Rev < y.Rev || (x.Rev == y.Rev && x.Inv < y.Inv)
	})
	for _, i := range order {
		o := h.Ops[i]
		if o.Unknown {
			continue
		}
		if o.Rev < h.R0 || o.Rev > h.R {
			c.violationAt(o.Then.Key, o.Rev, "%s: header revision %d outside the history %d..%d (a lost write, or a read of one)",
				o, o.Rev, h.R0, h.R)
			continue
		}
		br := o.branch()
		wrote := br.Kind == ReqPut || (br.Kind == ReqDel && o.Deleted > 0)
		if wrote {
			c.pos[i] = 2 * o.Rev
			if o.Rev == h.R0 {
				c.violationAt(o.Then.Key, o.Rev, "%s: a write cannot return the initial revision %d", o, o.Rev)
				continue
			}
			before := c.state(br.Key, o.Rev-1)
			if o.Txn && o.Cmp.eval(c.state(o.Cmp.Key, o.Rev-1)) != o.Succeeded {
				c.violationAt(o.Then.Key, o.Rev, "%s: its compare is %v on the state before revision %d (%s)", o,
					!o.Succeeded, o.Rev, c.state(o.Cmp.Key, o.Rev-1))
				continue
			}
			if br.Kind == ReqDel && o.Deleted != 1 {
				c.violationAt(o.Then.Key, o.Rev, "%s: deleted %d of one key", o, o.Deleted)
				continue
			}
			if !sameKV(o.Found, o.Res, before) {
				c.violationAt(o.Then.Key, o.Rev, "%s: prev_kv %s, but before revision %d the key was %s", o,
					fmtFound(o.Found, o.Res), o.Rev, before)
				continue
			}
			want, _ := change(br, before, o.Rev)
			got := c.events(o.Rev)
			if len(got) != 1 || got[0] != want {
				c.violationAt(o.Then.Key, o.Rev, "%s: revision %d should be its write (%s) but the log has %v", o, o.Rev, want, got)
				continue
			}
			if w := c.owner[o.Rev-h.R0-1]; w >= 0 {
				c.violationAt(o.Then.Key, o.Rev, "two acknowledged writes at revision %d:\n    %s\n    %s", o.Rev, h.Ops[w], o)
				continue
			}
			c.owner[o.Rev-h.R0-1] = i
			continue
		}
		c.pos[i] = 2*o.Rev + 1
		if o.Txn && o.Cmp.eval(c.state(o.Cmp.Key, o.Rev)) != o.Succeeded {
			c.violationAt(o.Then.Key, o.Rev, "%s: its compare is %v at revision %d (%s)", o, !o.Succeeded, o.Rev, c.state(o.Cmp.Key, o.Rev))
			continue
		}
		switch br.Kind {
		case ReqGet:
			if at := c.state(br.Key, o.Rev); !sameKV(o.Found, o.Res, at) {
				c.violationAt(o.Then.Key, o.Rev, "%s: read %s, but at revision %d the key is %s", o, fmtFound(o.Found, o.Res), o.Rev, at)
			}
		case ReqDel:
			if at := c.state(br.Key, o.Rev); at.Ver != 0 || o.Deleted != 0 || o.Found {
				c.violationAt(o.Then.Key, o.Rev, "%s: deleted nothing, but at revision %d the key is %s", o, o.Rev, at)
			}
		}
	}
}

// 3. real time: positions never go back between an op's response and a later op's invocation.
func (c *checker) realTime() {
	ops := c.h.Ops
	byInv := make([]int, 0, len(ops))
	byRet := make([]int, 0, len(ops))
	for i, o := range ops {
		byInv = append(byInv, i)
		if !o.Unknown && c.pos[i] >= 0 {
			byRet = append(byRet, i)
		}
	}
	sort.Slice(byInv, func(a, b int) bool { return ops[byInv[a]].Inv < ops[byInv[b]].Inv })
	sort.Slice(byRet, func(a, b int) bool { return ops[byRet[a]].Ret < ops[byRet[b]].Ret })
	c.lb = make([]int64, len(ops))
	var m int64 = 2 * c.h.R0
	mOp := -1
	j := 0
	for _, i := range byInv {
		o := ops[i]
		for j < len(byRet) && ops[byRet[j]].Ret < o.Inv {
			if p := c.pos[byRet[j]]; p > m {
				m, mOp = p, byRet[j]
			}
			j++
		}
		c.lb[i] = m
		if !o.Unknown && c.pos[i] >= 0 && c.pos[i] < m {
			c.violationAt(o.Then.Key, o.Rev, "real time: %s\n    returned before\n    %s\n    was invoked, but comes after it in "+
				"revision order (%s vs %s)", ops[mOp], o, fmtPos(m), fmtPos(c.pos[i]))
		}
	}
}

func fmtPos(p int64) string {
	if p%2 == 0 {
		return fmt.Sprintf("write of revision %d", p/2)
	}
	return fmt.Sprintf("read at revision %d", p/2)
}

// 4. the revisions no returned op claimed, matched to distinct unknown ops.
func (c *checker) matchUnknown() {
	h := c.h
	byValue := map[string][]int{} // unknown ops that may put this value
	byDelKey := map[string][]int{}
	for i, o := range h.Ops {
		if !o.Unknown {
			continue
		}
		reqs := []Req{o.Then}
		if o.Txn {
			reqs = append(reqs, o.Else)
		}
		for _, r := range reqs {
			switch r.Kind {
			case ReqPut:
				byValue[r.Value] = appendOnce(byValue[r.Value], i)
			case ReqDel:
				byDelKey[r.Key] = appendOnce(byDelKey[r.Key], i)
			}
		}
	}
	// the returned ops by put value, to explain a phantom
	retByValue := map[string]int{}
	for i, o := range h.Ops {
		if !o.Unknown {
			for _, r := range []Req{o.Then, o.Else} {
				if r.Kind == ReqPut {
					retByValue[r.Value] = i
				}
			}
		}
	}
	// candidates: unknown op u can have made revision r
	can := func(u int, r int64) bool {
		o := h.Ops[u]
		if 2*r < c.lb[u] {
			return false
		}
		br := o.Then
		if o.Txn && !o.Cmp.eval(c.state(o.Cmp.Key, r-1)) {
			br = o.Else
		}
		if br.Kind == ReqNone || br.Kind == ReqGet {
			return false
		}
		want, ok := change(br, c.state(br.Key, r-1), r)
		ev := c.events(r)
		return ok && len(ev) == 1 && ev[0] == want
	}
	var free []int64
	adj := map[int64][]int{}
	for k, w := range c.owner {
		if w >= 0 {
			continue
		}
		r := h.R0 + 1 + int64(k)
		free = append(free, r)
		ev := c.events(r)
		if len(ev) != 1 {
			continue
		}
		var pool []int
		if ev[0].Delete {
			pool = byDelKey[ev[0].KV.Key]
		} else {
			pool = byValue[ev[0].KV.Value]
		}
		for _, u := range pool {
			if can(u, r) {
				adj[r] = append(adj[r], u)
			}
		}
	}
	// Kuhn's augmenting paths: exact maximum matching.
	matchOf := map[int]int64{} // unknown op -> revision
	var try func(r int64, seen map[int]bool) bool
	try = func(r int64, seen map[int]bool) bool {
		for _, u := range adj[r] {
			if seen[u] {
				continue
			}
			seen[u] = true
			if r2, taken := matchOf[u]; !taken || try(r2, seen) {
				matchOf[u] = r
				return true
			}
		}
		return false
	}
	for _, r := range free {
		if len(adj[r]) == 0 || !try(r, map[int]bool{}) {
			c.phantom(r, byValue, byDelKey, retByValue)
		}
	}
	for u, r := range matchOf {
		c.owner[r-h.R0-1] = u
		c.res.UnknownApplied++
	}
}

func appendOnce(s []int, i int) []int {
	if len(s) > 0 && s[len(s)-1] == i {
		return s
	}
	return append(s, i)
}

func (c *checker) phantom(r int64, byValue, byDelKey map[string][]int, retByValue map[string]int) {
	ev := c.events(r)
	why := "no operation made this change"
	if len(ev) == 1 && !ev[0].Delete {
		if i, ok := retByValue[ev[0].KV.Value]; ok {
			why = fmt.Sprintf("its value is the write of %s (applied twice, or at the wrong revision)", c.h.Ops[i])
		} else if us := byValue[ev[0].KV.Value]; len(us) > 0 {
			u := us[0]
			why = fmt.Sprintf("its value is the unknown %s, which cannot take revision %d (earliest position "+
				"after its invocation: %s; or its compare/branch does not give this change; or it made "+
				"another revision)", c.h.Ops[u], r, fmtPos(c.lb[u]))
		}
	} else if len(ev) == 1 {
		n := len(byDelKey[ev[0].KV.Key])
		why = fmt.Sprintf("%d unknown ops could delete %s, none can take revision %d (real time, compare, or "+
			"each is needed elsewhere)", n, ev[0].KV.Key, r)
	} else if len(ev) > 1 {
		why = "no op of this workload changes two keys in one revision"
	}
	key := ""
	if len(ev) > 0 {
		key = ev[0].KV.Key
	}
	c.violationAt(key, r, "revision %d %v: %s", r, ev, why)
}

// Excerpt returns the log events around revision r and the ops on key that returned a revision near
// it, with the unknown ops on key invoked meanwhile, for a report.
func Excerpt(h *History, key string, r int64, span int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  log, revisions %d..%d:\n", r-span, r+span)
	for _, e := range h.Log {
		if e.KV.Mod >= r-span && e.KV.Mod <= r+span {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	touches := func(o *Op) bool {
		return key == "" || o.Then.Key == key || (o.Txn && (o.Cmp.Key == key || o.Else.Key == key))
	}
	var near []*Op
	var from, to int64 = 1 << 62, 0
	for _, o := range h.Ops {
		if !o.Unknown && touches(o) && o.Rev >= r-span && o.Rev <= r+span {
			near = append(near, o)
			if o.Inv < from {
				from = o.Inv
			}
			if o.Ret > to {
				to = o.Ret
			}
		}
	}
	for _, o := range h.Ops {
		if o.Unknown && touches(o) && o.Inv >= from-int64(time.Second) && o.Inv <= to {
			near = append(near, o)
		}
	}
	sort.Slice(near, func(a, b int) bool { return near[a].Inv < near[b].Inv })
	fmt.Fprintf(&b, "  ops on %s that returned a revision in %d..%d, and unknown ops invoked meanwhile:\n",
		key, r-span, r+span)
	for _, o := range near {
		fmt.Fprintf(&b, "    %s\n", o)
	}
	return b.String()
}
