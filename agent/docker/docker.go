// Package docker is the agent's side of a task that touches the Docker
// Engine API: pull the release's image with the agent's own registry
// credentials, create the container from the run spec, swap it with the
// running one, stream its output, hold the health gate, and roll back when
// anything fails.
//
// It knows nothing of the protocol, the journal or the server: the session
// loop drives it through Engine and turns Failure kinds into proto values.
// It must never take registry credentials from the task.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Task is one target's share of a deployment, as this package needs it.
type Task struct {
	ID             string
	DeploymentID   string
	ReleaseID      string
	ReleaseVersion string
	Application    string // the container's name, after the Deployer's prefix
	Repository     string // "host[:port]/path", no tag or digest
	Tag            string
	Digest         string // "sha256:…", or "" to pull by tag
	Spec           spec.RunSpec
}

// Phase is a step of Deploy reported through its progress callback.
type Phase string

// Phases, in the order Deploy goes through them.
const (
	PhasePulling   Phase = "pulling"
	PhaseStarting  Phase = "starting"
	PhaseVerifying Phase = "verifying"
)

// Progress is one report of Deploy through its progress callback. Bytes
// and Total are set while pulling: bytes downloaded so far and in all, over
// the layers the engine has announced (0 when it has not said).
type Progress struct {
	Phase   Phase
	Message string
	Bytes   int64
	Total   int64
}

// Result is what a successful Deploy leaves running.
type Result struct {
	Digest      string // manifest digest of the image that runs, "sha256:…"
	ContainerID string
}

// FailureKind says why a task failed; the values match the protocol's
// FailureKind names.
type FailureKind string

// Failure kinds.
const (
	FailureImageUnauthorized   FailureKind = "image_unauthorized"
	FailureImageNotFound       FailureKind = "image_not_found"
	FailureRegistryUnreachable FailureKind = "registry_unreachable"
	// The new container exited before the health gate passed.
	FailureContainerExited FailureKind = "container_exited"
	// The new container's HEALTHCHECK reported unhealthy.
	FailureUnhealthy FailureKind = "unhealthy"
	// The health gate reached its limit (Spec.HealthTimeout, or one derived
	// from the healthcheck) without a verdict.
	FailureHealthTimeout FailureKind = "health_timeout"
	FailureDocker        FailureKind = "docker"
	FailureAgent         FailureKind = "agent"
	// The agent restarted while the task ran and rolled it back (Reconcile).
	FailureInterrupted FailureKind = "interrupted"
	// The server's kind for a target that did not run the task in time;
	// the agent never reports it.
	FailureTargetUnavailable FailureKind = "target_unavailable"
)

// Failure is every error Deploy returns: a kind for scripts and alerting
// and the error a person reads.
type Failure struct {
	Kind FailureKind
	Err  error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// KindOf returns the kind of a Failure in err's chain, "" for nil and
// FailureAgent for any other error.
func KindOf(err error) FailureKind {
	if err == nil {
		return ""
	}
	var f *Failure
	if errors.As(err, &f) {
		return f.Kind
	}
	return FailureAgent
}

func fail(kind FailureKind, format string, args ...any) error {
	return &Failure{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// CredentialSource answers which credentials the agent pulls with from a
// registry host; *creds.Store implements it.
type CredentialSource interface {
	Lookup(registryHost string) (creds.Auth, bool, error)
}

// Engine is what the agent's session needs from Docker; *Deployer
// implements it, session tests use a fake.
//
// Call order: EngineVersion at any time (for Hello); Deploy once per task,
// or, for a task the agent was running when it stopped, Reconcile first
// (and Deploy only when it answers ErrNotCreated and the task had not
// reached the create step).
//
// Concurrency: safe for concurrent use. Deploys of different applications
// run in parallel; a Deploy of an application waits (watching its ctx)
// until any other Deploy of the same application has returned.
//
// Idempotency: Deploy converges the host on the task: re-running a task
// replaces the container with an identical one, and a Deploy that was
// interrupted by a crash is cleaned up by the next Deploy of the same
// application. The caller's journal, not Deploy, guarantees a task runs at
// most once.
type Engine interface {
	// Deploy pulls the task's image, swaps the application's container
	// for a new one and holds the health gate. It reports steps through
	// progress and writes only the new container's stdout and stderr to
	// logs. On failure or ctx cancellation the previous container is
	// back, running if it was; the error is a *Failure, and Result.Digest
	// is set when the image was pulled. When the new container failed the
	// gate (kinds container_exited, unhealthy, health_timeout) the error
	// message ends with its last log lines. progress is called on Deploy's
	// goroutine; logs is written from another one, never concurrently
	// and never after Deploy has returned.
	Deploy(ctx context.Context, t Task, progress func(Progress), logs io.Writer) (Result, error)
	// Reconcile settles a task an earlier agent process left unfinished,
	// from its labelled containers, without creating one: it resumes the
	// health gate of a container that took the application's name, or rolls
	// the swap back (a *Failure of kind interrupted); ErrNotCreated when no
	// container of the task exists. progress and logs as for Deploy.
	Reconcile(ctx context.Context, t Task, progress func(Progress), logs io.Writer) (Result, error)
	// EngineVersion is the Docker engine's version, e.g. "20.10.24".
	EngineVersion(ctx context.Context) (string, error)
}

var _ Engine = (*Deployer)(nil)

// Deployer runs tasks against one Docker engine.
type Deployer struct {
	api   client.APIClient
	creds CredentialSource
	log   *zap.Logger
	// prefix goes before every container name, so that several agents can
	// share one engine; see SetContainerPrefix.
	prefix string

	// Timings; tests shorten them.
	pullInactivity time.Duration // a pull with no message for this long fails
	progressEvery  time.Duration // at most one pull progress report per period
	probeTimeout   time.Duration // the registry probe that classifies a failed pull
	logDrain       time.Duration // output still collected after the gate ends
	healthPoll     time.Duration // how often HEALTHCHECK status is read

	mu   sync.Mutex
	apps map[string]chan struct{} // per-application lock, see lockApp
}

// NewClient connects to the engine named by DOCKER_HOST (and DOCKER_*),
// defaulting to the local socket or, on Windows, the named pipe; it speaks
// the newest API version both sides know. opts are applied last, so that
// e.g. client.WithHost from the agent's config wins over the environment.
func NewClient(opts ...client.Opt) (*client.Client, error) {
	all := append([]client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}, opts...)
	return client.NewClientWithOpts(all...)
}

// New returns a Deployer using api and pulling with credentials from creds.
func New(api client.APIClient, creds CredentialSource, log *zap.Logger) *Deployer {
	if log == nil {
		log = zap.NewNop()
	}
	return &Deployer{
		api:            api,
		creds:          creds,
		log:            log,
		pullInactivity: 2 * time.Minute,
		progressEvery:  2 * time.Second,
		probeTimeout:   15 * time.Second,
		logDrain:       250 * time.Millisecond,
		healthPoll:     500 * time.Millisecond,
		apps:           map[string]chan struct{}{},
	}
}

// SetContainerPrefix makes the Deployer name an application's container
// prefix+application (and prefix+application+".next"/".previous" during a
// swap), so that several agents can share one Docker engine without
// touching each other's containers. The prefix must be empty or a valid
// start of a Docker container name (agent.Config validates it). Call it
// before the first Deploy.
func (d *Deployer) SetContainerPrefix(prefix string) { d.prefix = prefix }

// EngineVersion implements Engine.
func (d *Deployer) EngineVersion(ctx context.Context) (string, error) {
	v, err := d.api.ServerVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("docker engine version: %w", err)
	}
	return v.Version, nil
}

// Deploy implements Engine. The steps, in order:
//
//  1. pull the image by digest (or tag) with the agent's credentials;
//  2. resolve the digest that will run from the engine's RepoDigests;
//  3. create the new container as "<app>.next", then by Spec.Strategy:
//     recreate: stop the old "<app>" and rename it "<app>.previous", rename
//     the new one "<app>" and start it; start-first: start "<app>.next"
//     beside the running "<app>";
//  4. stream the new container's output to logs and hold the health gate:
//     the image's HEALTHCHECK healthy, or no exit for Spec.ReadyAfter;
//  5. on success remove the old container (start-first: set it aside,
//     rename the new one "<app>", then stop and remove the old one); on
//     failure or cancellation remove the new one and put the old one back.
//
// "<app>" stands for the container prefix followed by the application.
func (d *Deployer) Deploy(ctx context.Context, t Task, progress func(Progress), logs io.Writer) (Result, error) {
	progress, logs = orDiscard(progress, logs)
	repo, err := t.validate()
	if err != nil {
		return Result{}, &Failure{Kind: FailureAgent, Err: err}
	}
	log := d.taskLog(t)

	unlock, err := d.lockApp(ctx, t.Application)
	if err != nil {
		return Result{}, fail(FailureAgent, "deploy %s: waiting for the previous deployment of the same application: %w", t.Application, err)
	}
	defer unlock()

	digest, err := d.pull(ctx, t, repo, progress, log)
	if err != nil {
		return Result{}, err
	}
	id, err := d.replace(ctx, t, t.Repository+"@"+digest, progress, logs, log)
	if err != nil {
		// The digest still tells the server which image failed.
		return Result{Digest: digest}, err
	}
	log.Info("deployed", zap.String("digest", digest), zap.String("container", id))
	return Result{Digest: digest, ContainerID: id}, nil
}

// orDiscard stands in for a nil progress callback or logs writer.
func orDiscard(progress func(Progress), logs io.Writer) (func(Progress), io.Writer) {
	if progress == nil {
		progress = func(Progress) {}
	}
	if logs == nil {
		logs = io.Discard
	}
	return progress, logs
}

func (d *Deployer) taskLog(t Task) *zap.Logger {
	return d.log.With(zap.String("task", t.ID), zap.String("deployment", t.DeploymentID), zap.String("app", t.Application))
}

// validate re-checks what the server should already have rejected: the
// agent must not hand Docker a malformed name, reference or spec.
func (t Task) validate() (spec.Repository, error) {
	var errs []error
	if err := spec.ValidateName("application", t.Application); err != nil {
		errs = append(errs, err)
	}
	repo, err := spec.ParseRepository(t.Repository)
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case t.Digest != "":
		if err := spec.ValidateDigest(t.Digest); err != nil {
			errs = append(errs, err)
		}
	case t.Tag == "":
		errs = append(errs, errors.New("task has neither an image digest nor a tag"))
	default:
		if err := spec.ValidateTag(t.Tag); err != nil {
			errs = append(errs, err)
		}
	}
	if err := t.Spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return spec.Repository{}, fmt.Errorf("task %s: %w", t.ID, err)
	}
	return repo, nil
}

// imageRef is what Deploy pulls: by digest when the release pinned one.
func (t Task) imageRef() string {
	if t.Digest != "" {
		return t.Repository + "@" + t.Digest
	}
	return t.Repository + ":" + t.Tag
}

// lockApp serializes Deploys of one application: two swaps of the same
// container name would undo each other.
func (d *Deployer) lockApp(ctx context.Context, app string) (func(), error) {
	for {
		d.mu.Lock()
		busy, ok := d.apps[app]
		if !ok {
			done := make(chan struct{})
			d.apps[app] = done
			d.mu.Unlock()
			return func() {
				d.mu.Lock()
				delete(d.apps, app)
				d.mu.Unlock()
				close(done)
			}, nil
		}
		d.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
