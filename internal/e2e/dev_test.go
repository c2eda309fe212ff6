package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

var exportRE = regexp.MustCompile(`(TENTACLE_[A-Z_]+)=(\S+)`)

// TestDevModeREADMEPath is the README's first screen: `tentacle-server dev`,
// then the tentaclectl commands it prints, with an image from a private
// registry whose credentials are in ~/.docker/config.json (as after
// `docker login`).
func TestDevModeREADMEPath(t *testing.T) {
	docker := requireDocker(t)
	buildBinaries(t)
	reg := testimage.StartRegistry(t, "dev-user", "dev-pass")
	reg.Push(t, "demo/hello", "1.0", testimage.Image(t))
	removeContainers(t, docker, "e2e-dev-hello")

	home := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("dev-user:dev-pass"))
	os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host(), auth)), 0o600)
	t.Setenv("HOME", home)

	dev := start(t, "tentacle-server", "dev", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	s := &system{t: t, home: home}
	waitFor(t, "dev mode's printed commands", 60*time.Second, func() bool {
		for _, m := range exportRE.FindAllStringSubmatch(dev.out.String(), -1) {
			switch m[1] {
			case "TENTACLE_SERVER":
				s.addr = m[2]
			case "TENTACLE_TOKEN":
				s.token = m[2]
			case "TENTACLE_CA_FILE":
				s.dataDir = filepath.Dir(filepath.Dir(m[2])) // DATA/pki/ca.crt
			}
		}
		return s.addr != "" && s.token != "" && s.dataDir != ""
	})
	if !strings.Contains(dev.out.String(), "tentaclectl deploy --app hello --release 1.27 --env dev --wait") {
		t.Fatalf("dev mode does not print the deploy command:\n%s", dev.out.String())
	}
	waitFor(t, "the local agent to connect", 30*time.Second, func() bool {
		var ts targetsJSON
		s.json(&ts, "targets")
		return len(ts.Targets) == 1 && ts.Targets[0].Connected && ts.Targets[0].Environment == "dev"
	})
	s.ok("app", "create", "e2e-dev-hello", "--image", reg.Host()+"/demo/hello", "--env", "GREETING=hello", "--ready-after", "1s")
	s.ok("release", "create", "--app", "e2e-dev-hello", "--tag", "1.0")
	out := s.ok("deploy", "--app", "e2e-dev-hello", "--release", "1.0", "--env", "dev", "--wait")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("deploy --wait output:\n%s", out)
	}
	if c := inspect(t, docker, "e2e-dev-hello"); !c.State.Running {
		t.Fatalf("container not running: %+v", c.State)
	}
}
