package service

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	ks "github.com/kardianos/service"
)

type fakeService struct {
	ks.Service // nil: only Status and Platform are called
	st         ks.Status
	err        error
}

func (f fakeService) Status() (ks.Status, error) { return f.st, f.err }
func (f fakeService) Platform() string           { return "unix-systemv" }

func TestSysvStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	present := filepath.Join(dir, "tentacle")
	if err := os.WriteFile(present, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	exit1 := errors.New("exit status 1")
	for _, tc := range []struct {
		name    string
		svc     fakeService
		script  string
		want    ks.Status
		wantErr error
	}{
		{"running", fakeService{st: ks.StatusRunning}, present, ks.StatusRunning, nil},
		{"stopped", fakeService{err: exit1}, present, ks.StatusStopped, nil},
		{"missing", fakeService{err: exit1}, filepath.Join(dir, "none"), ks.StatusUnknown, ks.ErrNotInstalled},
	} {
		st, err := sysvController{Service: tc.svc, script: tc.script}.Status()
		if st != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: Status() = %v, %v; want %v, %v", tc.name, st, err, tc.want, tc.wantErr)
		}
	}
	if _, ok := NewController(fakeService{}).(sysvController); !ok {
		t.Error("NewController does not wrap unix-systemv")
	}
}
