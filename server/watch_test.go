package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// TestWatchShowsWaveStartWithoutEvents: the second wave's target is
// offline, so starting its wave produces no task event; a watcher still
// sees its task move from waiting to queued once the pause has passed.
func TestWatchShowsWaveStartWithoutEvents(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	first := enrollSession(t, s, c, "prod", "a-host", true)
	enrollSession(t, s, c, "prod", "b-host", false)
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	dep, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod",
		Rollout: &tentaclev1.Rollout{Window: 1, Pause: durationpb.New(300 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.WatchDeployment(ctx, &tentaclev1.WatchDeploymentRequest{Id: dep.GetDeployment().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	first.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range m.GetTasks() {
			if task.GetTargetName() == "b-host" && task.GetState() == tentaclev1.TaskState_TASK_STATE_QUEUED {
				return
			}
		}
	}
	t.Fatal("the watcher never saw the second wave's task queued")
}
