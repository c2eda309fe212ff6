package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var concurrencyTests = []namedTest{
	{"ConcurrentEnrollOneUse", testConcurrentEnrollOneUse},
	{"ConcurrentEnrollNames", testConcurrentEnrollNames},
	{"ConcurrentTaskEvents", testConcurrentTaskEvents},
	{"ConcurrentTaskLog", testConcurrentTaskLog},
	{"ConcurrentDeploymentFinish", testConcurrentDeploymentFinish},
	{"ConcurrentAppendAudit", testConcurrentAppendAudit},
}

// testConcurrentEnrollOneUse races 20 agents for a one-use token.
func testConcurrentEnrollOneUse(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok", "prod", 1)))
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.EnrollTarget(f.ctx, "tok", hash("secret-tok"), at(time.Minute),
				store.Target{ID: fmt.Sprintf("t%02d", i), Name: "web"})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrTokenInvalid) && strings.Contains(err.Error(), "used up"):
		default:
			t.Errorf("enroll: %v, want success or a used-up token", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d enrollments succeeded with a one-use token, want 1", ok)
	}
	ts, err := s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "targets", len(ts), 1)
	toks, err := s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "token uses", toks[0].UsesCount, 1)
}

// testConcurrentEnrollNames enrolls 10 agents of one name at once: each gets
// its own name.
func testConcurrentEnrollNames(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok", "prod", 10)))
	var wg sync.WaitGroup
	names := make([]string, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			tg, err := s.EnrollTarget(f.ctx, "tok", hash("secret-tok"), at(time.Minute),
				store.Target{ID: fmt.Sprintf("t%02d", i), Name: "web"})
			names[i], errs[i] = tg.Name, err
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	want := map[string]bool{"web": true}
	for i := 2; i <= 10; i++ {
		want[fmt.Sprintf("web-%d", i)] = true
	}
	wantEqual(t, "names", seen, want)
}

// testConcurrentTaskEvents delivers one task's events from several
// goroutines, each in its own order, as a flaky link with resends would.
func testConcurrentTaskEvents(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	id := taskID("dep-1", f.targets[0])
	const senders, events = 6, 30
	var fresh atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, senders)
	for g := range senders {
		wg.Go(func() {
			order := rand.New(rand.NewPCG(uint64(g), 42)).Perm(events)
			for _, i := range order {
				seq := uint64(i + 1)
				state := store.TaskPulling
				if seq == events {
					state = store.TaskSucceeded
				}
				isNew, err := s.AppendTaskEvent(f.ctx, store.TaskEvent{TaskID: id, Sequence: seq, State: state,
					Message: fmt.Sprintf("event %d", seq), LogBytes: 99, OccurredAt: t0})
				if err != nil {
					errs[g] = err
					return
				}
				if isNew {
					fresh.Add(1)
				}
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	wantEqual(t, "events reported new", fresh.Load(), int64(events))
	es, err := s.ListDeploymentEvents(f.ctx, "dep-1", 0)
	must(t, err)
	seqs := map[uint64]bool{}
	for _, e := range es {
		seqs[e.Sequence] = true
	}
	if len(es) != events || len(seqs) != events {
		t.Errorf("stored %d events with %d sequences, want %d of each", len(es), len(seqs), events)
	}
	tk := f.task(t, id)
	wantEqual(t, "task", [4]any{tk.State, tk.Message, tk.LastEventSeq, tk.FinalLogBytes},
		[4]any{store.TaskSucceeded, fmt.Sprintf("event %d", events), uint64(events), int64(99)})
	wantEqual(t, "deployment", f.deployment(t, "dep-1").State, store.DeploymentSucceeded)
}

// testConcurrentTaskLog has several goroutines push the same log, each
// resuming from the stored length after a gap, as reconnecting agents do.
func testConcurrentTaskLog(t *testing.T, s store.Store) {
	f, id := logTask(t, s)
	want := bytes.Repeat([]byte("line of log output\n"), 5000)
	const senders = 6
	var wg sync.WaitGroup
	errs := make([]error, senders)
	for g := range senders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			off := uint64(0)
			for off < uint64(len(want)) {
				end := min(off+uint64(1+rng.IntN(4000)), uint64(len(want)))
				size, err := s.AppendTaskLog(f.ctx, id, off, want[off:end])
				if errors.Is(err, store.ErrLogGap) {
					// Cannot happen: every sender starts at or before the end.
					errs[g] = fmt.Errorf("gap at %d: %w", off, err)
					return
				}
				if err != nil {
					errs[g] = err
					return
				}
				if size < end {
					errs[g] = fmt.Errorf("stored length %d after appending up to %d", size, end)
					return
				}
				// Sometimes skip to the store's end, as after an ack of
				// bytes another connection sent.
				off = end
				if rng.IntN(3) == 0 {
					off = size
				}
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	got, err := s.ReadTaskLog(f.ctx, id, 0, 2*len(want))
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("log is %d bytes and differs from the %d bytes sent", len(got), len(want))
	}
	size, err := s.TaskLogSize(f.ctx, id)
	must(t, err)
	wantEqual(t, "size", size, uint64(len(want)))
}

// testConcurrentDeploymentFinish finishes every task of a deployment at
// once: the deployment must finish exactly as its tasks say.
func testConcurrentDeploymentFinish(t *testing.T, s store.Store) {
	f := newFixture(t, s, 10)
	for _, c := range []struct {
		dep     string
		failing int // index of the failing task, -1 for none
		want    store.DeploymentState
	}{
		{"dep-ok", -1, store.DeploymentSucceeded},
		{"dep-bad", 7, store.DeploymentFailed},
	} {
		f.deploy(t, c.dep, t0, f.targets...)
		var wg sync.WaitGroup
		errs := make([]error, len(f.targets))
		for i, tg := range f.targets {
			wg.Go(func() {
				state := store.TaskSucceeded
				if i == c.failing {
					state = store.TaskFailed
				}
				_, errs[i] = s.AppendTaskEvent(f.ctx, store.TaskEvent{TaskID: taskID(c.dep, tg), Sequence: 1, State: state})
			})
		}
		wg.Wait()
		must(t, errors.Join(errs...))
		d := f.deployment(t, c.dep)
		if d.State != c.want || d.FinishedAt.IsZero() {
			t.Errorf("%s: %s, finished at %v; want %s", c.dep, d.State, d.FinishedAt, c.want)
		}
	}
}

// testConcurrentAppendAudit appends 20 records at once, all of one instant:
// each is stored, with its own ID, listed in increasing ID order.
func testConcurrentAppendAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.AppendAudit(ctx, store.AuditRecord{At: t0, Actor: fmt.Sprintf("target:host-%02d", i),
				Action: "Connect", Object: fmt.Sprintf("target/host-%02d", i), Peer: "192.0.2.1:1", Outcome: "ok"})
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	rs, err := s.ListAudit(ctx, time.Time{}, 0)
	must(t, err)
	if len(rs) != n {
		t.Fatalf("%d records stored, want %d", len(rs), n)
	}
	actors := map[string]bool{}
	for i, r := range rs {
		actors[r.Actor] = true
		if i > 0 && r.ID <= rs[i-1].ID {
			t.Errorf("record %d has ID %d after %d: want distinct, increasing IDs", i, r.ID, rs[i-1].ID)
		}
		if r.Object != "target/"+strings.TrimPrefix(r.Actor, "target:") || !r.At.Equal(t0) {
			t.Errorf("record %+v mixes up its fields", r)
		}
	}
	wantEqual(t, "distinct actors", len(actors), n)
	newest, err := s.ListAudit(ctx, time.Time{}, 5)
	must(t, err)
	wantEqual(t, "newest 5", newest, rs[n-5:])
}
