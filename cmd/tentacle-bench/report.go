package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Figure is one measured figure of the table.
type Figure struct {
	// Scenario is the scenario that measured it (see scenarios).
	Scenario string `json:"scenario"`
	// Name says what was measured, e.g. "dispatch latency p99".
	Name string `json:"name"`
	// Agents is the fleet size it was measured with; 0 when it does not
	// apply.
	Agents int     `json:"agents,omitempty"`
	Value  float64 `json:"value"`
	// Unit of Value: "ms", "s", "KiB", "MiB", "MB/s", "%", "ratio".
	Unit string `json:"unit"`
	// Target is the goal, e.g. "≤ 50 ms"; empty when there is none.
	Target string `json:"target,omitempty"`
	// Met says whether Value meets Target; nil when there is no target.
	Met *bool `json:"met,omitempty"`
	// Note is what limits or qualifies the figure.
	Note string `json:"note,omitempty"`
}

// atMost and atLeast build a figure with a target.
func atMost(f Figure, limit float64) Figure {
	met := f.Value <= limit
	f.Met = &met
	f.Target = "≤ " + formatValue(limit, f.Unit)
	return f
}

func atLeast(f Figure, limit float64) Figure {
	met := f.Value >= limit
	f.Met = &met
	f.Target = "≥ " + formatValue(limit, f.Unit)
	return f
}

func formatValue(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	switch {
	case v >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if unit == "ratio" || unit == "" {
		return s
	}
	return s + " " + unit
}

// Report is the whole run: the machine, the command, the figures.
type Report struct {
	Command string   `json:"command"`
	Machine string   `json:"machine"`
	Started string   `json:"started"`
	Figures []Figure `json:"figures"`
}

func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *Report) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "%s\n%s, %s\n\n", r.Command, r.Machine, r.Started)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tAGENTS\tVALUE\tTARGET\tMET\tNOTE")
	for _, f := range r.Figures {
		agents, met := "-", "-"
		if f.Agents > 0 {
			agents = strconv.Itoa(f.Agents)
		}
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
		}
		target := f.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Scenario, f.Name, agents, formatValue(f.Value, f.Unit), target, met,
			strings.ReplaceAll(f.Note, "\t", " "))
	}
	return tw.Flush()
}
