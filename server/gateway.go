package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/mask"
	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// gateway is the agent-facing gRPC service.
type gateway struct {
	tentaclev1.UnimplementedAgentServiceServer
	s *Server
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Enroll turns a join token and a CSR into a target and its client
// certificate. The token is consumed in the same transaction that creates
// the target, so a one-use token enrolls exactly one agent.
func (g *gateway) Enroll(ctx context.Context, req *tentaclev1.EnrollRequest) (*tentaclev1.EnrollResponse, error) {
	tok, err := pki.ParseJoinToken(req.GetToken())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "token: %v", err)
	}
	if tok.CAHash != g.s.ca.Hash() {
		return nil, status.Error(codes.PermissionDenied, "token: it was issued by another server (CA hash differs)")
	}
	id := newID()
	certPEM, cert, err := g.s.cas.Signer().SignCSR(req.GetCsrPem(), id, g.s.cfg.ClientCertValidity)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr_pem: %v", err)
	}
	name := req.GetHostname()
	if name == "" {
		name = "target"
	}
	now := time.Now().UTC()
	t, err := g.s.store.EnrollTarget(ctx, tok.ID, pki.HashSecret(tok.Secret), now, store.Target{
		ID: id, Name: targetName(name), Hostname: req.GetHostname(), OS: req.GetOs(), Arch: req.GetArch(),
		CertFingerprint: pki.Fingerprint(cert), CertCAHash: g.s.cas.Signer().Hash(), CertNotAfter: cert.NotAfter, EnrolledAt: now,
	})
	if errors.Is(err, store.ErrTokenInvalid) {
		g.s.log.Warn("enrollment refused", zap.String("token_id", tok.ID), zap.String("peer", peerAddr(ctx)), zap.Error(err))
		// The sentinel's own text adds nothing after the store's sentence.
		err = status.Errorf(codes.PermissionDenied, "token: %s", strings.TrimSuffix(err.Error(), ": "+store.ErrTokenInvalid.Error()))
		g.s.audit(ctx, "agent-enrollment", "Enroll", "join-token/"+tok.ID, outcome(err))
		return nil, err
	}
	if err != nil {
		return nil, storeErr("enroll", err)
	}
	g.s.audit(ctx, "agent-enrollment", "Enroll", fmt.Sprintf("target/%s (join-token/%s, environment/%s)", t.Name, tok.ID, t.Environment), "ok")
	g.s.log.Info("target enrolled", zap.String("target", t.Name), zap.String("target_id", t.ID),
		zap.String("environment", t.Environment), zap.String("peer", peerAddr(ctx)))
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	g.s.autoDeploy(actx, t)
	cancel()
	return &tentaclev1.EnrollResponse{
		TargetId: t.ID, TargetName: t.Name, Environment: t.Environment, Roles: t.Roles,
		CertificatePem: certPEM, CaPem: g.s.cas.Bundle(),
	}, nil
}

// targetName turns a hostname into a target name within the name alphabet.
func targetName(host string) string {
	b := []byte{}
	for _, c := range []byte(host) {
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
			b = append(b, c)
		default:
			b = append(b, '-')
		}
	}
	for len(b) > 0 && (b[0] == '-' || b[0] == '.' || b[0] == '_') {
		b = b[1:]
	}
	if len(b) > 55 {
		b = b[:55]
	}
	if len(b) == 0 {
		return "target"
	}
	return string(b)
}

// Connect is an agent's session. One goroutine receives (this one), the
// session's writer goroutine sends; tasks go out as they are queued.
func (g *gateway) Connect(stream tentaclev1.AgentService_ConnectServer) error {
	ctx := stream.Context()
	t := targetFrom(ctx)
	log := g.s.log.With(zap.String("target", t.Name), zap.String("target_id", t.ID))
	select {
	case <-g.s.stopping:
		return refuseSession(stream, g.s.handshakes.retryAfter(time.Now()), codes.Unavailable, "server shutting down")
	default:
	}
	if !g.s.handshakes.enter() {
		after := g.s.handshakes.retryAfter(time.Now())
		log.Debug("session refused: too many handshakes", zap.Duration("retry_after", after))
		return refuseSession(stream, after, codes.ResourceExhausted,
			fmt.Sprintf("server busy: %d agents are connecting at once (tentacle-server serve --max-handshakes)", g.s.cfg.MaxHandshakes))
	}
	entered := time.Now()
	leave := sync.OnceFunc(func() { g.s.handshakes.leave(time.Since(entered)) })
	defer leave()

	first, err := recvWithin(stream, 15*time.Second)
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "first message of a session must be Hello")
	}
	if err := g.s.store.MarkTargetSeen(ctx, t.ID, store.TargetSeen{
		Hostname: hello.GetHostname(), OS: hello.GetOs(), Arch: hello.GetArch(),
		AgentVersion: hello.GetAgentVersion(), DockerVersion: hello.GetDockerVersion(), At: time.Now().UTC(),
	}); err != nil {
		return storeErr("mark target seen", err)
	}
	sess := newSession(g.s, t, stream, log)
	sess.instance, sess.peer, sess.lastStored = hello.GetInstanceId(), peerAddr(ctx), time.Now().UTC()
	for _, h := range hello.GetHeldTasks() {
		sess.held[h.GetTaskId()] = true
	}
	sess.lastRecv.Store(time.Now().UnixNano())
	if err := g.s.refuseClone(ctx, t, sess); err != nil {
		return err
	}
	if old := g.s.sessions.put(sess); old != nil {
		// The same agent reconnecting, or an old session whose agent fell
		// silent: the newer session wins.
		old.close(errors.New("replaced by a newer session of the same target"))
	}
	defer g.s.sessions.remove(sess)
	log.Info("agent connected", zap.String("session", sess.id), zap.String("agent_version", hello.GetAgentVersion()),
		zap.String("docker_version", hello.GetDockerVersion()), zap.String("peer", peerAddr(ctx)))
	g.s.changes.Changed()
	defer g.s.changes.Changed()

	apps, err := g.s.welcomeApplications(ctx, t.ID)
	if err != nil {
		return storeErr("target applications", err)
	}
	// Welcome goes out before the writer starts, so it is always first.
	if err := stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Welcome{Welcome: &tentaclev1.Welcome{
		SessionId: sess.id, TargetId: t.ID, TargetName: t.Name,
		HeartbeatInterval: durationpb.New(g.s.cfg.HeartbeatInterval),
		RenewCertificate:  g.s.cas.Next != nil && !pki.IssuedBy(peerCert(ctx), g.s.cas.Next.Cert),
		Applications:      apps,
	}}}); err != nil {
		return err
	}
	// The session ends when both loops have, so nothing of it outlives the
	// call; the wait is bounded because a send to an agent that stopped
	// reading only fails once the call returns and the stream is cancelled.
	written := make(chan struct{})
	go func() { sess.writeLoop(); close(written) }()
	sess.kick()
	if err := sess.cancelHeld(ctx, hello.GetHeldTasks()); err != nil {
		log.Error("cancel held tasks", zap.Error(err))
	}
	leave()
	// A shutdown that began after the check above missed this session
	// when it told every session to reconnect.
	select {
	case <-g.s.stopping:
		sess.reconnect(shutdownReconnect)
	default:
	}

	err = sess.readLoop(ctx, g.s.cfg.AgentTimeout)
	sess.close(err)
	// Last seen is stored at most once a minute while the session lives;
	// its end is when the target was last heard from, which the health
	// reason of an unavailable target quotes.
	tctx, cancelTouch := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if terr := g.s.store.TouchTarget(tctx, t.ID, time.Unix(0, sess.lastRecv.Load()).UTC()); terr != nil {
		log.Warn("record when the target was last seen", zap.Error(terr))
	}
	cancelTouch()
	select {
	case <-written:
	case <-time.After(5 * time.Second):
		log.Warn("session writer still sending after the session ended", zap.String("session", sess.id))
	}
	log.Info("agent disconnected", zap.String("session", sess.id), zap.Error(err))
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func recvWithin(stream tentaclev1.AgentService_ConnectServer, d time.Duration) (*tentaclev1.ConnectRequest, error) {
	type result struct {
		m   *tentaclev1.ConnectRequest
		err error
	}
	ch := make(chan result, 1)
	go func() { m, err := stream.Recv(); ch <- result{m, err} }()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(d):
		return nil, status.Errorf(codes.DeadlineExceeded, "no Hello within %s", d)
	}
}

// PushLogs stores task log chunks and answers with the stored length. A
// chunk past the stored end is not an error: the answer tells the agent
// where to resume.
// pushLogsBatch is about the most PushLogs stores in one transaction (one
// chunk row): it stops adding chunks once this is reached. Not more: a
// follower reads the log back 64 KiB at a time (admin.ReadTaskLog), and
// each read loads the whole row.
const pushLogsBatch = 256 << 10

func (g *gateway) PushLogs(stream tentaclev1.AgentService_PushLogsServer) error {
	ctx := stream.Context()
	t := targetFrom(ctx)
	// The tasks this stream may write to, with their secrets' maskers.
	owned := map[string]*mask.Masker{}
	// Buffered, so that chunks which arrived while one was being stored
	// are stored together (see below). The stream's end comes through it
	// too, after the chunks before it.
	type received struct {
		req *tentaclev1.PushLogsRequest
		err error
	}
	reqs := make(chan received, 32)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case reqs <- received{req, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var next *received // taken from reqs, not handled yet
	for {
		var in received
		if next != nil {
			in, next = *next, nil
		} else {
			select {
			case in = <-reqs:
			case <-ctx.Done():
				return ctx.Err()
			case <-g.s.stopping:
				return errShuttingDown
			}
		}
		if in.err != nil {
			if errors.Is(in.err, io.EOF) {
				return nil
			}
			return in.err
		}
		req := in.req
		id := req.GetTaskId()
		m, ok := owned[id]
		if !ok {
			task, err := g.s.store.GetTask(ctx, id)
			if errors.Is(err, store.ErrNotFound) || (err == nil && task.TargetID != t.ID) {
				return status.Errorf(codes.PermissionDenied, "task %s is not assigned to target %s", id, t.Name)
			}
			if err != nil {
				return storeErr("get task", err)
			}
			if m, err = g.s.taskMasker(ctx, task); err != nil {
				return status.Errorf(codes.Internal, "logs of task %s not stored: %v", id, err)
			}
			owned[id] = m
		}
		// The chunks of this task that follow on and are already here are
		// stored in the same transaction, with one acknowledgement: a fast
		// log costs a transaction per batch, not per chunk. Nothing waits
		// for more to arrive.
		offset, data := req.GetOffset(), req.GetData()
		copied := false
	batch:
		for len(data) < pushLogsBatch {
			select {
			case r := <-reqs:
				if r.err != nil || r.req.GetTaskId() != id || r.req.GetOffset() != offset+uint64(len(data)) {
					next = &r
					break batch
				}
				if !copied {
					data, copied = append(make([]byte, 0, pushLogsBatch+len(r.req.GetData())), data...), true
				}
				data = append(data, r.req.GetData()...)
			default:
				break batch
			}
		}
		// Secrets are masked before the log is stored, whatever the agent
		// sent.
		data, err := g.s.maskLogChunk(ctx, m, id, offset, data)
		if err != nil {
			return status.Errorf(codes.Internal, "logs of task %s not stored: %v", id, err)
		}
		end, err := g.s.store.AppendTaskLog(ctx, id, offset, data)
		if errors.Is(err, store.ErrLogGap) {
			end, err = g.s.store.TaskLogSize(ctx, id)
		} else if err == nil {
			g.s.metrics.logStored(data)
			g.s.changes.Changed()
		}
		if err != nil {
			return storeErr("append task log", err)
		}
		if err := stream.Send(&tentaclev1.PushLogsResponse{TaskId: id, StoredOffset: end}); err != nil {
			return err
		}
	}
}

// RenewCertificate signs a new certificate for the calling target, which
// authenticated with its current (or, after a crash mid-renewal, previous)
// certificate. The certificate renewed from stays valid until the new one
// is first used.
func (g *gateway) RenewCertificate(ctx context.Context, req *tentaclev1.RenewCertificateRequest) (*tentaclev1.RenewCertificateResponse, error) {
	t := targetFrom(ctx)
	certPEM, cert, err := g.s.cas.Signer().SignCSR(req.GetCsrPem(), t.ID, g.s.cfg.ClientCertValidity)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr_pem: %v", err)
	}
	if _, err := g.s.store.RotateTargetCertificate(ctx, t.ID, pki.Fingerprint(peerCert(ctx)), pki.Fingerprint(cert), g.s.cas.Signer().Hash(), cert.NotAfter); err != nil {
		return nil, storeErr("rotate certificate", err)
	}
	g.s.audit(ctx, "target:"+t.Name, "RenewCertificate", "target/"+t.Name, "ok")
	g.s.log.Info("certificate renewed", zap.String("target", t.Name), zap.Time("not_after", cert.NotAfter))
	return &tentaclev1.RenewCertificateResponse{CertificatePem: certPEM, CaPem: g.s.cas.Bundle()}, nil
}

// errShuttingDown ends long-lived streams when the server stops; clients
// reconnect (to this server after its restart, or to another replica).
var errShuttingDown = status.Error(codes.Unavailable, "server shutting down")

// refuseClone refuses a session whose certificate is already connected from
// another live agent process: the same identity in two places is a cloned
// host (or a stolen key). The event is raised on the target and audited.
// A reconnect of the same process (same instance id), or a second process
// once the first has fallen silent, is let through.
func (s *Server) refuseClone(ctx context.Context, t store.Target, sess *session) error {
	old := s.sessions.get(t.ID)
	if old == nil || old.instance == sess.instance || !old.alive(2*s.cfg.HeartbeatInterval) {
		return nil
	}
	now := time.Now().UTC()
	alert := fmt.Sprintf("certificate presented from %s while connected from %s: cloned host or stolen key", sess.peer, old.peer)
	if err := s.store.RaiseTargetAlert(ctx, t.ID, alert, now); err != nil {
		s.log.Error("raise target alert", zap.Error(err))
	}
	err := status.Errorf(codes.PermissionDenied, "certificate of target %s is already connected from %s: if this host is a clone, enroll it with its own token", t.Name, old.peer)
	s.audit(ctx, "target:"+t.Name, "target.cloned_certificate", "target/"+t.Name, outcome(err))
	s.log.Warn("cloned certificate refused", zap.String("target", t.Name), zap.String("peer", sess.peer), zap.String("connected_from", old.peer))
	return err
}
