package chaos

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/evac-sh/evac/controlplane/state"
)

// The steering state checked for linearizability is, per region, whether it
// is "out" (phase evacuating or evacuated) or "in" (active or restoring):
// exactly what decides an evacuation's or a restore's outcome. Apply checks
// a region's phase before anything else, so
//
//	evacuate: 2xx  <=> in, and makes it out
//	          409 conflict <=> out; any other 409 (a safety rule) => in, no change
//	restore:  2xx  <=> out, and makes it in;  409 conflict <=> in
//
// Changes nobody asked for through the API (automatic evacuations, drill
// shifts and restores, drills ending) are read from the final audit log and
// enter the history as operations too: each is invoked at its event's time
// (stamped by the proposer before Raft commits it) and returns no later than
// the first acknowledged write with a higher Raft index returned (a later
// index commits after it), or never (pending).
//
// Reads are not in the model: GET /v1/regions and DNS answer from the
// controller's own replica by design (a partitioned controller keeps
// serving its last state), so they are not linearizable; invariant (d)
// checks what reads must show.

type linKind int

const (
	linEvacuate linKind = iota // a client's evacuation
	linRestore                 // a client's restore
	linAutoEvac                // an evacuation from the log (automatic, or a drill's)
	linSet                     // a change from the log that sets in or out
)

type linInput struct {
	Region string
	Kind   linKind
	Out    bool // for linSet
	Desc   string
}

type linOutput int

const (
	outOK linOutput = iota
	outConflict
	outRule
	outUnknown
)

var linModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			r := op.Input.(linInput).Region
			if _, ok := by[r]; !ok {
				keys = append(keys, r)
			}
			by[r] = append(by[r], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{false} },
	Step: func(st, in, out interface{}) []interface{} {
		isOut := st.(bool)
		i := in.(linInput)
		o := out.(linOutput)
		switch i.Kind {
		case linEvacuate, linAutoEvac:
			switch {
			case o == outOK && !isOut:
				return []interface{}{true}
			case o == outConflict && isOut, o == outRule && !isOut:
				return []interface{}{isOut}
			case o == outUnknown && !isOut:
				return []interface{}{false, true}
			case o == outUnknown:
				return []interface{}{true}
			}
		case linRestore:
			switch {
			case o == outOK && isOut:
				return []interface{}{false}
			case o == outConflict && !isOut:
				return []interface{}{false}
			case o == outUnknown && isOut:
				return []interface{}{true, false}
			case o == outUnknown:
				return []interface{}{false}
			}
		case linSet:
			return []interface{}{i.Out}
		}
		return nil
	},
	DescribeOperation: func(in, out interface{}) string {
		i := in.(linInput)
		return fmt.Sprintf("%s -> %s", i.Desc, []string{"ok", "conflict", "rule", "unknown"}[out.(linOutput)])
	},
	DescribeState: func(st interface{}) string {
		if st.(bool) {
			return "out"
		}
		return "in"
	},
}

// linOps builds the porcupine history from the client operations and the
// final audit log.
func linOps(h *History, log []state.Event) []porcupine.Operation {
	// Returns of acknowledged writes by index bound when earlier entries
	// were applied.
	type ack struct {
		index uint64
		ret   int64
	}
	var acks []ack
	for _, o := range h.Ops {
		for _, a := range o.Attempts {
			if a.OK() && a.Index > 0 {
				acks = append(acks, ack{a.Index, a.Return.UnixNano()})
			}
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].index < acks[j].index })
	// minRet[i] is the earliest return among acks[i:].
	minRet := make([]int64, len(acks)+1)
	minRet[len(acks)] = math.MaxInt64
	for i := len(acks) - 1; i >= 0; i-- {
		minRet[i] = min(minRet[i+1], acks[i].ret)
	}
	appliedBy := func(index uint64) int64 {
		i := sort.Search(len(acks), func(i int) bool { return acks[i].index > index })
		return minRet[i]
	}

	tagged := map[string]state.Event{} // kind + tag -> event
	for _, e := range log {
		if e.Kind == state.EventEvacuate || e.Kind == state.EventRestore {
			tagged[e.Kind+" "+e.Reason] = e
		}
	}
	var ops []porcupine.Operation
	clientTags := map[string]bool{}
	for _, o := range h.Ops {
		var kind linKind
		var ev string
		switch o.Kind {
		case OpEvacuate:
			kind, ev = linEvacuate, state.EventEvacuate
		case OpRestore:
			kind, ev = linRestore, state.EventRestore
		default:
			continue
		}
		clientTags[ev+" "+o.Tag] = true
		in := linInput{Region: o.Region, Kind: kind, Desc: fmt.Sprintf("%s %s (%s)", o.Kind, o.Region, o.Tag)}
		// Each definite attempt is an operation; the ambiguous ones before
		// the first 2xx together are one operation that may or may not
		// have been applied.
		var amb *porcupine.Operation
		for _, a := range o.Attempts {
			switch {
			case a.OK() && a.Duplicate:
				// Applied by an earlier ambiguous attempt, or by this one:
				// the server retries a write itself (a deposed leader
				// forwards it to the new one), and a retry after its first
				// try committed finds the id applied. Either way it was
				// applied once between the first ambiguous call (or this
				// call) and this answer.
				if amb == nil {
					amb = &porcupine.Operation{ClientId: o.Client, Input: in, Call: a.Call.UnixNano()}
				}
				amb.Output, amb.Return = outOK, a.Return.UnixNano()
				ops = append(ops, *amb)
				amb = nil
			case a.OK():
				ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: in, Call: a.Call.UnixNano(), Output: outOK, Return: a.Return.UnixNano()})
				amb = nil // ids make the retries one application: this one
			case a.Ambiguous():
				if amb == nil {
					amb = &porcupine.Operation{ClientId: o.Client, Input: in, Call: a.Call.UnixNano(), Output: outUnknown, Return: math.MaxInt64}
				}
			case a.Status == 409 && a.Code == state.CodeConflict:
				ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: in, Call: a.Call.UnixNano(), Output: outConflict, Return: a.Return.UnixNano()})
			case a.Status == 409 && a.Code == state.CodeRule && kind == linEvacuate:
				ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: in, Call: a.Call.UnixNano(), Output: outRule, Return: a.Return.UnixNano()})
			}
		}
		if amb != nil {
			if amb.Output == outUnknown {
				// Pending, per porcupine's convention, unless the log shows
				// it applied: then it was applied before any later index
				// was acknowledged.
				if e, ok := tagged[ev+" "+o.Tag]; ok {
					amb.Return = appliedBy(e.Index)
				}
			}
			ops = append(ops, *amb)
		}
	}
	for _, e := range log {
		if e.Region == "" || clientTags[e.Kind+" "+e.Reason] {
			continue
		}
		in := linInput{Region: e.Region, Desc: fmt.Sprintf("log #%d %s %s (%s)", e.Seq, e.Kind, e.Region, e.Reason)}
		switch {
		case e.Kind == state.EventEvacuate:
			in.Kind = linAutoEvac
		case e.Kind == state.EventRestore:
			in.Kind, in.Out = linSet, false
		case e.Kind == state.EventWeight && e.Weight != nil:
			in.Kind, in.Out = linSet, *e.Weight == 0
		default:
			continue
		}
		// The bound cannot precede the proposal (one clock for every
		// process); max only keeps porcupine's Call <= Return.
		call := e.Time.UnixNano()
		ops = append(ops, porcupine.Operation{ClientId: len(h.Ops) + 1000, Input: in, Call: call, Output: outOK, Return: max(call, appliedBy(e.Index))})
	}
	return ops
}

// checkLinearizable runs porcupine over the steering history, region by
// region. It returns the result, the number of operations, and for each
// region found illegal its longest linearizable prefix's tail.
func checkLinearizable(h *History, log []state.Event, timeout time.Duration) (porcupine.CheckResult, int, string) {
	ops := linOps(h, log)
	model := linModel.ToModel()
	result := porcupine.Ok
	var b strings.Builder
	for _, part := range model.Partition(ops) {
		res, info := porcupine.CheckOperationsVerbose(model, part, timeout)
		switch res {
		case porcupine.Unknown:
			if result == porcupine.Ok {
				result = porcupine.Unknown
			}
			continue
		case porcupine.Ok:
			continue
		}
		result = porcupine.Illegal
		region := part[0].Input.(linInput).Region
		var longest []porcupine.Operation
		for _, p := range info.PartialLinearizationsOperations() {
			for _, lin := range p {
				if len(lin) > len(longest) {
					longest = lin
				}
			}
		}
		fmt.Fprintf(&b, "  %s: %d operations, longest linearizable prefix %d; its last 12:\n", region, len(part), len(longest))
		for _, op := range longest[max(0, len(longest)-12):] {
			fmt.Fprintf(&b, "    [%s .. %s] %s\n", clock(time.Unix(0, op.Call)), retClock(op.Return), model.DescribeOperation(op.Input, op.Output))
		}
		var last int64
		if len(longest) > 0 {
			last = longest[len(longest)-1].Call
		}
		b.WriteString("    operations not linearized that were invoked near its end:\n")
		shown := 0
		for _, op := range part {
			if op.Call >= last-int64(5*time.Second) && !containsOp(longest, op) && shown < 12 {
				fmt.Fprintf(&b, "    [%s .. %s] %s\n", clock(time.Unix(0, op.Call)), retClock(op.Return), model.DescribeOperation(op.Input, op.Output))
				shown++
			}
		}
	}
	return result, len(ops), b.String()
}

func containsOp(ops []porcupine.Operation, op porcupine.Operation) bool {
	for _, o := range ops {
		if o.Call == op.Call && o.Return == op.Return && o.Input == op.Input && o.Output == op.Output {
			return true
		}
	}
	return false
}

func retClock(ns int64) string {
	if ns == math.MaxInt64 {
		return "pending"
	}
	return clock(time.Unix(0, ns))
}
