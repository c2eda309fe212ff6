package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

const (
	// tailOpenTimeout is how long an agent has to open StreamTail after
	// StartTail went out on its session.
	tailOpenTimeout = 10 * time.Second
	// tailBuffer is how many messages (each at most tailChunkMax) a TailLogs
	// call holds between its agents and a slow admin, whatever the number
	// of targets.
	tailBuffer = 16
)

// TailLogs streams the live log of an application's container from every
// matching target. A target without a session, or whose agent does not
// answer, gets an error message and the others go on; the call ends when
// every target's tail has ended or the admin cancels it.
func (a *admin) TailLogs(req *tentaclev1.TailLogsRequest, stream tentaclev1.AdminService_TailLogsServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	// Returning ends every agent stream of the call (they watch ctx).
	defer cancel()
	targets, err := a.tailTargets(ctx, req)
	if err != nil {
		return err
	}
	start := &tentaclev1.StartTail{Application: req.GetApplication(), TailLines: req.GetTailLines(), Follow: req.GetFollow()}
	if d := req.GetSince().AsDuration(); d > 0 {
		start.Since = timestamppb.New(time.Now().Add(-d))
	}
	a.s.log.Info("live tail", zap.String("app", req.GetApplication()), zap.String("environment", req.GetEnvironment()),
		zap.Int("targets", len(targets)), zap.Bool("follow", req.GetFollow()), zap.String("by", principalFrom(ctx).Name))

	out := make(chan *tentaclev1.TailLogsResponse, tailBuffer)
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() { a.s.runTail(ctx, t, start, out) })
	}
	// out is never closed: a forwarder may still be between its last check
	// and its send. allEnded is closed once no one will send on out again.
	allEnded := make(chan struct{})
	go func() { wg.Wait(); close(allEnded) }()
	for {
		select {
		case m := <-out:
			if err := stream.Send(m); err != nil {
				return err
			}
		case <-allEnded:
			for {
				select {
				case m := <-out:
					if err := stream.Send(m); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-a.s.stopping:
			return errShuttingDown
		}
	}
}

// tailTargets validates the request and returns the targets to tail.
func (a *admin) tailTargets(ctx context.Context, req *tentaclev1.TailLogsRequest) ([]store.Target, error) {
	var errs []error
	if req.GetApplication() == "" {
		errs = append(errs, errors.New("application: required"))
	}
	if req.GetEnvironment() == "" {
		errs = append(errs, errors.New("environment: required"))
	}
	if req.Since != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			errs = append(errs, fmt.Errorf("since: %w", err))
		} else if d := req.GetSince().AsDuration(); d < 0 {
			errs = append(errs, fmt.Errorf("since: %s is negative: give how far back to start, e.g. 10m", d))
		}
	}
	if n := req.GetTailLines(); n < 0 {
		errs = append(errs, fmt.Errorf("tail_lines: %d is negative: use 0 for every line or N for the last N lines", n))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, invalid(err)
	}
	// Both looked up, so that a user who mistyped both hears of both.
	app, appErr := a.s.store.GetApplication(ctx, req.GetApplication())
	env, envErr := a.s.store.GetEnvironment(ctx, req.GetEnvironment())
	if err := errors.Join(appErr, envErr); err != nil {
		return nil, storeErr("get application and environment", err)
	}
	targets, err := a.s.deployTargets(ctx, env, app)
	if err != nil {
		return nil, err
	}
	if name := req.GetTarget(); name != "" {
		i := slices.IndexFunc(targets, func(t store.Target) bool { return t.Name == name })
		if i < 0 {
			return nil, status.Errorf(codes.NotFound, "target: %q is not a target of environment %s with the roles of %s: see `tentaclectl targets`", name, env.Name, app.Name)
		}
		targets = targets[i : i+1]
	}
	return targets, nil
}

// runTail asks t's agent for its share of the tail and returns once
// nothing more of it will be sent on out.
func (s *Server) runTail(ctx context.Context, t store.Target, start *tentaclev1.StartTail, out chan<- *tentaclev1.TailLogsResponse) {
	fail := func(msg string) {
		select {
		case out <- &tentaclev1.TailLogsResponse{Target: t.Name, Error: msg}:
		case <-ctx.Done():
		}
	}
	sess := s.sessions.get(t.ID)
	if sess == nil {
		fail("no session: the agent is not connected (see `tentaclectl targets`)")
		return
	}
	tl := &tail{id: newID(), targetID: t.ID, targetName: t.Name, application: start.GetApplication(),
		out: out, done: ctx.Done(), claimed: make(chan struct{}), finished: make(chan struct{})}
	s.tails.add(tl)
	m := &tentaclev1.StartTail{TailId: tl.id, Application: start.GetApplication(), Since: start.GetSince(), TailLines: start.GetTailLines(), Follow: start.GetFollow()}
	sess.send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_StartTail{StartTail: m}})
	timer := time.NewTimer(tailOpenTimeout)
	defer timer.Stop()
	select {
	case <-tl.claimed:
	case <-timer.C:
		if s.tails.drop(tl) {
			fail(fmt.Sprintf("the agent did not open the tail within %s (is it older than the server?)", tailOpenTimeout))
			return
		}
	case <-ctx.Done():
		if s.tails.drop(tl) {
			return
		}
	}
	// Claimed: the agent's stream sends on out until its handler returns.
	<-tl.finished
}
