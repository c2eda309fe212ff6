// Package version holds the build version, set with -ldflags by the Makefile.
package version

// Version is the release version of this build ("dev" when built by go run).
var Version = "dev"
