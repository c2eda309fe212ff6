package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/version"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// render prints msg as one JSON document with -o json, else the table.
func (c *cli) render(msg proto.Message, table func(w io.Writer)) error {
	if c.output == "json" {
		return c.printJSON(msg)
	}
	tw := newTable(c.stdout)
	table(tw)
	return tw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// printJSON writes protojson with every field present, so that scripts see
// "connected": false and empty lists rather than missing keys. protojson's
// spacing is deliberately unstable; re-indenting gives one stable layout.
func (c *cli) printJSON(msg proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		return err
	}
	return c.writeIndented(b)
}

func (c *cli) writeIndented(b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := c.stdout.Write(out.Bytes())
	return err
}

// row writes one tab-separated table row.
func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// cell makes a server-supplied string safe for one table cell: no tabs or
// newlines to break the layout, no escape sequences to drive the terminal.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// formatDate shows a day, e.g. when a certificate expires.
func (c *cli) formatDate(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().In(c.loc).Format("2006-01-02")
}

func (c *cli) formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().In(c.loc).Format("2006-01-02 15:04:05")
}

// expired reports whether ts is set and not in the future.
func (c *cli) expired(ts *timestamppb.Timestamp) bool {
	return ts != nil && !ts.AsTime().After(c.now())
}

// formatAge says how long ago ts was, at the precision a human needs.
func (c *cli) formatAge(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "never"
	}
	d := c.now().Sub(ts.AsTime())
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

// Enum values for humans: TASK_STATE_PULLING → pulling.
func enumName(s, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s, prefix)), "_", "-")
}

func deploymentState(s tentaclev1.DeploymentState) string {
	return enumName(s.String(), "DEPLOYMENT_STATE_")
}

func taskState(s tentaclev1.TaskState) string { return enumName(s.String(), "TASK_STATE_") }

func failureKind(k tentaclev1.FailureKind) string { return enumName(k.String(), "FAILURE_KIND_") }

func (c *cli) printVersion() error {
	v := struct {
		Version  string `json:"version"`
		Go       string `json:"go"`
		Platform string `json:"platform"`
	}{version.Version, runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
	if c.output == "json" {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return c.writeIndented(b)
	}
	_, err := fmt.Fprintf(c.stdout, "tentaclectl %s (%s %s)\n", v.Version, v.Go, v.Platform)
	return err
}
