package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newStatusCmd() *cobra.Command {
	var app, env string
	var ascii bool
	cmd := &cobra.Command{
		Use:   "status [--app APP] [--env ENV] [--ascii]",
		Short: "Show which release runs where: applications by environments",
		Long: `Show a table of applications (rows) by environments (columns, in lifecycle
order). Each cell is the release that runs there and how it is doing:

  1.4.0 ✓              healthy: every target runs 1.4.0
  1.5.0 ↻ 2/4          a deployment of 1.5.0 runs; 2 of 4 targets are done
  1.3.0 ✗ 1.4.0 failed  1.4.0 failed (or was cancelled); 1.3.0 is current
  1.4.0 ⚠ 1 drift      on a target, the container was stopped, removed or
                       replaced by hand since (deploy --missing fixes it)
  1.4.0 ⚠ 1 offline    a target has no session with the server
  1.4.0 ⚠ 1 missing    a target does not run 1.4.0 (deploy --missing fixes it)
  ·                    never deployed

A cell shows its most urgent state, in the order above.

On a terminal that is not UTF-8, when the output is not a terminal, or with
--ascii, the marks are words: ok, deploying, x, ! and -.

With both --app and --env, the one cell is shown by target: the release each
runs, its session, its health (see tentaclectl targets), its latest task and
its drift, explained below the table. -o json prints the server's answer.`,
		Example: `  tentaclectl status
  tentaclectl status --app web --env prod
  tentaclectl status --env prod -o json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFilters(app, env); err != nil {
				return err
			}
			req := &tentaclev1.GetStatusRequest{Application: app, Environment: env}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.GetStatusResponse, error) {
				return admin.GetStatus(ctx, req)
			})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			marks := asciiMarks
			if !ascii && c.utf8Terminal() {
				marks = utf8Marks
			}
			if app != "" && env != "" && len(resp.GetApplications()) == 1 {
				return c.printStatusTargets(resp.GetApplications()[0], marks)
			}
			return c.printStatusMatrix(resp.GetApplications(), marks)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "only this application")
	fl.StringVar(&env, "env", "", "only this environment")
	fl.BoolVar(&ascii, "ascii", false, "plain ASCII marks even on a UTF-8 terminal")
	return cmd
}

// statusMarks are the symbols of the status table.
type statusMarks struct {
	healthy, deploying, failed, warn, none string
	legend                                 string
}

var (
	utf8Marks = statusMarks{healthy: "✓", deploying: "↻", failed: "✗", warn: "⚠", none: "·",
		legend: "✓ healthy  ↻ deploying (done/all)  ✗ failed  ⚠ see targets  · never deployed"}
	asciiMarks = statusMarks{healthy: "ok", deploying: "deploying", failed: "x", warn: "!", none: "-"}
)

// utf8Terminal reports whether stdout is a terminal that shows UTF-8.
func (c *cli) utf8Terminal() bool {
	if _, _, ok := c.terminal(c.stdout); !ok {
		return false
	}
	for _, name := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := c.getenv(name); v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	// Windows sets no locale variables; Windows Terminal is UTF-8.
	return runtime.GOOS == "windows" && c.getenv("WT_SESSION") != ""
}

// printStatusMatrix writes one row per application, one column per
// environment, in the order the server lists them (lifecycle order).
func (c *cli) printStatusMatrix(cells []*tentaclev1.ApplicationStatus, m statusMarks) error {
	if len(cells) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no applications or environments yet: tentaclectl app create, tentaclectl env create")
		return err
	}
	var apps, envs []string
	byCell := map[[2]string]*tentaclev1.ApplicationStatus{}
	for _, st := range cells {
		key := [2]string{st.GetApplication(), st.GetEnvironment()}
		if byCell[key] != nil {
			continue
		}
		byCell[key] = st
		apps = appendNew(apps, st.GetApplication())
		envs = appendNew(envs, st.GetEnvironment())
	}
	tw := newTable(c.stdout)
	header := []string{"APP"}
	for _, e := range envs {
		header = append(header, cell(e))
	}
	row(tw, header...)
	attention := ""
	for _, a := range apps {
		line := []string{cell(a)}
		for _, e := range envs {
			st := byCell[[2]string{a, e}]
			line = append(line, statusCell(st, m))
			if attention == "" && st != nil && st.GetState() != "healthy" && st.GetState() != "none" {
				attention = fmt.Sprintf("tentaclectl status --app %s --env %s", cell(a), cell(e))
			}
		}
		row(tw, line...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if m.legend != "" {
		fmt.Fprintln(c.stdout, m.legend)
	}
	if attention != "" {
		fmt.Fprintf(c.stdout, "hint: %s shows each target\n", attention)
	}
	return nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// statusCell is one application in one environment, in a few characters.
func statusCell(st *tentaclev1.ApplicationStatus, m statusMarks) string {
	if st == nil {
		return m.none
	}
	current := cell(st.GetCurrentVersion())
	latest := st.GetLatestDeployment()
	count := func(want func(*tentaclev1.TargetStatus) bool) int {
		n := 0
		for _, t := range st.GetTargets() {
			if want(t) {
				n++
			}
		}
		return n
	}
	switch st.GetState() {
	case "none":
		return m.none
	case "healthy":
		return current + " " + m.healthy
	case "deploying":
		done := count(func(t *tentaclev1.TargetStatus) bool {
			return t.GetLastTaskState() == tentaclev1.TaskState_TASK_STATE_SUCCEEDED
		})
		return fmt.Sprintf("%s %s %d/%d", cell(latest.GetReleaseVersion()), m.deploying, done, len(st.GetTargets()))
	case "failed":
		s := fmt.Sprintf("%s %s %s", m.failed, cell(latest.GetReleaseVersion()), deploymentState(latest.GetState()))
		if st.GetCurrentVersion() != "" {
			s = current + " " + s
		}
		return s
	case "drift":
		n := count(func(t *tentaclev1.TargetStatus) bool { return t.GetDrift() != nil })
		return fmt.Sprintf("%s %s %d drift", current, m.warn, n)
	case "missing":
		n := count(func(t *tentaclev1.TargetStatus) bool { return t.GetVersion() != st.GetCurrentVersion() })
		return fmt.Sprintf("%s %s %d missing", current, m.warn, n)
	case "offline":
		n := count(func(t *tentaclev1.TargetStatus) bool { return !t.GetConnected() })
		return fmt.Sprintf("%s %s %d offline", current, m.warn, n)
	}
	return current + " " + cell(st.GetState()) // a state newer than this tentaclectl
}

// printStatusTargets shows one application in one environment by target.
func (c *cli) printStatusTargets(st *tentaclev1.ApplicationStatus, m statusMarks) error {
	fmt.Fprintf(c.stdout, "%s in %s: %s\n", cell(st.GetApplication()), cell(st.GetEnvironment()), statusCell(st, m))
	tw := newTable(c.stdout)
	row(tw, "Current release:", cell(st.GetCurrentVersion()))
	if d := st.GetLatestDeployment(); d != nil {
		what := cell(d.GetReleaseVersion()) + " " + deploymentStateOf(d)
		if d.GetKind() != "" {
			what += ", " + cell(d.GetKind())
		}
		row(tw, "Latest deployment:", fmt.Sprintf("%s (%s, created %s)", cell(d.GetId()), what, c.formatTime(d.GetCreatedAt())))
	} else {
		row(tw, "Latest deployment:", "-")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.GetTargets()) == 0 {
		_, err := fmt.Fprintf(c.stdout, "\nno target in %s has the roles of %s\n", cell(st.GetEnvironment()), cell(st.GetApplication()))
		return err
	}
	fmt.Fprintln(c.stdout)
	tw = newTable(c.stdout)
	row(tw, "TARGET", "RELEASE", "SESSION", "HEALTH", "LAST TASK", "DRIFT")
	var drifted []*tentaclev1.TargetStatus
	for _, t := range st.GetTargets() {
		session := "offline"
		if t.GetConnected() {
			session = "connected"
		}
		last := "-"
		if t.GetLastTaskState() != tentaclev1.TaskState_TASK_STATE_UNSPECIFIED {
			last = taskState(t.GetLastTaskState())
		}
		health := "-"
		if t.GetHealthState() != tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNSPECIFIED {
			health = enumName(t.GetHealthState().String(), "TARGET_HEALTH_STATE_")
		}
		drift := "-"
		if d := t.GetDrift(); d != nil {
			drift = cell(d.GetKind())
			drifted = append(drifted, t)
		}
		row(tw, cell(t.GetTarget()), cell(t.GetVersion()), session, health, last, drift)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range drifted {
		d := t.GetDrift()
		fmt.Fprintf(c.stdout, "drift on %s since %s: %s\n", cell(t.GetTarget()), c.formatTime(d.GetSince()), cell(d.GetDetail()))
	}
	if len(drifted) > 0 {
		fmt.Fprintf(c.stdout, "hint: tentaclectl deploy --app %s --release %s --env %s --missing puts it right\n",
			cell(st.GetApplication()), shellQuote(drifted[0].GetDrift().GetExpectedReleaseVersion()), cell(st.GetEnvironment()))
	}
	return nil
}
