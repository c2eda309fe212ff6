package main

import (
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

func (r *rolloutFlags) add(cmd *cobra.Command, what string) {
	fl := cmd.Flags()
	fl.IntVar(&r.window, "window", 0, "targets per wave "+what+"; 0 deploys to all at once")
	fl.DurationVar(&r.pause, "pause", 0, "wait between the end of one wave and the start of the next, e.g. 30s")
	fl.StringVar(&r.onFailure, "on-failure", "", `when a task fails: "halt" stops the waves not yet started (default), "continue" goes on`)
}

// proto validates the flags and returns the rollout to send, or nil when
// none of them was set: the server's (or the application's) rollout applies.
func (r *rolloutFlags) proto(cmd *cobra.Command) (*tentaclev1.Rollout, error) {
	fl := cmd.Flags()
	if !fl.Changed("window") && !fl.Changed("pause") && !fl.Changed("on-failure") {
		return nil, nil
	}
	if r.window < 0 {
		return nil, badValue("--window %d: use 0 (all targets at once) or a number of targets per wave", r.window)
	}
	if r.pause < 0 || r.pause > maxPause {
		return nil, badValue("--pause %s: use a duration from 0 to 24h, e.g. 30s", r.pause)
	}
	switch r.onFailure {
	case "", "halt", "continue":
	default:
		return nil, badValue("--on-failure %q: use halt or continue", r.onFailure)
	}
	if r.pause > 0 && r.window == 0 {
		return nil, badValue("--pause %s needs --window: with all targets in one wave there is nothing to pause between", r.pause)
	}
	out := &tentaclev1.Rollout{Window: int32(r.window), FailurePolicy: r.onFailure}
	if r.pause > 0 {
		out.Pause = durationpb.New(r.pause)
	}
	return out, nil
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
