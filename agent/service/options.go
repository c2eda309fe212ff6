package service

import (
	ks "github.com/kardianos/service"
)

// unixOptions are the kardianos options on Linux: our own systemd unit;
// SysV and OpenRC use the library's scripts with the same arguments.
func unixOptions(spec Spec, description string) (ks.KeyValue, error) {
	unit, err := SystemdUnit(spec, description)
	if err != nil {
		return nil, err
	}
	return ks.KeyValue{"SystemdScript": kardianosScript(unit)}, nil
}

// windowsOptions are the SCM settings. Key names and value types are
// kardianos v1.2.4's (service_windows.go): it reads them with type
// assertions, so OnFailureResetPeriod must be an int and the delay a
// time.Duration string, or the library silently uses its defaults.
func windowsOptions() ks.KeyValue {
	return ks.KeyValue{
		"StartType":        "automatic",
		"DelayedAutoStart": true, // start after boot settles, when Docker Desktop/dockerd is up
		// Recovery actions: restart 5s after every crash; the failure
		// count resets after a day without one.
		"OnFailure":              "restart",
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   86400,
	}
}
