package docker

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// probe asks the registry for the manifest of ref, as the engine would,
// with the same credentials, and says what kind of failure its answer
// shows: unauthorized, not found, unreachable, or "" when the registry
// serves the manifest or answers something else (the failure is then the
// engine's own). It runs only after a pull failed, so it costs nothing on
// the normal path.
func (d *Deployer) probe(ctx context.Context, ref string, repo spec.Repository, auth creds.Auth, haveAuth bool) (FailureKind, error) {
	var opts []name.Option
	if d.engineTreatsInsecure(ctx, repo.Registry) {
		// Mirror the engine: it talks plain HTTP to registries it is told
		// are insecure (127.0.0.0/8 by default), so must the probe.
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", err
	}
	var a authn.Authenticator = authn.Anonymous
	if haveAuth {
		a = authn.FromConfig(authn.AuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken})
	}
	pctx, cancel := context.WithTimeout(ctx, d.probeTimeout)
	defer cancel()
	_, err = remote.Head(r,
		remote.WithContext(pctx),
		remote.WithAuth(a),
		// The engine has already retried; one answer is all we need.
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
	)
	return probeKind(err), err
}

// probeKind classifies the registry's answer by status and error code.
func probeKind(err error) FailureKind {
	if err == nil {
		return ""
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, e := range terr.Errors {
			switch e.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return FailureImageUnauthorized
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return FailureImageNotFound
			}
		}
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return FailureImageUnauthorized
		case http.StatusNotFound:
			return FailureImageNotFound
		}
		return ""
	}
	// No HTTP answer at all: refused, reset, DNS, TLS, or no reply within
	// the probe's timeout.
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return FailureRegistryUnreachable
	}
	return ""
}

// engineTreatsInsecure reports whether the engine talks plain HTTP to host,
// from its registry configuration (daemon.json insecure-registries and the
// default 127.0.0.0/8).
func (d *Deployer) engineTreatsInsecure(ctx context.Context, host string) bool {
	info, err := d.api.Info(ctx)
	if err != nil || info.RegistryConfig == nil {
		return false
	}
	if ic, ok := info.RegistryConfig.IndexConfigs[host]; ok && ic != nil {
		return !ic.Secure
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	for _, cidr := range info.RegistryConfig.InsecureRegistryCIDRs {
		if cidr != nil && (*net.IPNet)(cidr).Contains(ip) {
			return true
		}
	}
	return false
}
