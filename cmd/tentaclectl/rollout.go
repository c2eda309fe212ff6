package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// rolloutFlags are --window, --pause and --on-failure, shared by app create,
// deploy and rollback.
type rolloutFlags struct {
	window    int
	pause     time.Duration
	onFailure string
}

// maxPause is the server's bound: a longer pause is more likely a typo than
// a plan.
const maxPause = 24 * time.Hour

// maxDeadline is the server's bound on a deployment's deadline.
const maxDeadline = 7 * 24 * time.Hour

func (r *rolloutFlags) add(cmd *cobra.Command, what string) {
	fl := cmd.Flags()
	fl.IntVar(&r.window, "window", 0, "targets per wave "+what+"; 0 deploys to all at once")
	fl.DurationVar(&r.pause, "pause", 0, "wait between the end of one wave and the start of the next, e.g. 30s (needs waves: --window or the application's)")
	fl.StringVar(&r.onFailure, "on-failure", "", `when a task fails: "halt" stops the waves not yet started (default), "continue" goes on`)
}

// proto validates the flags and returns the rollout to send, or nil when
// none of them was set: the server's (or the application's) rollout applies.
// A flag not set is zero; deploy and rollback lay the flags over the
// application's rollout instead (withBase).
func (r *rolloutFlags) proto(cmd *cobra.Command) (*tentaclev1.Rollout, error) {
	if !r.changed(cmd) {
		return nil, nil
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r.over(cmd, nil)
}

func (r *rolloutFlags) changed(cmd *cobra.Command) bool {
	fl := cmd.Flags()
	return fl.Changed("window") || fl.Changed("pause") || fl.Changed("on-failure")
}

// check refuses values that are wrong whatever the application's rollout.
func (r *rolloutFlags) check() error {
	if r.window < 0 {
		return badValue("--window %d: use 0 (all targets at once) or a number of targets per wave", r.window)
	}
	if r.pause < 0 || r.pause > maxPause {
		return badValue("--pause %s: use a duration from 0 to 24h, e.g. 30s", r.pause)
	}
	switch r.onFailure {
	case "", "halt", "continue":
	default:
		return badValue("--on-failure %q: use halt or continue", r.onFailure)
	}
	return nil
}

// over lays the flags that were set over base (nil: all zero).
func (r *rolloutFlags) over(cmd *cobra.Command, base *tentaclev1.Rollout) (*tentaclev1.Rollout, error) {
	fl := cmd.Flags()
	out := &tentaclev1.Rollout{Window: base.GetWindow(), Pause: base.GetPause(), FailurePolicy: base.GetFailurePolicy()}
	if fl.Changed("window") {
		out.Window = int32(r.window)
		if r.window == 0 {
			out.Pause = nil // the application's pause means nothing without waves
		}
	}
	if fl.Changed("pause") {
		out.Pause = nil
		if r.pause > 0 {
			out.Pause = durationpb.New(r.pause)
		}
	}
	if fl.Changed("on-failure") {
		out.FailurePolicy = r.onFailure
	}
	if p := out.GetPause().AsDuration(); p > 0 && out.GetWindow() == 0 {
		return nil, badValue("--pause %s needs --window: with all targets in one wave there is nothing to pause between", p)
	}
	return out, nil
}

// withBase returns the rollout a deploy or rollback sends: nil when no flag
// was set (the application's rollout applies), else the application's
// rollout with the flags that were set laid over it, so that `--pause 1m`
// keeps the application's window.
func (r *rolloutFlags) withBase(ctx context.Context, cmd *cobra.Command, admin tentaclev1.AdminServiceClient, app string) (*tentaclev1.Rollout, error) {
	if !r.changed(cmd) {
		return nil, nil
	}
	var base *tentaclev1.Rollout
	if fl := cmd.Flags(); !fl.Changed("window") || !fl.Changed("pause") || !fl.Changed("on-failure") {
		apps, err := admin.ListApplications(ctx, &tentaclev1.ListApplicationsRequest{})
		if err != nil {
			return nil, err
		}
		for _, a := range apps.GetApplications() {
			if a.GetName() == app {
				base = a.GetRollout()
			}
		}
	}
	return r.over(cmd, base)
}

// formatRollout says how a deployment moves through its targets.
func formatRollout(r *tentaclev1.Rollout) string {
	if r.GetWindow() <= 0 {
		return "all targets at once"
	}
	s := fmt.Sprintf("%d per wave", r.GetWindow())
	if p := r.GetPause().AsDuration(); p > 0 {
		s += fmt.Sprintf(", %s pause", p)
	}
	policy := r.GetFailurePolicy()
	if policy == "" {
		policy = "halt"
	}
	return s + ", on failure " + policy
}
