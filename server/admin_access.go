package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// Access management: join tokens, targets, admin tokens and the audit log.
// Every change here is audited by the interceptor (authUnary).

func joinTokenToProto(t store.JoinToken) *tentaclev1.JoinTokenInfo {
	return &tentaclev1.JoinTokenInfo{
		Id: t.ID, Environment: t.Environment, Roles: t.Roles, ExpiresAt: ts(t.ExpiresAt),
		UsesAllowed: int32(t.UsesAllowed), UsesCount: int32(t.UsesCount), CreatedBy: t.CreatedBy,
		CreatedAt: ts(t.CreatedAt), RevokedAt: ts(t.RevokedAt),
	}
}

func (a *admin) ListJoinTokens(ctx context.Context, _ *tentaclev1.ListJoinTokensRequest) (*tentaclev1.ListJoinTokensResponse, error) {
	toks, err := a.s.store.ListJoinTokens(ctx)
	if err != nil {
		return nil, storeErr("list join tokens", err)
	}
	out := &tentaclev1.ListJoinTokensResponse{}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, joinTokenToProto(t))
	}
	return out, nil
}

func (a *admin) RevokeJoinToken(ctx context.Context, req *tentaclev1.RevokeJoinTokenRequest) (*tentaclev1.RevokeJoinTokenResponse, error) {
	if req.GetId() == "" {
		return nil, invalid(errors.New("id: required (see tentaclectl token list)"))
	}
	t, err := a.s.store.RevokeJoinToken(ctx, req.GetId(), time.Now().UTC())
	if err != nil {
		return nil, storeErr("revoke join token", err)
	}
	return &tentaclev1.RevokeJoinTokenResponse{Token: joinTokenToProto(t)}, nil
}

// RevokeTarget refuses the target's certificate from now on and closes its
// live session at once.
func (a *admin) RevokeTarget(ctx context.Context, req *tentaclev1.RevokeTargetRequest) (*tentaclev1.RevokeTargetResponse, error) {
	if req.GetTarget() == "" {
		return nil, invalid(errors.New("target: required (a target name or id)"))
	}
	t, err := a.findTarget(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	if t, err = a.s.store.RevokeTarget(ctx, t.ID, time.Now().UTC()); err != nil {
		return nil, storeErr("revoke target", err)
	}
	if sess := a.s.sessions.get(t.ID); sess != nil {
		sess.close(status.Errorf(codes.PermissionDenied, "target %s was revoked at %s: it can only return by enrolling with a new token", t.Name, t.RevokedAt.Format(time.RFC3339)))
	}
	// A revoked target never reports again: its health is not kept.
	a.s.health.forget(t.ID)
	a.s.log.Warn("target revoked", zap.String("target", t.Name), zap.String("target_id", t.ID), zap.String("by", principalFrom(ctx).Name))
	a.s.changes.Changed()
	return &tentaclev1.RevokeTargetResponse{Target: a.targetToProto(t)}, nil
}

func (a *admin) targetToProto(t store.Target) *tentaclev1.Target {
	return &tentaclev1.Target{
		Id: t.ID, Name: t.Name, Environment: t.Environment, Roles: t.Roles, Hostname: t.Hostname,
		Os: t.OS, Arch: t.Arch, AgentVersion: t.AgentVersion, DockerVersion: t.DockerVersion,
		Connected: a.s.sessions.connected(t.ID), LastSeenAt: ts(t.LastSeenAt), EnrolledAt: ts(t.EnrolledAt),
		RevokedAt: ts(t.RevokedAt), Alert: t.Alert, AlertAt: ts(t.AlertAt),
		CertExpiresAt: ts(t.CertNotAfter), CertCaHash: t.CertCAHash,
	}
}

func adminTokenToProto(t store.AdminToken) *tentaclev1.AdminTokenInfo {
	return &tentaclev1.AdminTokenInfo{
		Id: t.ID, Name: t.Name, Role: t.Role, CreatedAt: ts(t.CreatedAt), ExpiresAt: ts(t.ExpiresAt),
		RevokedAt: ts(t.RevokedAt), CreatedBy: t.CreatedBy,
	}
}

func (a *admin) CreateAdminToken(ctx context.Context, req *tentaclev1.CreateAdminTokenRequest) (*tentaclev1.CreateAdminTokenResponse, error) {
	if err := spec.ValidateName("name", req.GetName()); err != nil {
		return nil, invalid(err)
	}
	if _, ok := roleRank[req.GetRole()]; !ok {
		return nil, invalid(fmt.Errorf("role: %q: use viewer, deployer or admin", req.GetRole()))
	}
	var ttl time.Duration
	if req.GetTtl() != nil {
		if ttl = req.GetTtl().AsDuration(); ttl <= 0 {
			return nil, invalid(fmt.Errorf("ttl: %s: must be positive (omit it for no expiry)", ttl))
		}
	}
	tok, info, err := a.s.createAdminToken(ctx, req.GetName(), req.GetRole(), ttl, principalFrom(ctx).Name)
	if err != nil {
		return nil, storeErr("create admin token", err)
	}
	return &tentaclev1.CreateAdminTokenResponse{Token: tok, Info: adminTokenToProto(info)}, nil
}

func (a *admin) ListAdminTokens(ctx context.Context, _ *tentaclev1.ListAdminTokensRequest) (*tentaclev1.ListAdminTokensResponse, error) {
	toks, err := a.s.store.ListAdminTokens(ctx)
	if err != nil {
		return nil, storeErr("list admin tokens", err)
	}
	out := &tentaclev1.ListAdminTokensResponse{}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, adminTokenToProto(t))
	}
	return out, nil
}

func (a *admin) RevokeAdminToken(ctx context.Context, req *tentaclev1.RevokeAdminTokenRequest) (*tentaclev1.RevokeAdminTokenResponse, error) {
	if req.GetToken() == "" {
		return nil, invalid(errors.New("token: required (an admin token id or name)"))
	}
	if strings.HasPrefix(req.GetToken(), "tntadm_") {
		return nil, invalid(errors.New("token: give the token's id or name (tentaclectl admin-token list), not the token itself"))
	}
	t, err := a.s.store.RevokeAdminToken(ctx, req.GetToken(), time.Now().UTC())
	if err != nil {
		return nil, storeErr("revoke admin token", err)
	}
	return &tentaclev1.RevokeAdminTokenResponse{Info: adminTokenToProto(t)}, nil
}

func (a *admin) ListAuditRecords(ctx context.Context, req *tentaclev1.ListAuditRecordsRequest) (*tentaclev1.ListAuditRecordsResponse, error) {
	limit := int(req.GetLimit())
	if limit < 0 {
		return nil, invalid(errors.New("limit: must not be negative"))
	}
	if limit == 0 {
		limit = 1000
	}
	var since time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	recs, err := a.s.store.ListAudit(ctx, since, limit)
	if err != nil {
		return nil, storeErr("list audit records", err)
	}
	out := &tentaclev1.ListAuditRecordsResponse{}
	for _, r := range recs {
		out.Records = append(out.Records, &tentaclev1.AuditRecord{
			Id: r.ID, At: ts(r.At), Actor: r.Actor, Action: r.Action, Object: r.Object, Peer: r.Peer, Outcome: r.Outcome,
		})
	}
	return out, nil
}
