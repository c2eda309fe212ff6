package server

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file receives what agents say about their hosts (health reports,
// and the clock skew of their heartbeats), keeps the latest of each per
// target, and turns it with judgeHealth into the health the admin API
// shows. Drift is remembered per target and application with the time it
// was first seen.

// healthBook is the server's memory of its targets' health. It is
// rebuilt from the sessions after a restart: each agent sends a report at
// the start of every session; the store keeps the latest report for
// targets that are offline.
type healthBook struct {
	mu      sync.Mutex
	targets map[string]*targetHealthState // target id →
}

type targetHealthState struct {
	// session is the session the report and skew came from: a report of
	// an earlier session says nothing about the current one.
	session    string
	report     *tentaclev1.HealthReport
	reportedAt time.Time
	skew       time.Duration
	skewKnown  bool
	// stored is the last report written to the store, without its
	// sequence and time, and when: a report that changes nothing is
	// written at most once per lastSeenPrecision.
	stored   []byte
	storedAt time.Time
	// driftSince is when each application's drift (by kind) was first seen.
	driftSince map[string]driftSeen
}

type driftSeen struct {
	kind  string
	since time.Time
}

func newHealthBook() *healthBook { return &healthBook{targets: map[string]*targetHealthState{}} }

// of returns the target's entry for session, reset when the session is new.
// The caller holds mu.
func (b *healthBook) of(targetID, session string) *targetHealthState {
	h := b.targets[targetID]
	if h == nil {
		h = &targetHealthState{driftSince: map[string]driftSeen{}}
		b.targets[targetID] = h
	}
	if h.session != session {
		h.session, h.report, h.reportedAt, h.skew, h.skewKnown = session, nil, time.Time{}, 0, false
	}
	return h
}

// forget drops what the book holds of a target.
func (b *healthBook) forget(targetID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.targets, targetID)
}

// live returns the report and skew of the target's current session.
func (b *healthBook) live(targetID, session string) (r *tentaclev1.HealthReport, at time.Time, skew time.Duration, skewKnown bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.targets[targetID]
	if h == nil || h.session != session {
		return nil, time.Time{}, 0, false
	}
	return h.report, h.reportedAt, h.skew, h.skewKnown
}

// setSkew records the skew of a heartbeat and reports whether it moved by
// a second or more (worth telling watchers).
func (b *healthBook) setSkew(targetID, session string, skew time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.of(targetID, session)
	moved := !h.skewKnown || (skew-h.skew) >= time.Second || (h.skew-skew) >= time.Second
	h.skew, h.skewKnown = skew, true
	return moved
}

// setReport records a report and returns what to store, if anything: the
// report unless it equals the last one stored within lastSeenPrecision.
func (b *healthBook) setReport(targetID, session string, r *tentaclev1.HealthReport, at time.Time) (toStore []byte, err error) {
	norm := proto.Clone(r).(*tentaclev1.HealthReport)
	norm.Sequence, norm.ObservedAt = 0, nil
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(norm)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.of(targetID, session)
	h.report, h.reportedAt = r, at
	if bytes.Equal(key, h.stored) && at.Sub(h.storedAt) < lastSeenPrecision {
		return nil, nil
	}
	h.stored, h.storedAt = key, at
	return proto.MarshalOptions{Deterministic: true}.Marshal(r)
}

// noteDrift remembers when each drift was first seen (at, for one not seen
// before), forgets drift that is gone, and fills each drift's Since. It
// returns the drift that is new.
func (b *healthBook) noteDrift(targetID string, drift []*tentaclev1.Drift, at time.Time) []*tentaclev1.Drift {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.targets[targetID]
	if h == nil {
		h = &targetHealthState{driftSince: map[string]driftSeen{}}
		b.targets[targetID] = h
	}
	var fresh []*tentaclev1.Drift
	seen := make(map[string]bool, len(drift))
	for _, d := range drift {
		seen[d.GetApplication()] = true
		prev, ok := h.driftSince[d.GetApplication()]
		if !ok || prev.kind != d.GetKind() {
			prev = driftSeen{kind: d.GetKind(), since: at}
			h.driftSince[d.GetApplication()] = prev
			fresh = append(fresh, d)
		}
		d.Since = timestamppb.New(prev.since)
	}
	for app := range h.driftSince {
		if !seen[app] {
			delete(h.driftSince, app)
		}
	}
	return fresh
}

// receiveHealthReport keeps an agent's report, stores it when it changed,
// logs drift newly found, and wakes the watchers.
func (s *Server) receiveHealthReport(ctx context.Context, sess *session, r *tentaclev1.HealthReport) error {
	if !s.current(sess) {
		return nil
	}
	// The store keeps microseconds: the time shown is the same before and
	// after the session ends.
	now := time.Now().UTC().Truncate(time.Microsecond)
	data, err := s.health.setReport(sess.target.ID, sess.id, r, now)
	if err != nil {
		return fmt.Errorf("health report: %w", err)
	}
	if data != nil {
		if err := s.store.SetTargetHealth(ctx, sess.target.ID, data, now); err != nil {
			return fmt.Errorf("store health report: %w", err)
		}
	}
	apps, err := s.store.TargetApplications(ctx, sess.target.ID)
	if err != nil {
		return fmt.Errorf("health report: %w", err)
	}
	v := s.judge(sess.target, true, sess.id, apps)
	for _, d := range s.health.noteDrift(sess.target.ID, v.Drift, now) {
		sess.log.Warn("drift", zap.String("app", d.GetApplication()), zap.String("kind", d.GetKind()), zap.String("detail", d.GetDetail()))
	}
	s.changes.Changed()
	return nil
}

// receiveHeartbeat records the agent's clock skew: its send time minus the
// server's receive time (the link's latency makes it a little early).
func (s *Server) receiveHeartbeat(sess *session, hb *tentaclev1.Heartbeat, received time.Time) {
	if hb.GetSentAt() == nil || !s.current(sess) {
		return
	}
	if s.health.setSkew(sess.target.ID, sess.id, hb.GetSentAt().AsTime().Sub(received)) {
		s.changes.Changed()
	}
}

// current reports whether sess is its target's live session: a session
// being replaced may still deliver a message, which must not overwrite
// what its successor reported.
func (s *Server) current(sess *session) bool { return s.sessions.get(sess.target.ID) == sess }

// judge judges target t from its current session (sessionID, when
// connected) and apps (its store.TargetApplications).
func (s *Server) judge(t store.Target, connected bool, sessionID string, apps []store.TargetApplication) healthVerdict {
	in := healthInput{Connected: connected, LastSeen: t.LastSeenAt, Applications: apps, Thresholds: s.cfg.Health}
	if connected {
		in.Report, _, in.Skew, in.SkewKnown = s.health.live(t.ID, sessionID)
	}
	return judgeHealth(in)
}

// targetHealth is a target's judged health, with the drift's first-seen
// times filled in. Only a connected target's drift is judged: what runs on
// an offline one now is unknown.
func (s *Server) targetHealth(t store.Target, apps []store.TargetApplication) healthVerdict {
	sess := s.sessions.get(t.ID)
	id := ""
	if sess != nil {
		id = sess.id
	}
	v := s.judge(t, sess != nil, id, apps)
	if len(v.Drift) > 0 {
		s.health.noteDrift(t.ID, v.Drift, time.Now().UTC())
	}
	return v
}

// targetHealthDetail is TargetHealth for GetTarget: the current session's
// report, or the latest one stored (an offline target's last word).
func (s *Server) targetHealthDetail(t store.Target, v healthVerdict) *tentaclev1.TargetHealth {
	out := &tentaclev1.TargetHealth{Drift: v.Drift}
	var r *tentaclev1.HealthReport
	var at time.Time
	if sess := s.sessions.get(t.ID); sess != nil {
		var skew time.Duration
		var known bool
		r, at, skew, known = s.health.live(t.ID, sess.id)
		if known {
			out.ClockSkew = durationpb.New(skew)
		}
	}
	if r == nil && len(t.Health) > 0 {
		stored := &tentaclev1.HealthReport{}
		if err := proto.Unmarshal(t.Health, stored); err == nil {
			r, at = stored, t.HealthAt
		} else {
			s.log.Warn("stored health report unreadable", zap.String("target", t.Name), zap.Error(err))
		}
	}
	if r != nil {
		out.ReportedAt, out.AgentStartedAt = ts(at), r.GetAgentStartedAt()
		out.Engine, out.Containers = r.GetEngine(), r.GetContainers()
	}
	return out
}

// applicationsByTarget reads store.TargetApplications of every target (or
// of one) grouped by target id.
func (s *Server) applicationsByTarget(ctx context.Context, targetID string) (map[string][]store.TargetApplication, error) {
	apps, err := s.store.TargetApplications(ctx, targetID)
	if err != nil {
		return nil, storeErr("target applications", err)
	}
	out := map[string][]store.TargetApplication{}
	for _, a := range apps {
		out[a.TargetID] = append(out[a.TargetID], a)
	}
	return out, nil
}

// welcomeApplications lists the applications with a succeeded task on the
// target: the agent watches their containers for drift.
func (s *Server) welcomeApplications(ctx context.Context, targetID string) ([]string, error) {
	apps, err := s.store.TargetApplications(ctx, targetID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range apps {
		if a.TaskID != "" {
			out = append(out, a.Application)
		}
	}
	return out, nil
}

// TargetStates counts the targets that are not revoked by health state,
// for metrics (targets by state). Every state is present, zero or not.
func (s *Server) TargetStates(ctx context.Context) (map[tentaclev1.TargetHealthState]int, error) {
	targets, err := s.store.ListTargets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	apps, err := s.applicationsByTarget(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[tentaclev1.TargetHealthState]int{
		tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_HEALTHY:     0,
		tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_DEGRADED:    0,
		tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNHEALTHY:   0,
		tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE: 0,
	}
	for _, t := range targets {
		if t.RevokedAt.IsZero() {
			out[s.targetHealth(t, apps[t.ID]).State]++
		}
	}
	return out, nil
}
