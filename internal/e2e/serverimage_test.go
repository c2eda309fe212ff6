package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// TestServerImage builds the image of install/server.Dockerfile from a
// static tentacle-server, runs it as compose.yaml does (a named volume on
// /data, port 8443 published), and drives it with the real tentaclectl: the
// bootstrap token in the logs, the CA copied out of the volume, and the data
// surviving a restart without a second bootstrap token.
func TestServerImage(t *testing.T) {
	cli := requireDocker(t)
	buildBinaries(t) // tentaclectl
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)

	root := imageModuleRoot(t)
	dockerfile, err := os.ReadFile(filepath.Join(root, "install", "server.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}

	// The static binary, as make build produces it.
	bin := filepath.Join(t.TempDir(), "tentacle-server")
	gb := exec.Command("go", "build", "-o", bin, "./cmd/tentacle-server")
	gb.Dir = root
	gb.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("go build tentacle-server: %v\n%s", err, out)
	}
	serverBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	suffix := imageRandomHex(t)
	tag := "tentacle-test/server:" + suffix
	buildTestImage(ctx, t, cli, tag, map[string][]byte{"Dockerfile": dockerfile, "tentacle-server": serverBin})

	vol, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: "tentacle-test-server-data-" + suffix, Labels: map[string]string{"tentacle-test": "server-image"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.VolumeRemove(context.Background(), vol.Name, true); err != nil {
			t.Errorf("remove volume %s: %v", vol.Name, err)
		}
	})

	port := nat.Port("8443/tcp")
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: tag, ExposedPorts: nat.PortSet{port: {}}, Labels: map[string]string{"tentacle-test": "server-image"}},
		&container.HostConfig{
			// HostPort "" lets the engine pick a free port on 127.0.0.1.
			PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: ""}}},
			Binds:        []string{vol.Name + ":/data"},
		}, nil, nil, "tentacle-test-server-"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	// Registered after the volume's cleanup, so it runs first: the volume
	// cannot be removed while a container uses it.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- logs of the server container ---\n%s", imageContainerLogs(context.Background(), t, cli, id))
		}
		if err := cli.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.User != "65532:65532" {
		t.Errorf("container runs as user %q, want 65532:65532", info.Config.User)
	}

	var token string
	waitFor(t, "the bootstrap token in the container's logs", 15*time.Second, func() bool {
		tokens := bootstrapTokens(imageContainerLogs(ctx, t, cli, id))
		if len(tokens) > 0 {
			token = tokens[0]
		}
		return token != ""
	})

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	copyFileOutOfContainer(ctx, t, cli, id, "/data/pki/ca.crt", caFile)

	home := t.TempDir()
	ctl := func(args ...string) (string, string, error) {
		addr := publishedLoopbackAddr(ctx, t, cli, id, port)
		cmd := exec.Command(filepath.Join(binDir, "tentaclectl"), append([]string{"--server", addr, "--ca-file", caFile, "--token", token, "--timeout", "5s"}, args...)...)
		// Nothing from the environment or a config file of the user running
		// the test: the flags alone must do.
		cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "PATH=" + os.Getenv("PATH")}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := ctl(args...)
		if err != nil {
			t.Fatalf("tentaclectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	// The port is published when the container starts, before the server
	// listens: wait for the API to answer.
	waitAPI := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, errOut, err := ctl("env", "list", "-o", "json")
			if err == nil {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: tentaclectl env list: %v\nstdout: %s\nstderr: %s", what, err, out, errOut)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitAPI("the server's admin API")

	ok("env", "create", "prod")
	var join struct{ Token string }
	out := ok("token", "create", "--env", "prod", "-o", "json")
	if err := json.Unmarshal([]byte(out), &join); err != nil || join.Token == "" {
		t.Fatalf("token create -o json: %v: no token in\n%s", err, out)
	}

	if err := cli.ContainerRestart(ctx, id, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if again, err := cli.ContainerInspect(ctx, id); err != nil {
		t.Fatal(err)
	} else if again.State == nil || !again.State.Running || again.State.StartedAt == info.State.StartedAt {
		t.Fatalf("the container was not restarted: state %+v", again.State)
	}
	// The store is in the volume: the first token still works, prod is
	// still there, and no second bootstrap token is printed.
	envs := waitAPI("the admin API after the restart")
	if !strings.Contains(envs, `"prod"`) {
		t.Errorf("env list after the restart does not show prod:\n%s", envs)
	}
	logs := imageContainerLogs(ctx, t, cli, id)
	if tokens := bootstrapTokens(logs); len(tokens) != 1 {
		t.Errorf("the logs of both runs hold %d bootstrap tokens, want exactly the first run's:\n%s", len(tokens), logs)
	}
	if n := strings.Count(logs, "Bootstrap admin token"); n != 1 {
		t.Errorf("%q appears %d times in the logs of both runs, want 1", "Bootstrap admin token", n)
	}
}

func imageModuleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("find module root: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func imageRandomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// buildTestImage builds tag with the classic builder from a context holding
// files, and removes the image when the test ends.
func buildTestImage(ctx context.Context, t *testing.T, cli *client.Client, tag string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		mode := int64(0o644)
		if name != "Dockerfile" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      map[string]string{"tentacle-test": "server-image"},
	})
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	defer resp.Body.Close()
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})
	// The build's outcome is in its JSON message stream, not the status.
	var log strings.Builder
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("build %s: read output: %v\n%s", tag, err, log.String())
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" || msg.ErrorDetail != nil {
			t.Fatalf("build %s: %s\n%s", tag, msg.Error, log.String())
		}
	}
}

// imageContainerLogs is the container's stdout and stderr so far, over all its
// starts.
func imageContainerLogs(ctx context.Context, t *testing.T, cli *client.Client, id string) string {
	t.Helper()
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Logf("container logs: %v", err)
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Logf("container logs: %v", err)
	}
	return out.String()
}

// bootstrapTokens are the admin tokens printed on lines of their own.
func bootstrapTokens(logs string) []string {
	var tokens []string
	for _, line := range strings.Split(logs, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "tntadm_") {
			tokens = append(tokens, line)
		}
	}
	return tokens
}

// publishedLoopbackAddr is the 127.0.0.1 address the engine published port on.
func publishedLoopbackAddr(ctx context.Context, t *testing.T, cli *client.Client, id string, port nat.Port) string {
	t.Helper()
	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.NetworkSettings != nil {
		for _, b := range info.NetworkSettings.Ports[port] {
			if b.HostIP == "127.0.0.1" && b.HostPort != "" {
				return "127.0.0.1:" + b.HostPort
			}
		}
	}
	t.Fatalf("container publishes no 127.0.0.1 port for %s (state %v)", port, info.State)
	return ""
}

// copyFileOutOfContainer copies the regular file src out of the container to
// dst.
func copyFileOutOfContainer(ctx context.Context, t *testing.T, cli *client.Client, id, src, dst string) {
	t.Helper()
	rc, _, err := cli.CopyFromContainer(ctx, id, src)
	if err != nil {
		t.Fatalf("copy %s out of the container: %v", src, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("copy %s out of the container: no regular file in the archive: %v", src, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
}
