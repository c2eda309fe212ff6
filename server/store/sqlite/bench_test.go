package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var farFuture = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// benchTasks returns a store with n queued tasks.
func benchTasks(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	s, _ := openTemp(b)
	ctx := context.Background()
	check := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	check(s.CreateEnvironment(ctx, store.Environment{Name: "prod"}))
	check(s.CreateApplication(ctx, store.Application{Name: "web", ImageRepository: "team/web"}))
	check(s.CreateRelease(ctx, store.Release{ID: "rel", Application: "web", Version: "1", ImageTag: "1"}))
	check(s.CreateJoinToken(ctx, store.JoinToken{ID: "tok", SecretHash: []byte("h"), Environment: "prod",
		ExpiresAt: farFuture, UsesAllowed: n}))
	var tasks []store.Task
	for i := range n {
		id := fmt.Sprintf("t%d", i)
		_, err := s.EnrollTarget(ctx, "tok", []byte("h"), farFuture.AddDate(-1, 0, 0), store.Target{ID: id, Name: id})
		check(err)
		tasks = append(tasks, store.Task{ID: "task-" + id, TargetID: id})
	}
	check(s.CreateDeployment(ctx, store.Deployment{ID: "dep", ReleaseID: "rel", Environment: "prod"}, tasks))
	var ids []string
	for _, t := range tasks {
		ids = append(ids, t.ID)
	}
	return s, ids
}

func BenchmarkAppendTaskLog(b *testing.B) {
	for _, size := range []int{512, 4096, 65536} {
		b.Run(fmt.Sprintf("chunk=%d", size), func(b *testing.B) {
			s, tasks := benchTasks(b, 1)
			chunk := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			var off uint64
			for b.Loop() {
				var err error
				if off, err = s.AppendTaskLog(ctx, tasks[0], off, chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("read 64KiB of a large log", func(b *testing.B) {
		s, tasks := benchTasks(b, 1)
		ctx := context.Background()
		chunk := make([]byte, 4096)
		var end uint64
		for range 2048 { // 8 MiB
			var err error
			if end, err = s.AppendTaskLog(ctx, tasks[0], end, chunk); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(65536)
		var off uint64
		for b.Loop() {
			if _, err := s.ReadTaskLog(ctx, tasks[0], off, 65536); err != nil {
				b.Fatal(err)
			}
			off = (off + 65536 + 1000) % end
		}
	})
}

func BenchmarkAppendTaskEvent(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s, tasks := benchTasks(b, 1)
		ctx := context.Background()
		seq := uint64(0)
		for b.Loop() {
			seq++
			if _, err := s.AppendTaskEvent(ctx, store.TaskEvent{TaskID: tasks[0], Sequence: seq,
				State: store.TaskPulling, Message: "pulling layer"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel tasks", func(b *testing.B) {
		s, tasks := benchTasks(b, 64)
		ctx := context.Background()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			task := tasks[int(next.Add(1))%len(tasks)] // one task per goroutine: sequences never collide
			seq := uint64(0)
			for pb.Next() {
				seq++
				if _, err := s.AppendTaskEvent(ctx, store.TaskEvent{TaskID: task, Sequence: seq,
					State: store.TaskPulling, Message: "pulling layer"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
