package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/tentacle-deploy/tentacle/internal/mask"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// maxCachedMaskers bounds the per-task cache; past it the cache starts
// over (a masker is cheap to rebuild, a leak is not cheap to undo).
const maxCachedMaskers = 4096

// taskMaskers caches, per task, the masker of its sensitive values: logs
// arrive in many small chunks and each must be masked before it is stored.
// A release's variables never change, so an entry never goes stale.
type taskMaskers struct {
	mu     sync.Mutex
	byTask map[string]*mask.Masker
}

// taskMasker returns the masker for the task's secrets: the values of its
// sensitive env entries as resolved for its target, and every sensitive
// value of its release under any scope. It fails rather than let a log
// through unmasked.
func (s *Server) taskMasker(ctx context.Context, task store.Task) (*mask.Masker, error) {
	s.maskers.mu.Lock()
	m, ok := s.maskers.byTask[task.ID]
	s.maskers.mu.Unlock()
	if ok {
		return m, nil
	}
	d, err := s.store.GetDeployment(ctx, task.DeploymentID)
	if err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w", task.ID, err)
	}
	r, err := s.store.GetReleaseByID(ctx, d.ReleaseID)
	if err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w", task.ID, err)
	}
	t, err := s.store.GetTarget(ctx, task.TargetID)
	if err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w", task.ID, err)
	}
	opened, err := s.openVariables(r.Variables)
	if err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w", task.ID, err)
	}
	var secrets []string
	for _, v := range opened {
		if v.Sensitive {
			secrets = append(secrets, v.Value)
		}
	}
	rs, sensitive, err := s.resolveTaskSpec(ctx, r, t)
	if err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w", task.ID, err)
	}
	m = mask.New(append(secrets, sensitiveValues(rs.Env, sensitive)...))
	s.maskers.mu.Lock()
	if s.maskers.byTask == nil || len(s.maskers.byTask) >= maxCachedMaskers {
		s.maskers.byTask = map[string]*mask.Masker{}
	}
	s.maskers.byTask[task.ID] = m
	s.maskers.mu.Unlock()
	return m, nil
}

// maskLogChunk returns data with every byte of a secret replaced by '*',
// length kept (offsets are the agent's). A secret that began in the bytes
// already stored before offset is found by reading that tail back.
func (s *Server) maskLogChunk(ctx context.Context, m *mask.Masker, taskID string, offset uint64, data []byte) ([]byte, error) {
	if m.Empty() || len(data) == 0 {
		return data, nil
	}
	var prefix []byte
	if n := min(offset, uint64(m.MaxLen()-1)); n > 0 {
		stored, err := s.store.ReadTaskLog(ctx, taskID, offset-n, int(n))
		if err != nil {
			return nil, fmt.Errorf("read log tail: %w", err)
		}
		// Fewer bytes: the chunk starts past the stored end and will be
		// refused as a gap, so there is no tail to join.
		if uint64(len(stored)) == n {
			prefix = stored
		}
	}
	out := append([]byte(nil), data...)
	m.InPlace(prefix, out)
	return out, nil
}
