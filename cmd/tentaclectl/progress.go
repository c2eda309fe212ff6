package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tentacle-deploy/tentacle/internal/bytesize"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// progressView shows a deployment while deploy --wait or rollback --wait
// follows it. On a terminal it redraws one frame in place: a header and a
// line per target with its state, wave, pull progress and latest message.
// Anywhere else (CI logs, pipes) it never moves the cursor: it prints a line
// per task event, per state change the server made without one (a wave
// starting, a halt) and per tenth of a pull.
type progressView struct {
	c   *cli
	out io.Writer
	// term is the terminal's size; nil, or ok false, when out is none.
	term func() (width, height int, ok bool)

	seen  map[eventKey]bool
	marks map[string]taskMark // per task: what the last printed line showed
	drawn int                 // lines of the frame on screen
	width int                 // of the target column, so that lines align as they come
}

// eventKey identifies a task event: a re-opened watch sends every event
// again, and each is printed once.
type eventKey struct {
	task     string
	sequence uint64
}

// taskMark is what makes a task worth a new line off a terminal.
type taskMark struct {
	state tentaclev1.TaskState
	tenth int // of the pull done, -1 when not pulling or unknown
}

const (
	barWidth = 20
	// defaultWidth is used when the terminal does not say.
	defaultWidth = 80
)

func newProgressView(c *cli, out io.Writer, tasks []*tentaclev1.Task) *progressView {
	p := &progressView{c: c, out: out, seen: map[eventKey]bool{}, marks: map[string]taskMark{}}
	if c.terminal != nil {
		if _, _, ok := c.terminal(out); ok {
			p.term = func() (int, int, bool) { return c.terminal(out) }
		}
	}
	// The tasks as created are the starting point, not news.
	for _, t := range tasks {
		p.marks[t.GetId()] = markOf(t)
	}
	return p
}

func (p *progressView) tty() bool { return p.term != nil }

// update merges msg into final (the deployment as known so far, with every
// event for the JSON output) and shows what changed.
func (p *progressView) update(final, msg *tentaclev1.WatchDeploymentResponse) {
	if msg.GetDeployment() != nil {
		final.Deployment = msg.GetDeployment()
	}
	if len(msg.GetTasks()) > 0 {
		final.Tasks = msg.GetTasks()
	}
	for _, t := range final.GetTasks() {
		p.width = max(p.width, len(cell(t.GetTargetName())))
	}
	var fresh []*tentaclev1.TaskEventRecord
	for _, e := range msg.GetEvents() {
		key := eventKey{e.GetTaskId(), e.GetSequence()}
		if e.GetSequence() != 0 { // 0 is unset: no way to tell repeats apart
			if p.seen[key] {
				continue
			}
			p.seen[key] = true
		}
		final.Events = append(final.Events, e)
		fresh = append(fresh, e)
	}
	if p.tty() {
		p.redraw(final)
		return
	}
	p.printChanges(final, fresh)
}

// detach forgets the frame on screen, after something else was written
// below it (a reconnect notice): the next frame starts under it.
func (p *progressView) detach() { p.drawn = 0 }

func markOf(t *tentaclev1.Task) taskMark {
	m := taskMark{state: t.GetState(), tenth: -1}
	if pct, ok := pullPercent(t); ok {
		m.tenth = pct / 10
	}
	return m
}

// pullPercent is how much of the image a pulling task has, when known.
func pullPercent(t *tentaclev1.Task) (int, bool) {
	total := t.GetProgressTotalBytes()
	if t.GetState() != tentaclev1.TaskState_TASK_STATE_PULLING || total == 0 {
		return 0, false
	}
	return int(min(t.GetProgressBytes(), total) * 100 / total), true
}

// stateDetails say what a task without a message of its own is doing.
var stateDetails = map[tentaclev1.TaskState]string{
	tentaclev1.TaskState_TASK_STATE_WAITING:  "waiting for its wave",
	tentaclev1.TaskState_TASK_STATE_QUEUED:   "queued for the target's agent",
	tentaclev1.TaskState_TASK_STATE_ASSIGNED: "sent to the agent",
	tentaclev1.TaskState_TASK_STATE_ACCEPTED: "accepted by the agent",
}

// taskDetail is the task's latest message, or what its state means.
func taskDetail(t *tentaclev1.Task) string {
	if t.GetMessage() != "" {
		return t.GetMessage()
	}
	return stateDetails[t.GetState()]
}

// rolling reports whether the deployment has waves worth a column.
func rolling(final *tentaclev1.WatchDeploymentResponse) bool {
	if final.GetDeployment().GetRollout().GetWindow() > 0 {
		return true
	}
	for _, t := range final.GetTasks() {
		if t.GetWave() > 1 {
			return true
		}
	}
	return false
}

// printChanges writes the lines for a non-terminal: every new event, then a
// line for each task whose state or pull progress moved without one.
func (p *progressView) printChanges(final *tentaclev1.WatchDeploymentResponse, events []*tentaclev1.TaskEventRecord) {
	tasks := map[string]*tentaclev1.Task{}
	for _, t := range final.GetTasks() {
		tasks[t.GetId()] = t
	}
	waves := rolling(final)
	line := func(clock, taskID, target, state, detail string) {
		wave := ""
		if waves {
			wave = fmt.Sprintf("w%-2d ", tasks[taskID].GetWave())
		}
		fmt.Fprintf(p.out, "%s  %-*s  %s%-9s  %s\n", clock, p.width, target, wave, state, detail)
	}
	for _, e := range events {
		t := tasks[e.GetTaskId()]
		target := cell(t.GetTargetName())
		if t == nil {
			target = "task " + cell(e.GetTaskId())
		}
		line(p.c.formatClock(e.GetOccurredAt()), e.GetTaskId(), target, taskState(e.GetState()), cell(e.GetMessage()))
		if m := p.marks[e.GetTaskId()]; stateRank(e.GetState()) >= stateRank(m.state) {
			p.marks[e.GetTaskId()] = taskMark{state: e.GetState(), tenth: -1}
		}
	}
	for _, t := range final.GetTasks() {
		// The server reads tasks before events, so a task can be behind
		// the events just printed: only a step forward is news.
		m, last := markOf(t), p.marks[t.GetId()]
		switch {
		case stateRank(m.state) > stateRank(last.state):
		case m.state == last.state && m.tenth > last.tenth:
		default:
			continue
		}
		p.marks[t.GetId()] = m
		detail := cell(taskDetail(t))
		if pct, ok := pullPercent(t); ok {
			detail = fmt.Sprintf("%d%% of %s", pct, bytesize.SI(t.GetProgressTotalBytes()))
		}
		line(p.c.formatClock(t.GetUpdatedAt()), t.GetId(), cell(t.GetTargetName()), taskState(t.GetState()), detail)
	}
}

// stateRanks order task states as a task goes through them; the three
// final states share the last place.
var stateRanks = map[tentaclev1.TaskState]int{
	tentaclev1.TaskState_TASK_STATE_WAITING:   1,
	tentaclev1.TaskState_TASK_STATE_QUEUED:    2,
	tentaclev1.TaskState_TASK_STATE_ASSIGNED:  3,
	tentaclev1.TaskState_TASK_STATE_ACCEPTED:  4,
	tentaclev1.TaskState_TASK_STATE_PULLING:   5,
	tentaclev1.TaskState_TASK_STATE_STARTING:  6,
	tentaclev1.TaskState_TASK_STATE_VERIFYING: 7,
	tentaclev1.TaskState_TASK_STATE_SUCCEEDED: 8,
	tentaclev1.TaskState_TASK_STATE_FAILED:    8,
	tentaclev1.TaskState_TASK_STATE_CANCELLED: 8,
}

func stateRank(s tentaclev1.TaskState) int { return stateRanks[s] }

// redraw replaces the frame on the terminal with the current one.
func (p *progressView) redraw(final *tentaclev1.WatchDeploymentResponse) {
	width, height, _ := p.term()
	lines := p.frame(final, width, height)
	var b bytes.Buffer
	if p.drawn > 0 {
		// Up to the frame's first line, then clear to the end of the screen.
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", p.drawn)
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	p.out.Write(b.Bytes())
	p.drawn = len(lines)
}

// frame is the terminal view: a header, then a line per target, each cut
// to the width so that none wraps (a wrapped line would throw off the next
// redraw). With more targets than fit the height, the ones in progress and
// the failed ones come first and the rest are counted.
func (p *progressView) frame(final *tentaclev1.WatchDeploymentResponse, width, height int) []string {
	if width <= 0 {
		width = defaultWidth
	}
	d := final.GetDeployment()
	tasks := final.GetTasks()
	waves := rolling(final)

	var done, wave, lastWave int32
	pulling := false
	for _, t := range tasks {
		if t.GetState() == tentaclev1.TaskState_TASK_STATE_SUCCEEDED {
			done++
		}
		if t.GetState() != tentaclev1.TaskState_TASK_STATE_WAITING {
			wave = max(wave, t.GetWave())
		}
		lastWave = max(lastWave, t.GetWave())
		_, ok := pullPercent(t)
		pulling = pulling || ok
	}
	// What matters first: a narrow terminal cuts the id, not the counts.
	header := fmt.Sprintf("%s %s to %s: %s", cell(d.GetApplication()), cell(d.GetReleaseVersion()), cell(d.GetEnvironment()), deploymentStateOf(d))
	if waves {
		header += fmt.Sprintf(", wave %d of %d", wave, lastWave)
	}
	header += fmt.Sprintf(", %d/%d succeeded (deployment %s)", done, len(tasks), cell(d.GetId()))
	lines := []string{truncate(header, width-1)}

	shown, hidden := p.pick(tasks, height-2)
	for _, t := range shown {
		var b strings.Builder
		fmt.Fprintf(&b, "  %-*s  ", p.width, cell(t.GetTargetName()))
		if waves {
			fmt.Fprintf(&b, "w%-2d ", t.GetWave())
		}
		fmt.Fprintf(&b, "%-9s  ", taskState(t.GetState()))
		if pulling {
			if pct, ok := pullPercent(t); ok {
				n := pct * barWidth / 100
				fmt.Fprintf(&b, "[%s%s] %3d%%  ", strings.Repeat("#", n), strings.Repeat(".", barWidth-n), pct)
			} else {
				b.WriteString(strings.Repeat(" ", barWidth+8))
			}
		}
		if msg := taskDetail(t); msg != "" {
			b.WriteString(cell(msg))
		}
		lines = append(lines, truncate(strings.TrimRight(b.String(), " "), width-1))
	}
	if len(hidden) > 0 {
		lines = append(lines, truncate("  ... "+countStates(hidden), width-1))
	}
	return lines
}

// pick chooses the tasks that fit in rows lines (all when rows is not
// positive or enough), keeping their order; the rest are returned apart.
func (p *progressView) pick(tasks []*tentaclev1.Task, rows int) (shown, hidden []*tentaclev1.Task) {
	if rows <= 0 || len(tasks) <= rows {
		return tasks, nil
	}
	rows-- // for the line that counts the others
	rank := func(t *tentaclev1.Task) int {
		switch t.GetState() {
		case tentaclev1.TaskState_TASK_STATE_FAILED, tentaclev1.TaskState_TASK_STATE_CANCELLED:
			return 1
		case tentaclev1.TaskState_TASK_STATE_WAITING:
			return 2
		case tentaclev1.TaskState_TASK_STATE_SUCCEEDED:
			return 3
		}
		return 0 // in progress
	}
	idx := make([]int, len(tasks))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(rank(tasks[a]), rank(tasks[b])) })
	keep := idx[:rows]
	slices.Sort(keep)
	next := 0
	for i, t := range tasks {
		if next < len(keep) && keep[next] == i {
			shown = append(shown, t)
			next++
		} else {
			hidden = append(hidden, t)
		}
	}
	return shown, hidden
}

// countStates says "12 more: 9 succeeded, 3 waiting".
func countStates(tasks []*tentaclev1.Task) string {
	counts := map[string]int{}
	var order []string
	for _, t := range tasks {
		s := taskState(t.GetState())
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[s], s)
	}
	return fmt.Sprintf("%d more: %s", len(tasks), strings.Join(parts, ", "))
}

// truncate cuts s to at most n runes, marking the cut with "...".
func truncate(s string, n int) string {
	if n <= 3 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}
