package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// scenario measures some figures. Fleet scenarios run once per fleet size
// (--agents); the others once, with agents 0.
type scenario struct {
	name  string
	about string
	fleet bool
	run   func(ctx context.Context, b *bench, agents int) ([]Figure, error)
}

// allScenarios is every scenario in the order the table shows them.
func allScenarios() []scenario { return append(fleetScenarios(), dockerScenarios()...) }

// bench is what every scenario gets.
type bench struct {
	// binDir holds tentacle-server, tentacle and tentaclectl (make bench
	// builds them there).
	binDir string
	// workDir holds data dirs; removed at the end unless --keep.
	workDir string
	// progress receives one line per step (stderr), so a long run shows
	// where it is.
	progress io.Writer
	// cleanups run when the run ends, last added first (see cleanup).
	cleanups []func()
}

// cleanup registers f to run when the whole run ends: what a scenario
// keeps for the next ones (a server process, a fleet) is stopped there.
func (b *bench) cleanup(f func()) { b.cleanups = append(b.cleanups, f) }

func (b *bench) runCleanups() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// bin is the path of one of the project's binaries.
func (b *bench) bin(name string) string { return filepath.Join(b.binDir, name) }

func newRootCmd() *cobra.Command {
	var (
		agents    []int
		names     []string
		output    string
		binDir    string
		keep      bool
		workDir   string
		listNames bool
	)
	cmd := &cobra.Command{
		Use:   "tentacle-bench",
		Short: "Measure Tentacle's speed, scale and footprint, and print a table",
		Long: `Measure Tentacle against the figures of docs/PERFORMANCE.md and print a table
(or JSON with -o json). Fleet scenarios run a real tentacle-server process and
N simulated agents in this process, each with its own certificate and mutual-TLS
session running the agent's own session code (only the Docker engine is
simulated); they run once per --agents size. Docker scenarios run a real agent
and the local Docker engine with a registry this program starts on 127.0.0.1.

A missed target is reported in the MET column, never as an error.`,
		Example: `  make bench                                   # everything, 100, 1000 and 5000 agents
  tentacle-bench --agents 1000 --scenarios dispatch,fanout
  tentacle-bench -o json > bench.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all := allScenarios()
			if listNames {
				for _, s := range all {
					fmt.Fprintf(cmd.OutOrStdout(), "%-10s %s\n", s.name, s.about)
				}
				return nil
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: use table or json", output)
			}
			var chosen []scenario
			for _, n := range names {
				i := slices.IndexFunc(all, func(s scenario) bool { return s.name == n })
				if i < 0 {
					return fmt.Errorf("--scenarios: unknown scenario %q (tentacle-bench --list shows them)", n)
				}
				chosen = append(chosen, all[i])
			}
			if len(names) == 0 {
				chosen = all
			}
			for _, n := range agents {
				if n < 1 {
					return fmt.Errorf("--agents: %d: every fleet size must be at least 1", n)
				}
			}
			for _, name := range []string{"tentacle-server", "tentacle", "tentaclectl"} {
				if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
					return fmt.Errorf("--bin-dir: %s: %v (make build puts the binaries in ./bin)", filepath.Join(binDir, name), err)
				}
			}
			if workDir == "" {
				dir, err := os.MkdirTemp("", "tentacle-bench-")
				if err != nil {
					return err
				}
				workDir = dir
				if !keep {
					defer os.RemoveAll(dir)
				}
			}
			b := &bench{binDir: binDir, workDir: workDir, progress: cmd.ErrOrStderr()}
			r := &Report{Command: "tentacle-bench " + strings.Join(os.Args[1:], " "), Machine: machine(), Started: time.Now().UTC().Format(time.RFC3339)}
			defer b.runCleanups()
			// Fleet scenarios run size by size, so that one fleet (set up
			// once per size) serves every fleet scenario of that size.
			type run struct {
				s scenario
				n int
			}
			var runs []run
			for _, n := range agents {
				for _, s := range chosen {
					if s.fleet {
						runs = append(runs, run{s, n})
					}
				}
			}
			for _, s := range chosen {
				if !s.fleet {
					runs = append(runs, run{s, 0})
				}
			}
			for _, rn := range runs {
				if err := cmd.Context().Err(); err != nil {
					return err
				}
				b.logf("scenario %s, agents %d", rn.s.name, rn.n)
				figs, err := rn.s.run(cmd.Context(), b, rn.n)
				if err != nil {
					return fmt.Errorf("scenario %s (agents %d): %w", rn.s.name, rn.n, err)
				}
				r.Figures = append(r.Figures, figs...)
			}
			if output == "json" {
				return r.writeJSON(cmd.OutOrStdout())
			}
			return r.writeTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntSliceVar(&agents, "agents", []int{100, 1000, 5000}, "fleet sizes for the fleet scenarios")
	cmd.Flags().StringSliceVar(&names, "scenarios", nil, "scenarios to run (default all; --list shows them)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().StringVar(&binDir, "bin-dir", "bin", "directory holding tentacle-server, tentacle and tentaclectl")
	cmd.Flags().StringVar(&workDir, "work-dir", "", "directory for data dirs (default a temporary one, removed at the end)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary work directory")
	cmd.Flags().BoolVar(&listNames, "list", false, "list the scenarios and exit")
	return cmd
}

// machine describes where the figures come from.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	docker := "no docker"
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output(); err == nil {
		docker = "Docker " + strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d cores (%s), %s/%s, %s, %s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version(), docker)
}
