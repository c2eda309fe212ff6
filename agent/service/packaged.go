package service

import (
	"os"
	"strings"
)

// PackagedUnitPaths are where the .deb and the .rpm put the systemd unit.
// A unit there belongs to the package manager: the package's scripts enable,
// start and stop it, and removing the package removes it.
var PackagedUnitPaths = []string{"/lib/systemd/system/" + Name + ".service", "/usr/lib/systemd/system/" + Name + ".service"}

// PackagedUnit returns the path of a packaged unit, if one is installed.
func PackagedUnit() (string, bool) {
	for _, p := range PackagedUnitPaths {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// PackageUnit renders the unit the packages ship: the same template
// `tentacle install` writes, so a packaged and a hand-installed agent run
// the same way.
func PackageUnit(executable, configPath, dataDir string) (string, error) {
	unit, err := SystemdUnit(Spec{Executable: executable, ConfigPath: configPath, DataDir: dataDir}, description)
	if err != nil {
		return "", err
	}
	_, rest, _ := strings.Cut(unit, "\n") // the first line says who wrote the file
	return "# Shipped by the tentacle package; removing the package removes it.\n" + rest, nil
}
