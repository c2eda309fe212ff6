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
	tentaclev1.AdminService_ListTargets_FullMethodName:      RoleViewer,
	tentaclev1.AdminService_CreateRelease_FullMethodName:    RoleDeployer,
	tentaclev1.AdminService_CreateDeployment_FullMethodName: RoleDeployer,
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
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
}

// authorize decides who may make a call: Enroll is open (the join token is
// checked inside it), other agent calls need a known target's current client
// certificate, admin calls a bearer token with a sufficient role.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	switch {
	case method == tentaclev1.AgentService_Enroll_FullMethodName:
		return ctx, nil
	case strings.HasPrefix(method, "/tentacle.v1.AgentService/"):
		t, err := s.authenticateAgent(ctx)
		if err != nil {
			s.log.Warn("agent refused", zap.String("method", method), zap.String("peer", peerAddr(ctx)), zap.Error(err))
			return nil, err
		}
		return context.WithValue(ctx, targetKey{}, t), nil
	case strings.HasPrefix(method, "/tentacle.v1.AdminService/"):
		p, err := s.authenticateAdmin(ctx)
		if err != nil {
			return nil, err
		}
		need, ok := methodRoles[method]
		if !ok {
			need = RoleAdmin
		}
		if roleRank[p.Role] < roleRank[need] {
			name := method[strings.LastIndex(method, "/")+1:]
			return nil, status.Errorf(codes.PermissionDenied, "role %s may not call %s: it needs role %s", p.Role, name, need)
		}
		return context.WithValue(ctx, principalKey{}, p), nil
	}
	return nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
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
	if !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt) {
		return principal{}, status.Errorf(codes.Unauthenticated, "admin token %s expired at %s", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	return principal{TokenID: t.ID, Name: t.Name, Role: t.Role}, nil
}

// authenticateAgent accepts a client certificate that chains to our CA (TLS
// verified that already) and is the current certificate of a known target.
func (s *Server) authenticateAgent(ctx context.Context) (store.Target, error) {
	cert := peerCert(ctx)
	if cert == nil {
		return store.Target{}, status.Error(codes.Unauthenticated, "no client certificate: enroll this agent first (tentacle enroll --server … --token …)")
	}
	t, err := s.store.GetTarget(ctx, cert.Subject.CommonName)
	if errors.Is(err, store.ErrNotFound) {
		return store.Target{}, status.Errorf(codes.Unauthenticated, "client certificate names unknown target %q: enroll again with a new token", cert.Subject.CommonName)
	}
	if err != nil {
		return store.Target{}, status.Errorf(codes.Unavailable, "look up target: %v", err)
	}
	fp := pki.Fingerprint(cert)
	if subtle.ConstantTimeCompare([]byte(fp), []byte(t.CertFingerprint)) != 1 {
		return store.Target{}, status.Errorf(codes.Unauthenticated, "client certificate is not target %s's current certificate", t.Name)
	}
	return t, nil
}

func peerCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
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
