//go:build linux

// Package systemdtest runs a Debian bookworm container with systemd as PID 1
// so that tests can exercise the agent as a real systemd service: install,
// start, crash and restart, reboot, uninstall.
//
// The image is built from nothing but the Debian archive: debootstrap makes a
// minimal root filesystem with systemd, which is imported into the local
// engine as ImageTag. Both the image and the root filesystem tarball are
// cached, so only the first run on a machine pays for debootstrap.
//
// It is for tests only: nothing outside _test.go files may import it.
package systemdtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

const (
	// ImageTag names the image in the engine. Bump the trailing number
	// whenever the build below changes, so that caches are not reused.
	ImageTag = "tentacle-test/systemd:bookworm-1"

	// Suite is the Debian release the image is made of.
	Suite = "bookworm"

	// DefaultMirror is used unless TENTACLE_DEBIAN_MIRROR names another.
	DefaultMirror = "http://deb.debian.org/debian"

	// DefaultCachePath keeps the root filesystem tarball, unless
	// TENTACLE_SYSTEMD_CACHE names another file.
	DefaultCachePath = "/var/cache/tentacle-test/systemd-bookworm-1.tar"

	// Packages are added to debootstrap's minbase variant.
	Packages = "systemd,systemd-sysv,dbus,ca-certificates"
)

// CachePath is where the root filesystem tarball is kept.
func CachePath() string {
	if p := os.Getenv("TENTACLE_SYSTEMD_CACHE"); p != "" {
		return p
	}
	return DefaultCachePath
}

func mirror() string {
	if m := os.Getenv("TENTACLE_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return DefaultMirror
}

func required() bool { return os.Getenv("TENTACLE_REQUIRE_DOCKER") == "1" }

// skipOrFail skips the test, or fails it when TENTACLE_REQUIRE_DOCKER=1:
// CI never counts a skipped Docker test as passing.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if required() {
		t.Fatalf("%s (TENTACLE_REQUIRE_DOCKER=1)", msg)
	}
	t.Skip(msg)
}

var imageMu sync.Mutex

// RequireImage makes sure ImageTag exists in the engine and returns it. In
// order it reuses the image, imports the cached tarball, or runs debootstrap
// (which needs root and the debootstrap command; without them the test is
// skipped, or fails under TENTACLE_REQUIRE_DOCKER=1).
func RequireImage(t testing.TB, cli *client.Client) string {
	t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	ctx := context.Background()
	if _, err := cli.ImageInspect(ctx, ImageTag); err == nil {
		return ImageTag
	}

	cache := CachePath()
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		skipOrFail(t, "systemdtest: cannot create the image cache directory: %v", err)
	}
	// Other test processes (go test runs packages in parallel) may be
	// building the same tarball: one builds, the others wait for it.
	unlock, err := lockFile(cache + ".lock")
	if err != nil {
		t.Fatalf("systemdtest: lock %s: %v", cache+".lock", err)
	}
	defer unlock()
	if _, err := cli.ImageInspect(ctx, ImageTag); err == nil {
		return ImageTag
	}
	if _, err := os.Stat(cache); err != nil {
		if _, lerr := exec.LookPath("debootstrap"); lerr != nil {
			skipOrFail(t, "systemdtest: image %s is not in the engine, no cached rootfs at %s, and debootstrap is not installed (apt-get install -y debootstrap)", ImageTag, cache)
		}
		if os.Geteuid() != 0 {
			skipOrFail(t, "systemdtest: image %s is not cached and building it with debootstrap needs root", ImageTag)
		}
		start := time.Now()
		t.Logf("systemdtest: building %s with debootstrap from %s (a few minutes, once per machine)", cache, mirror())
		if err := buildRootfs(cache); err != nil {
			t.Fatalf("systemdtest: %v", err)
		}
		t.Logf("systemdtest: rootfs built in %s", time.Since(start).Round(time.Second))
	}
	start := time.Now()
	if err := importImage(ctx, cli, cache); err != nil {
		t.Fatalf("systemdtest: import %s: %v", cache, err)
	}
	t.Logf("systemdtest: imported %s as %s in %s", cache, ImageTag, time.Since(start).Round(time.Millisecond))
	return ImageTag
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// buildRootfs runs debootstrap, trims the result for use as a container and
// writes it as a tarball to dst (atomically: a failed build leaves nothing).
func buildRootfs(dst string) error {
	work, err := os.MkdirTemp(filepath.Dir(dst), ".rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include="+Packages, Suite, root, mirror()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("debootstrap: %v\n%s", err, tail(out, 4000))
	}
	if err := prepareRootfs(root); err != nil {
		return err
	}
	tmp := filepath.Join(work, "rootfs.tar")
	// GNU tar keeps what a root filesystem needs (owners by number, hard
	// links, device nodes, capabilities in xattrs) with no code of ours.
	out, err = exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-cf", tmp, ".").CombinedOutput()
	if err != nil {
		return fmt.Errorf("tar rootfs: %v\n%s", err, tail(out, 4000))
	}
	return os.Rename(tmp, dst)
}

// prepareRootfs makes the debootstrap result fit for booting in a container.
func prepareRootfs(root string) error {
	// Units that cannot work in an unprivileged container, masked so the
	// system reaches "running" rather than "degraded".
	masked := []string{
		"systemd-remount-fs.service",    // / is the container's overlay
		"getty.target",                  // no consoles to log in on
		"console-getty.service",         //
		"sys-kernel-config.mount",       // host kernel filesystems
		"sys-kernel-debug.mount",        //
		"sys-kernel-tracing.mount",      //
		"sys-fs-fuse-connections.mount", //
		"systemd-modules-load.service",  // no kernel modules from here
		"kmod-static-nodes.service",     //
		"systemd-sysctl.service",        // /proc/sys is read-only
		"systemd-udevd.service",         // no udev in a container
		"systemd-udev-trigger.service",  //
		"systemd-pstore.service",        //
		"systemd-firstboot.service",     //
		"systemd-journald-audit.socket", // audit needs CAP_AUDIT_*
		"proc-sys-fs-binfmt_misc.automount",
		"proc-sys-fs-binfmt_misc.mount",
		"systemd-binfmt.service",
	}
	dir := filepath.Join(root, "etc/systemd/system")
	for _, u := range masked {
		p := filepath.Join(dir, u)
		os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return err
		}
	}
	// An empty machine-id lets systemd make one per container at boot.
	if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	os.Remove(filepath.Join(root, "var/lib/dbus/machine-id"))
	// The hostname and resolv.conf are the engine's (host networking).
	os.Remove(filepath.Join(root, "etc/hostname"))
	// Smaller image: package downloads and lists are not needed to dpkg -i.
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*", "var/log/*.log", "var/cache/debconf/*-old"} {
		matches, _ := filepath.Glob(filepath.Join(root, glob))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	return nil
}

// importImage streams the tarball into the engine as ImageTag.
func importImage(ctx context.Context, cli *client.Client, tarball string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, ImageTag, image.ImportOptions{
		Message: "tentacle systemd test image: debootstrap " + Suite + " minbase + " + Packages,
		Changes: []string{`CMD ["/sbin/init"]`, "ENV container=docker"},
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	// The answer is a JSON message stream; an error arrives inside it.
	dec := json.NewDecoder(bufio.NewReader(rc))
	for {
		var m struct {
			Error       string
			ErrorDetail struct{ Message string }
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
	_, err = cli.ImageInspect(ctx, ImageTag)
	return err
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
