package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrNoContainer is FindContainer's answer when the host has no container
// of the application.
var ErrNoContainer = errors.New("no such container")

// Why FollowLogs ended without an error.
const (
	EndContainerStopped = "container stopped"
	EndOfLog            = "end of log"
)

// Container is an application's running (or stopped) container, as a live
// tail needs it.
type Container struct {
	ID   string
	Name string // the prefixed name, e.g. "web" or "ra-web"
	// TaskID is the task that created it (its tentacle.task label); empty
	// for a container made by hand.
	TaskID string
	// TTY: the engine returns its log raw instead of multiplexed.
	TTY bool
}

// LogOptions select which part of a container's log FollowLogs streams.
type LogOptions struct {
	Since     time.Time // zero: from the start
	TailLines int64     // the last N lines only; 0: all
	Follow    bool      // keep streaming new lines until the container stops
}

// FindContainer returns the application's container on this host, by the
// Deployer's naming (prefix followed by the application). When there is
// none it returns the name it looked for and ErrNoContainer.
func (d *Deployer) FindContainer(ctx context.Context, app string) (Container, error) {
	name := d.prefix + app
	c, err := d.api.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return Container{Name: name}, ErrNoContainer
	}
	if err != nil {
		return Container{Name: name}, fmt.Errorf("inspect %s: %w", name, err)
	}
	out := Container{ID: c.ID, Name: name}
	if c.Config != nil {
		out.TaskID, out.TTY = c.Config.Labels[LabelTask], c.Config.Tty
	}
	return out, nil
}

// FollowLogs writes the container's log to w, stdout and stderr
// interleaved as the engine returns them, until the log ends or ctx does.
// It returns why the log ended (EndContainerStopped when following,
// EndOfLog otherwise), or the error that stopped it: ctx's, w's, or the
// engine's. w is written from this goroutine only, and a Write that blocks
// stops the reading of the engine's log, which is how a slow reader slows
// the tail down instead of filling memory.
func (d *Deployer) FollowLogs(ctx context.Context, c Container, opts LogOptions, w io.Writer) (string, error) {
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Tail: "all"}
	if opts.TailLines > 0 {
		lo.Tail = strconv.FormatInt(opts.TailLines, 10)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	rc, err := d.api.ContainerLogs(ctx, c.ID, lo)
	if err != nil {
		return "", fmt.Errorf("read the log of %s: %w", c.Name, err)
	}
	defer rc.Close()
	// The engine's response body does not always notice ctx once the
	// headers are in; closing it does end a blocked read.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	if c.TTY {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err != nil {
		return "", fmt.Errorf("read the log of %s: %w", c.Name, err)
	}
	if opts.Follow {
		return EndContainerStopped, nil
	}
	return EndOfLog, nil
}
