//go:build !unix && !windows

package docker

// diskSpace is unknown where the agent cannot ask the operating system.
func diskSpace(string) (free, total uint64) { return 0, 0 }
