package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// audit appends a record to the audit log. A failure to write it is logged,
// not returned: the change it describes has already happened.
func (s *Server) audit(ctx context.Context, actor, action, object, outcome string) {
	r := store.AuditRecord{At: time.Now().UTC(), Actor: actor, Action: action, Object: object, Peer: peerAddr(ctx), Outcome: outcome}
	// A short context of its own: the record must be written even when the
	// caller's context was cancelled by the failure being recorded.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.AppendAudit(actx, r); err != nil {
		s.log.Error("audit record not stored", zap.String("action", action), zap.String("object", object), zap.Error(err))
	}
}

// outcome renders a call's result for the audit log.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	st, _ := status.FromError(err)
	switch st.Code().String() {
	case "Unauthenticated", "PermissionDenied":
		return "denied: " + st.Message()
	}
	return "failed: " + st.Message()
}

func adminActor(p principal) string {
	if p.Name == "" {
		return "anonymous"
	}
	return "admin-token:" + p.Name
}

// mutating reports whether an admin call changes anything: those are audited.
func mutating(method string) bool {
	name := method[strings.LastIndex(method, "/")+1:]
	return strings.HasPrefix(name, "Create") || strings.HasPrefix(name, "Revoke") || strings.HasPrefix(name, "Set") ||
		strings.HasPrefix(name, "Update") || strings.HasPrefix(name, "Delete") || strings.HasPrefix(name, "Cancel") ||
		name == "Rollback"
}

// auditObject names what an admin request acts on.
func auditObject(req any) string {
	switch r := req.(type) {
	case *tentaclev1.CreateEnvironmentRequest:
		return "environment/" + r.GetName()
	case *tentaclev1.UpdateEnvironmentRequest:
		return "environment/" + r.GetName()
	case *tentaclev1.CancelDeploymentRequest:
		return "deployment/" + r.GetId()
	case *tentaclev1.RollbackRequest:
		return fmt.Sprintf("application/%s→environment/%s", r.GetApplication(), r.GetEnvironment())
	case *tentaclev1.CreateApplicationRequest:
		return "application/" + r.GetName()
	case *tentaclev1.CreateReleaseRequest:
		return fmt.Sprintf("release/%s@%s", r.GetApplication(), firstNonEmpty(r.GetVersion(), r.GetImageTag()))
	case *tentaclev1.CreateDeploymentRequest:
		o := fmt.Sprintf("release/%s@%s→environment/%s", r.GetApplication(), r.GetReleaseVersion(), r.GetEnvironment())
		if r.GetMissingOnly() {
			o += " (missing targets only)"
		}
		if r.GetForce() {
			o += " (--force: lifecycle not checked)"
		}
		switch r.GetUnavailableTargets() {
		case tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_SKIP:
			o += " (unavailable targets skipped)"
		case tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL:
			o += " (unavailable targets failed)"
		}
		return o
	case *tentaclev1.SetVariableRequest:
		v := r.GetVariable()
		return variableObject(v.GetApplication(), v.GetName(), v.GetScope())
	case *tentaclev1.DeleteVariableRequest:
		return variableObject(r.GetApplication(), r.GetName(), r.GetScope())
	case *tentaclev1.CreateJoinTokenRequest:
		return "environment/" + r.GetEnvironment()
	case *tentaclev1.RevokeJoinTokenRequest:
		return "join-token/" + r.GetId()
	case *tentaclev1.RevokeTargetRequest:
		return "target/" + r.GetTarget()
	case *tentaclev1.CreateAdminTokenRequest:
		return "admin-token/" + r.GetName()
	case *tentaclev1.RevokeAdminTokenRequest:
		if pki.ValidAdminTokenFormat(r.GetToken()) == nil || strings.HasPrefix(r.GetToken(), "tntadm_") {
			return "admin-token/<a token secret, not recorded>"
		}
		return "admin-token/" + r.GetToken()
	}
	return ""
}

// auditResult adds what only the response knows (new ids) to the object;
// a failed call has no response and keeps the object as it is.
func auditResult(object string, resp any) string {
	switch r := resp.(type) {
	case *tentaclev1.CreateDeploymentResponse:
		if r.GetDeployment() == nil {
			return object
		}
		return "deployment/" + r.GetDeployment().GetId() + " (" + object + ")"
	case *tentaclev1.RollbackResponse:
		if r.GetDeployment() == nil {
			return object
		}
		return fmt.Sprintf("deployment/%s (%s, rollback from %s to %s)", r.GetDeployment().GetId(), object,
			r.GetFromVersion(), r.GetDeployment().GetReleaseVersion())
	case *tentaclev1.CreateJoinTokenResponse:
		return "join-token/" + r.GetTokenId() + " (" + object + ")"
	}
	return object
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
