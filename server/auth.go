package server

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// Admin roles, weakest first.
const (
	RoleViewer   = "viewer"
	RoleDeployer = "deployer"
	RoleAdmin    = "admin"
)

var roleRank = map[string]int{RoleViewer: 1, RoleDeployer: 2, RoleAdmin: 3}

// methodRoles is the least role each admin call needs; a call missing here
// needs admin, so a new method is closed until someone opens it.
var methodRoles = map[string]string{
	tentaclev1.AdminService_ListEnvironments_FullMethodName: RoleViewer,
	tentaclev1.AdminService_ListApplications_FullMethodName: RoleViewer,
	tentaclev1.AdminService_ListReleases_FullMethodName:     RoleViewer,
	tentaclev1.AdminService_ListDeployments_FullMethodName:  RoleViewer,
	tentaclev1.AdminService_GetDeployment_FullMethodName:    RoleViewer,
	tentaclev1.AdminService_WatchDeployment_FullMethodName:  RoleViewer,
	tentaclev1.AdminService_ListTasks_FullMethodName:        RoleViewer,
	tentaclev1.AdminService_ReadTaskLog_FullMethodName:      RoleViewer,
	tentaclev1.AdminService_TailLogs_FullMethodName:         RoleViewer,
	tentaclev1.AdminService_ListTargets_FullMethodName:      RoleViewer,
	tentaclev1.AdminService_GetStatus_FullMethodName:        RoleViewer,
	tentaclev1.AdminService_GetTarget_FullMethodName:        RoleViewer,
	tentaclev1.AdminService_CreateRelease_FullMethodName:    RoleDeployer,
	tentaclev1.AdminService_CreateDeployment_FullMethodName: RoleDeployer,
	tentaclev1.AdminService_ListVariables_FullMethodName:    RoleViewer,
	tentaclev1.AdminService_SetVariable_FullMethodName:      RoleDeployer,
	tentaclev1.AdminService_DeleteVariable_FullMethodName:   RoleDeployer,
	tentaclev1.AdminService_CancelDeployment_FullMethodName: RoleDeployer,
	tentaclev1.AdminService_Rollback_FullMethodName:         RoleDeployer,
	// Everything else, including tokens, targets and the audit log, needs admin.
}

type principalKey struct{}
type targetKey struct{}

// principal is the admin token holder making a call.
type principal struct {
	TokenID string
	Name    string
	Role    string
}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

func targetFrom(ctx context.Context) store.Target {
	t, _ := ctx.Value(targetKey{}).(store.Target)
	return t
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	actx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		s.auditDenied(actx, info.FullMethod, auditObject(req), err)
		return nil, err
	}
	if !strings.HasPrefix(info.FullMethod, "/tentacle.v1.AdminService/") || !mutating(info.FullMethod) {
		return handler(actx, req)
	}
	resp, err := handler(actx, req)
	s.audit(actx, adminActor(principalFrom(actx)), methodName(info.FullMethod), auditResult(auditObject(req), resp), outcome(err))
	return resp, err
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		s.auditDenied(ctx, info.FullMethod, "", err)
		return err
	}
	return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
}

// auditDenied records a refused call; who it was is whatever the
// credentials said, even if they did not hold.
func (s *Server) auditDenied(ctx context.Context, method, object string, err error) {
	actor := "anonymous"
	if cert := peerCert(ctx); cert != nil {
		actor = "certificate:" + cert.Subject.CommonName
	}
	if p, ok := ctx.Value(principalKey{}).(principal); ok {
		actor = adminActor(p)
	}
	s.audit(ctx, actor, methodName(method), object, outcome(err))
}

func methodName(method string) string { return method[strings.LastIndex(method, "/")+1:] }

// authorize decides who may make a call: Enroll is open (the join token is
// checked inside it), other agent calls need a known target's current client
// certificate, admin calls a bearer token with a sufficient role. The
// returned context names whoever the credentials identified, even when the
// call is refused, so the audit log can say who was turned away.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	switch {
	case method == tentaclev1.AgentService_Enroll_FullMethodName:
		return ctx, nil
	case strings.HasPrefix(method, "/tentacle.v1.AgentService/"):
		t, err := s.authenticateAgent(ctx)
		if err != nil {
			s.log.Warn("agent refused", zap.String("method", method), zap.String("peer", peerAddr(ctx)), zap.Error(err))
			return ctx, err
		}
		return context.WithValue(ctx, targetKey{}, t), nil
	case strings.HasPrefix(method, "/tentacle.v1.AdminService/"):
		p, err := s.authenticateAdmin(ctx)
		if p.Name != "" {
			ctx = context.WithValue(ctx, principalKey{}, p)
		}
		if err != nil {
			return ctx, err
		}
		need, ok := methodRoles[method]
		if !ok {
			need = RoleAdmin
		}
		if roleRank[p.Role] < roleRank[need] {
			return ctx, status.Errorf(codes.PermissionDenied, "role %s may not call %s: it needs role %s", p.Role, methodName(method), need)
		}
		return ctx, nil
	}
	return ctx, status.Errorf(codes.Unimplemented, "unknown method %s", method)
}

func (s *Server) authenticateAdmin(ctx context.Context) (principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return principal{}, status.Error(codes.Unauthenticated, "missing admin token: pass --token or set TENTACLE_TOKEN")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return principal{}, status.Error(codes.Unauthenticated, `malformed authorization header: want "Bearer <token>"`)
	}
	if err := pki.ValidAdminTokenFormat(tok); err != nil {
		return principal{}, status.Errorf(codes.Unauthenticated, "invalid admin token: %v", err)
	}
	t, err := s.store.GetAdminTokenByHash(ctx, pki.HashAdminToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, status.Error(codes.Unauthenticated, "invalid admin token: unknown or revoked")
	}
	if err != nil {
		return principal{}, status.Errorf(codes.Unavailable, "check admin token: %v", err)
	}
	p := principal{TokenID: t.ID, Name: t.Name, Role: t.Role}
	if !t.RevokedAt.IsZero() {
		return p, status.Errorf(codes.Unauthenticated, "admin token %s was revoked at %s", t.Name, t.RevokedAt.Format(time.RFC3339))
	}
	if !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt) {
		return p, status.Errorf(codes.Unauthenticated, "admin token %s expired at %s", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	return p, nil
}

// authenticateAgent accepts a client certificate that chains to our CA, is
// within its validity, and is the current certificate of a known target that
// is not revoked. TLS only requests the certificate: verifying it here lets
// every refusal carry a precise code and message.
func (s *Server) authenticateAgent(ctx context.Context) (store.Target, error) {
	certs := peerCerts(ctx)
	if len(certs) == 0 {
		return store.Target{}, status.Error(codes.Unauthenticated, "no client certificate: enroll this agent first (tentacle enroll --server … --token …)")
	}
	cert := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.caPool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return store.Target{}, status.Errorf(codes.Unauthenticated, "client certificate of target %s expired at %s: enroll again with a new token", cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return store.Target{}, status.Error(codes.Unauthenticated, "client certificate is not signed by this server's CA: enroll this agent with this server")
	}
	t, err := s.store.GetTarget(ctx, cert.Subject.CommonName)
	if errors.Is(err, store.ErrNotFound) {
		return store.Target{}, status.Errorf(codes.Unauthenticated, "client certificate names unknown target %q: enroll again with a new token", cert.Subject.CommonName)
	}
	if err != nil {
		return store.Target{}, status.Errorf(codes.Unavailable, "look up target: %v", err)
	}
	if !t.RevokedAt.IsZero() {
		return store.Target{}, status.Errorf(codes.PermissionDenied, "target %s was revoked at %s: it can only return by enrolling with a new token", t.Name, t.RevokedAt.Format(time.RFC3339))
	}
	fp := []byte(pki.Fingerprint(cert))
	current := subtle.ConstantTimeCompare(fp, []byte(t.CertFingerprint)) == 1
	previous := t.PrevCertFingerprint != "" && subtle.ConstantTimeCompare(fp, []byte(t.PrevCertFingerprint)) == 1
	if !current && !previous {
		return store.Target{}, status.Errorf(codes.Unauthenticated, "client certificate is not target %s's current certificate", t.Name)
	}
	if current && t.PrevCertFingerprint != "" {
		// The renewed certificate is in use: the one before it is done.
		if err := s.store.ConfirmTargetCertificate(ctx, t.ID); err != nil {
			return store.Target{}, status.Errorf(codes.Unavailable, "confirm certificate: %v", err)
		}
		t.PrevCertFingerprint = ""
	}
	return t, nil
}

func peerCerts(ctx context.Context) []*x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return info.State.PeerCertificates
}

func peerCert(ctx context.Context) *x509.Certificate {
	if certs := peerCerts(ctx); len(certs) > 0 {
		return certs[0]
	}
	return nil
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func storeErr(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s", err.Error())
	case errors.Is(err, store.ErrConflict):
		return status.Errorf(codes.AlreadyExists, "%s", err.Error())
	case errors.Is(err, store.ErrTokenInvalid):
		return status.Errorf(codes.PermissionDenied, "%s", err.Error())
	}
	return status.Errorf(codes.Internal, "%s: %v", what, fmt.Errorf("store: %w", err))
}
