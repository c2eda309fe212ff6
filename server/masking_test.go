package server

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// lockedBuffer collects the server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSensitiveValueNeverStoredInClear goes the whole way: a sensitive
// variable is set, released and deployed; the agent pushes logs and an
// event holding the secret (once split across two chunks). The database
// file and its WAL, the stored log, the API answers, the audit log and the
// server's own log never hold the secret, while a plain value is stored
// as it is.
func TestSensitiveValueNeverStoredInClear(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	s := startServerLogging(t, zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel)))
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	const plain = "visible-marker-value-123"
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	for _, req := range []*tentaclev1.SetVariableRequest{
		setVar("web", "DB_PASSWORD", testSecret, true, nil),
		setVar("web", "PUBLIC", plain, false, nil),
	} {
		if _, err := c.SetVariable(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	dep, ac, stream, a := releaseAndReceive(t, s, c, certPEM, keyPEM)
	task := a.GetTaskId()

	// An event whose message holds the secret; the ack says it is stored.
	if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: &tentaclev1.TaskEvent{
		TaskId: task, Sequence: 1, State: tentaclev1.TaskState_TASK_STATE_STARTING, Message: "connecting with " + testSecret,
	}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetEventAck().GetSequence() != 1 {
		t.Fatalf("event ack: %v, %v", m, err)
	}

	split := len(testSecret) / 2
	chunks := []string{
		"password is " + testSecret + "\n",
		"again: " + testSecret[:split],
		testSecret[split:] + " and " + plain + "\n",
	}
	push, err := ac.PushLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var off uint64
	for _, ch := range chunks {
		if err := push.Send(&tentaclev1.PushLogsRequest{TaskId: task, Offset: off, Data: []byte(ch)}); err != nil {
			t.Fatal(err)
		}
		off += uint64(len(ch))
		resp, err := push.Recv()
		if err != nil || resp.GetStoredOffset() != off {
			t.Fatalf("push: stored %d, %v; want %d", resp.GetStoredOffset(), err, off)
		}
	}
	push.CloseSend()

	stars := strings.Repeat("*", len(testSecret))
	want := "password is " + stars + "\n" +
		// The part of the split secret that was stored before its end
		// arrived stays as it is: the agent masks before sending, the
		// server can only mask from the chunk where the secret completes.
		"again: " + testSecret[:split] + stars[split:] + " and " + plain + "\n"
	rl, err := c.ReadTaskLog(ctx, &tentaclev1.ReadTaskLogRequest{TaskId: task})
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	for {
		r, err := rl.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, r.GetData()...)
	}
	if string(stored) != want {
		t.Errorf("stored log:\n%q\nwant\n%q", stored, want)
	}

	got, err := c.GetDeployment(ctx, &tentaclev1.GetDeploymentRequest{Id: dep.GetDeployment().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if msg := got.GetTasks()[0].GetMessage(); msg != "connecting with ********" {
		t.Errorf("task message = %q, want the secret masked", msg)
	}
	list, err := c.ListVariables(ctx, &tentaclev1.ListVariablesRequest{Application: "web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range list.GetVariables() {
		if v.GetName() == "DB_PASSWORD" && (v.GetValue() != "" || !v.GetSensitive()) {
			t.Errorf("ListVariables shows %v", v)
		}
	}
	recs, _ := c.ListAuditRecords(ctx, &tentaclev1.ListAuditRecordsRequest{})
	found := false
	for _, r := range recs.GetRecords() {
		if strings.Contains(r.String(), testSecret) {
			t.Errorf("audit record holds the secret: %v", r)
		}
		found = found || (r.GetAction() == "SetVariable" && r.GetObject() == "variable/web/DB_PASSWORD (no scope)" && r.GetOutcome() == "ok")
	}
	if !found {
		t.Errorf("no audit record of setting DB_PASSWORD in %v", recs.GetRecords())
	}

	var db []byte
	for _, name := range []string{"tentacle.db", "tentacle.db-wal"} {
		b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		db = append(db, b...)
	}
	if bytes.Contains(db, []byte(testSecret)) {
		t.Error("the database file or its WAL holds the secret in clear")
	}
	if !bytes.Contains(db, []byte(plain)) {
		t.Error("the database holds no copy of the plain value: the check above proves nothing")
	}
	if strings.Contains(logs.String(), testSecret) {
		t.Error("the server's log holds the secret")
	}
}
