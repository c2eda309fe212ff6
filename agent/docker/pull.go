package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/bytesize"
	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// errPullStalled is the cause of a pull cancelled by the inactivity watchdog.
var errPullStalled = errors.New("pull stalled")

// pull makes the task's image present and returns its manifest digest.
//
// A pull has no overall timeout: a large image on a slow link may take an
// hour and still be healthy. Instead it fails when the engine sends no
// message for pullInactivity (the engine reports progress, and its retries
// of a broken download, every few seconds).
func (d *Deployer) pull(ctx context.Context, t Task, repo spec.Repository, progress func(Progress), log *zap.Logger) (string, error) {
	ref := t.imageRef()
	switch {
	case t.Spec.PullPolicy == spec.PullAlways:
	case t.Digest != "":
		// A digest names immutable content: when the engine has it, there
		// is nothing to fetch (and a redeploy works with the registry down).
		if _, err := d.api.ImageInspect(ctx, ref); err == nil {
			progress(Progress{Phase: PhasePulling, Message: "image " + ref + " is already present"})
			return t.Digest, nil
		}
	case t.Spec.PullPolicy == spec.PullIfNotPresent:
		// A tag the engine already has is used as it is, even if the
		// registry has moved it since.
		if _, err := d.api.ImageInspect(ctx, ref); err == nil {
			digest, err := d.resolveDigest(ctx, t, repo, ref)
			if err != nil {
				return "", err
			}
			progress(Progress{Phase: PhasePulling, Message: "image " + ref + " is already present (" + digest + ")"})
			return digest, nil
		}
	}

	auth, haveAuth, err := d.creds.Lookup(repo.Registry)
	if err != nil {
		return "", fail(FailureAgent, "pull %s: registry credentials for %s: %w", ref, repo.Registry, err)
	}
	var opts image.PullOptions
	if haveAuth {
		opts.RegistryAuth, err = registry.EncodeAuthConfig(registry.AuthConfig{
			Username:      auth.Username,
			Password:      auth.Password,
			IdentityToken: auth.IdentityToken,
			ServerAddress: repo.Registry,
		})
		if err != nil {
			return "", fail(FailureAgent, "pull %s: encode credentials: %w", ref, err)
		}
	}
	log.Info("pulling image", zap.String("image", ref), zap.Bool("with_credentials", haveAuth))
	progress(Progress{Phase: PhasePulling, Message: "pulling " + ref})

	pullCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog also covers the request itself: the engine answers only
	// once it has resolved the manifest, which can hang on a dead registry.
	watchdog := time.AfterFunc(d.pullInactivity, func() { cancel(errPullStalled) })
	defer watchdog.Stop()

	rc, err := d.api.ImagePull(pullCtx, ref, opts)
	if err == nil {
		err = d.readPullStream(rc, watchdog, progress, ref)
		rc.Close()
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return "", fail(FailureAgent, "pull %s: %w", ref, ctx.Err())
		case errors.Is(context.Cause(pullCtx), errPullStalled):
			return "", fail(FailureRegistryUnreachable, "pull %s: no progress from the engine for %s: is registry %s reachable from this host?", ref, d.pullInactivity, repo.Registry)
		}
		return "", d.classifyPull(ctx, ref, repo, auth, haveAuth, err, log)
	}

	digest, err := d.resolveDigest(ctx, t, repo, ref)
	if err != nil {
		return "", err
	}
	progress(Progress{Phase: PhasePulling, Message: "pulled " + t.Repository + "@" + digest})
	return digest, nil
}

// pullMessage is one message of the engine's pull stream. It mirrors the
// fields of docker's pkg/jsonmessage that a pull uses; that package is not
// imported because on Windows it drags in a terminal library.
type pullMessage struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Progress *struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Error *streamError `json:"errorDetail"`
	// ErrorMessage is the old form of Error, sent alongside it.
	ErrorMessage string `json:"error"`
}

// streamError is an error the engine reports inside a pull stream, after
// its HTTP status was already 200.
type streamError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *streamError) Error() string { return e.Message }

// readPullStream consumes the engine's JSON progress messages, feeding the
// watchdog and reporting progress, and returns the error the stream ends
// with, a *streamError.
func (d *Deployer) readPullStream(r io.Reader, watchdog *time.Timer, progress func(Progress), ref string) error {
	dec := json.NewDecoder(r)
	p := pullProgress{layers: map[string]*layerProgress{}}
	var last time.Time
	for {
		var msg pullMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		watchdog.Reset(d.pullInactivity)
		switch {
		case msg.Error != nil:
			return msg.Error
		case msg.ErrorMessage != "":
			return &streamError{Message: msg.ErrorMessage}
		}
		layerDone := p.update(msg)
		if layerDone || (len(p.layers) > 0 && time.Since(last) >= d.progressEvery) {
			last = time.Now()
			current, total := p.bytes()
			progress(Progress{Phase: PhasePulling, Message: ref + ": " + p.String(), Bytes: current, Total: total})
		}
	}
}

// pullProgress sums up the per-layer messages of a pull.
type pullProgress struct {
	layers map[string]*layerProgress
}

type layerProgress struct {
	current, total int64
	done           bool
}

// update records msg and reports whether it completed a layer. The status
// values are the engine's fixed progress vocabulary, not error text.
func (p *pullProgress) update(msg pullMessage) bool {
	if msg.ID == "" || msg.Status == "" || strings.HasPrefix(msg.Status, "Pulling from") {
		return false
	}
	l := p.layers[msg.ID]
	if l == nil {
		l = &layerProgress{}
		p.layers[msg.ID] = l
	}
	switch msg.Status {
	case "Downloading":
		if msg.Progress != nil {
			l.current, l.total = msg.Progress.Current, msg.Progress.Total
		}
	case "Download complete", "Verifying Checksum":
		l.current = l.total
	case "Pull complete", "Already exists":
		l.current = l.total
		if !l.done {
			l.done = true
			return true
		}
	}
	return false
}

// bytes sums the layers' downloaded and total bytes.
func (p *pullProgress) bytes() (current, total int64) {
	for _, l := range p.layers {
		current += l.current
		total += l.total
	}
	return current, total
}

func (p *pullProgress) String() string {
	var done int
	for _, l := range p.layers {
		if l.done {
			done++
		}
	}
	current, total := p.bytes()
	s := fmt.Sprintf("%d/%d layers done", done, len(p.layers))
	if total > 0 {
		s += fmt.Sprintf(", %s of %s downloaded", bytesize.SI(uint64(max(current, 0))), bytesize.SI(uint64(max(total, 0))))
	}
	return s
}

// resolveDigest finds the manifest digest the engine recorded for this
// repository: the one the container will run, whatever a tag points to
// later.
func (d *Deployer) resolveDigest(ctx context.Context, t Task, repo spec.Repository, ref string) (string, error) {
	img, err := d.api.ImageInspect(ctx, ref)
	if err != nil {
		return "", fail(FailureDocker, "inspect pulled image %s: %w", ref, err)
	}
	digests := repoDigests(img.RepoDigests, repo)
	if t.Digest != "" {
		for _, dg := range digests {
			if dg == t.Digest {
				return dg, nil
			}
		}
		return "", fail(FailureDocker, "pull %s: the engine lists no digest %s for %s after the pull (it has %v)", ref, t.Digest, repo, digests)
	}
	if len(digests) == 0 {
		return "", fail(FailureDocker, "pull %s: the engine lists no digest for %s after the pull", ref, repo)
	}
	// Several digests for one repository happen when the same image was
	// pushed with different manifests; any of them names this content.
	return digests[0], nil
}

// repoDigests returns the digests of entries ("name@sha256:…") that belong
// to repo; the engine writes Docker Hub names in their short form
// ("nginx@…" for docker.io/library/nginx), hence the parse.
func repoDigests(entries []string, repo spec.Repository) []string {
	var out []string
	for _, e := range entries {
		name, dg, ok := strings.Cut(e, "@")
		if !ok {
			continue
		}
		r, err := spec.ParseRepository(name)
		if err == nil && r == repo {
			out = append(out, dg)
		}
	}
	sort.Strings(out)
	return out
}

// classifyPull turns a failed pull into a Failure of the right kind.
//
// What Docker 20.10 (API 1.41) answers to POST /images/create, found by
// pulling from the test registry (internal/testimage):
//
//	no credentials, or wrong ones     HTTP 500 -> cerrdefs.IsInternal; the
//	                                  message comes from the registry client
//	tag, digest or repository absent  HTTP 404 -> cerrdefs.IsNotFound
//	connection refused                HTTP 500 -> cerrdefs.IsInternal
//	a layer failing after the         HTTP 200, then {"error": …} in the
//	manifest (401/403/404/5xx)        stream, errorDetail without a code,
//	                                  after the engine's own retries
//
// Unauthorized and unreachable are therefore the same errdefs class, and
// errors in the stream carry no code at all. Newer engines may answer
// errdefs Unauthorized; that is honoured. Everything else is decided by
// asking the registry ourselves (probe) with the same credentials.
func (d *Deployer) classifyPull(ctx context.Context, ref string, repo spec.Repository, auth creds.Auth, haveAuth bool, pullErr error, log *zap.Logger) error {
	probed, probeErr := d.probe(ctx, ref, repo, auth, haveAuth)
	log.Info("pull failed", zap.Error(pullErr), zap.String("probe", string(probed)), zap.NamedError("probe_error", probeErr))
	kind := probed
	switch {
	case cerrdefs.IsUnauthorized(pullErr) || cerrdefs.IsPermissionDenied(pullErr):
		kind = FailureImageUnauthorized
	case cerrdefs.IsNotFound(pullErr) && probed != FailureImageUnauthorized:
		// The engine reached the registry; trust it over a probe that
		// could not (the engine may use a proxy or another network).
		kind = FailureImageNotFound
	}
	switch kind {
	case FailureImageUnauthorized:
		if !haveAuth {
			return fail(kind, "pull %s: registry %s requires credentials and the agent has none for it (unauthorized): add an entry for it to the agent config: %w", ref, repo.Registry, pullErr)
		}
		return fail(kind, "pull %s: registry %s refused the agent's credentials (unauthorized): fix its entry in the agent config: %w", ref, repo.Registry, pullErr)
	case FailureImageNotFound:
		return fail(kind, "pull %s: %s not found in registry %s: check the repository and the release's tag or digest: %w", ref, strings.TrimPrefix(ref, repo.Registry+"/"), repo.Registry, pullErr)
	case FailureRegistryUnreachable:
		return fail(kind, "pull %s: registry %s is unreachable from this host: %w", ref, repo.Registry, pullErr)
	}
	return fail(FailureDocker, "pull %s: %w", ref, pullErr)
}
