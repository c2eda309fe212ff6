package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/mask"
	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Task states as journaled; they map one to one to the protocol's.
const (
	statePulling   = "pulling"
	stateStarting  = "starting"
	stateVerifying = "verifying"
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// start runs a newly accepted task in the background. Tasks of one
// application run one after another; different applications in parallel.
func (a *Agent) start(ctx context.Context, taskID string) {
	if as, ok := a.journal.Assignment(taskID); ok {
		a.startAll(ctx, []journal.Assignment{as}, false)
	}
}

// reconcile settles, in the background, the tasks an earlier process of
// the agent accepted and did not finish: each application's in the order
// they were accepted, under the application's lock.
func (a *Agent) reconcile(ctx context.Context) {
	byApp := map[string][]journal.Assignment{}
	var apps []string
	for _, as := range a.journal.Unfinished() {
		if byApp[as.Application] == nil {
			apps = append(apps, as.Application)
		}
		byApp[as.Application] = append(byApp[as.Application], as)
	}
	for _, app := range apps {
		a.log.Warn("the agent restarted with unfinished tasks: reconciling them with what runs on the host",
			zap.String("app", app), zap.Int("tasks", len(byApp[app])))
		a.startAll(ctx, byApp[app], true)
	}
}

// startAll runs tasks of one application, in order, in the background,
// each cancellable by the server from now on.
func (a *Agent) startAll(ctx context.Context, tasks []journal.Assignment, resume bool) {
	ctxs := make([]context.Context, len(tasks))
	a.mu.Lock()
	lock := a.appLocks[tasks[0].Application]
	if lock == nil {
		lock = &sync.Mutex{}
		a.appLocks[tasks[0].Application] = lock
	}
	for i, as := range tasks {
		var cancel context.CancelFunc
		ctxs[i], cancel = context.WithCancel(ctx)
		a.cancels[as.TaskID] = cancel
	}
	a.mu.Unlock()
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		lock.Lock()
		defer lock.Unlock()
		for i, as := range tasks {
			a.execute(ctxs[i], as, resume)
			a.mu.Lock()
			cancel := a.cancels[as.TaskID]
			delete(a.cancels, as.TaskID)
			a.mu.Unlock()
			cancel()
		}
	}()
}

// execute runs one task and journals its events; the session sends them.
// The values of the task's sensitive env vars are masked in everything it
// journals (log and event messages) and in the agent's own log. With
// resume, the task was left unfinished by an earlier agent process: it is
// reconciled with what runs on the host (see resume).
func (a *Agent) execute(ctx context.Context, as journal.Assignment, resume bool) {
	log := a.log.With(zap.String("task", as.TaskID), zap.String("deployment", as.DeploymentID), zap.String("app", as.Application))
	masker := mask.New(sensitiveValues(as))
	// One masking stream for the container's output and the agent's own
	// "tentacle:" lines, which are written from two goroutines.
	logs := &lockedWriter{w: masker.Writer(a.journal.LogWriter(as.TaskID))}
	emit := func(e journal.Event) {
		e.Message = masker.String(e.Message)
		if e.Final {
			// The last log bytes held back by the mask go before the final
			// event, which closes the log.
			if err := logs.Flush(); err != nil {
				log.Error("journal log", zap.Error(err))
			}
		}
		if _, err := a.journal.Append(as.TaskID, e); err != nil {
			log.Error("journal event", zap.Error(err))
		}
	}
	log.Info("task started", zap.String("image", as.ImageRepository), zap.String("tag", as.ImageTag), zap.String("digest", as.ImageDigest))

	task := docker.Task{
		ID: as.TaskID, DeploymentID: as.DeploymentID, ReleaseID: as.ReleaseID, ReleaseVersion: as.ReleaseVersion,
		Application: as.Application, Repository: as.ImageRepository, Tag: as.ImageTag, Digest: as.ImageDigest,
		Spec: as.RunSpec.WithDefaults(),
	}
	if err := validate(as); err != nil {
		fmt.Fprintf(logs, "tentacle: task refused: %v\n", err)
		emit(journal.Event{State: stateFailed, FailureKind: string(docker.FailureAgent), Message: err.Error(), Final: true})
		return
	}
	lastPhase := docker.Phase("")
	progress := func(p docker.Progress) {
		// Phase changes go into the task log too, so `tentaclectl logs`
		// tells the whole story; the agent's own stdout is not the place.
		if p.Phase != lastPhase {
			fmt.Fprintf(logs, "tentacle: %s: %s\n", p.Phase, p.Message)
			lastPhase = p.Phase
		}
		emit(journal.Event{State: string(p.Phase), Message: p.Message, ProgressBytes: p.Bytes, ProgressTotal: p.Total})
	}
	var res docker.Result
	var err error
	if resume {
		fmt.Fprintf(logs, "tentacle: the agent restarted during this task: checking what it left on the host\n")
		res, err = a.resume(ctx, as.TaskID, task, progress, logs)
	} else {
		res, err = a.runner.Deploy(ctx, task, progress, logs)
	}
	if resume && errors.Is(err, docker.ErrEngineUnreachable) {
		// Stopping before Docker answered: the outcome is unknown, so the
		// task stays unfinished for the next start to settle.
		log.Warn("stopping before the docker engine answered: the task is settled at the next start", zap.Error(err))
		return
	}
	if err != nil {
		kind := docker.KindOf(err)
		state := stateFailed
		if errors.Is(err, context.Canceled) {
			state = stateCancelled
		}
		fmt.Fprintf(logs, "tentacle: %s: %v\n", state, err)
		// The message may quote the container's output: masked here too.
		log.Warn("task failed", zap.String("kind", string(kind)), zap.String("error", masker.String(err.Error())))
		emit(journal.Event{State: state, FailureKind: string(kind), Message: err.Error(), ImageDigest: res.Digest, Final: true})
		return
	}
	fmt.Fprintf(logs, "tentacle: succeeded: %s runs %s@%s\n", as.Application, as.ImageRepository, res.Digest)
	log.Info("task succeeded", zap.String("digest", res.Digest), zap.String("container", res.ContainerID))
	emit(journal.Event{State: stateSucceeded, Message: "running " + res.Digest, ImageDigest: res.Digest, ContainerID: res.ContainerID, Final: true})
}

// resume settles a task an earlier agent process left unfinished. Docker
// is the judge of what happened (docker.Engine.Reconcile); when no
// container of the task exists, the journal is: a task whose events never
// got past pulling had not created its container and runs now; one that
// had (the "starting" event comes before the create) is not run again.
func (a *Agent) resume(ctx context.Context, taskID string, task docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error) {
	res, err := a.runner.Reconcile(ctx, task, progress, logs)
	if !errors.Is(err, docker.ErrNotCreated) {
		return res, err
	}
	for _, e := range a.journal.EventsAfter(taskID, 0) {
		if e.State != statePulling {
			return res, &docker.Failure{Kind: docker.FailureInterrupted, Err: errors.New(
				"the agent restarted during the task and its new container is gone (rolled back): the previous container, if any, runs; deploy again")}
		}
	}
	fmt.Fprintf(logs, "tentacle: the task had not created its container yet: running it now\n")
	return a.runner.Deploy(ctx, task, progress, logs)
}

// sensitiveValues are the values of the env vars the server marked
// sensitive.
func sensitiveValues(as journal.Assignment) []string {
	var out []string
	for _, name := range as.SensitiveEnv {
		for _, e := range as.RunSpec.Env {
			if e.Name == name {
				out = append(out, e.Value)
			}
		}
	}
	return out
}

// lockedWriter serializes writes to a mask.Writer, which is not safe for
// concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  *mask.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

// validate re-checks what the server sent: the agent runs nothing it would
// not accept from a user.
func validate(as journal.Assignment) error {
	if err := spec.ValidateName("application", as.Application); err != nil {
		return err
	}
	if _, err := spec.ParseRepository(as.ImageRepository); err != nil {
		return fmt.Errorf("image_repository: %w", err)
	}
	if as.ImageDigest == "" {
		if err := spec.ValidateTag(as.ImageTag); err != nil {
			return fmt.Errorf("image_tag: %w", err)
		}
	} else if err := spec.ValidateDigest(as.ImageDigest); err != nil {
		return fmt.Errorf("image_digest: %w", err)
	}
	if err := as.RunSpec.Validate(); err != nil {
		return fmt.Errorf("run_spec: %w", err)
	}
	return nil
}
