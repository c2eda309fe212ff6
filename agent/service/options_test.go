package service

import (
	"reflect"
	"testing"

	ks "github.com/kardianos/service"
)

func TestWindowsOptions(t *testing.T) {
	t.Parallel()
	want := ks.KeyValue{
		"StartType":              "automatic",
		"DelayedAutoStart":       true,
		"OnFailure":              "restart",
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   86400,
	}
	got := windowsOptions()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("windowsOptions() = %#v, want %#v", got, want)
	}
	// kardianos reads the period with a type assertion to int.
	if _, ok := got["OnFailureResetPeriod"].(int); !ok {
		t.Errorf("OnFailureResetPeriod is %T, kardianos needs int", got["OnFailureResetPeriod"])
	}
}

func TestUnixOptions(t *testing.T) {
	t.Parallel()
	spec := Spec{Executable: "/usr/local/bin/tentacle", ConfigPath: "/etc/tentacle/agent.yaml", DataDir: "/var/lib/tentacle"}
	got, err := unixOptions(spec, description)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["SystemdScript"] != wantUnit {
		t.Errorf("unixOptions() = %#v, want only SystemdScript", got)
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	spec := Spec{Executable: "/usr/local/bin/tentacle", ConfigPath: "/etc/tentacle/agent.yaml", DataDir: "/var/lib/tentacle",
		ExtraArgs: []string{"--data-dir", "/var/lib/tentacle"}}
	c, err := NewConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "tentacle" || c.Executable != spec.Executable {
		t.Errorf("config %+v", c)
	}
	if want := []string{"run", "--config", "/etc/tentacle/agent.yaml", "--data-dir", "/var/lib/tentacle"}; !reflect.DeepEqual(c.Arguments, want) {
		t.Errorf("Arguments = %q, want %q", c.Arguments, want)
	}
}
