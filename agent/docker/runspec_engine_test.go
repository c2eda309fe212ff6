package docker

import (
	"context"
	"slices"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// TestDeployRunSpecFields deploys with the container fields that need the
// engine to check them: a named volume, a bind mount, a user-defined
// network the agent has to create (joined under an alias), memory and CPU
// limits, a label and an extra host.
func TestDeployRunSpecFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	ctx := context.Background()

	volume, netName, bindDir := f.app+"-data", f.app+"-net", t.TempDir()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.cleanup() // the container first: it holds the network and volume
		if err := f.api.NetworkRemove(ctx, netName); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove network %s: %v", netName, err)
		}
		if err := f.api.VolumeRemove(ctx, volume, true); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove volume %s: %v", volume, err)
		}
	})
	if _, err := f.api.NetworkInspect(ctx, netName, network.InspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("network %s exists before the deploy (err %v)", netName, err)
	}

	task := f.task("1.0", digest)
	task.Spec.Volumes = []spec.Volume{{Source: volume, Target: "/data"}, {Source: bindDir, Target: "/conf", ReadOnly: true}}
	task.Spec.Networks = []spec.Network{{Name: netName, Aliases: []string{"api"}}}
	task.Spec.MemoryBytes = 64 << 20
	task.Spec.NanoCPUs = 500_000_000
	task.Spec.Labels = map[string]string{"com.example.team": "platform"}
	task.Spec.ExtraHosts = []spec.ExtraHost{{Name: "db.internal", IP: "10.11.12.13"}}
	if err := task.Spec.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err, rec := f.run(ctx, task)
	if err != nil {
		t.Fatalf("Deploy: %v\nlogs:\n%s", err, rec.logs.String())
	}

	c, err := f.api.ContainerInspect(ctx, res.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	var sawVolume, sawBind bool
	for _, m := range c.Mounts {
		switch {
		case m.Type == mount.TypeVolume && m.Name == volume && m.Destination == "/data" && m.RW:
			sawVolume = true
		case m.Type == mount.TypeBind && m.Source == bindDir && m.Destination == "/conf" && !m.RW:
			sawBind = true
		}
	}
	if !sawVolume || !sawBind {
		t.Errorf("mounts = %+v; want volume %s at /data (rw) and bind %s at /conf (ro)", c.Mounts, volume, bindDir)
	}

	ep := c.NetworkSettings.Networks[netName]
	if ep == nil || !slices.Contains(ep.Aliases, "api") {
		t.Errorf("networks = %+v; want %s with alias api", c.NetworkSettings.Networks, netName)
	}
	n, err := f.api.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect network the agent should have created: %v", err)
	}
	if n.Driver != "bridge" || n.Labels[LabelManaged] != "true" {
		t.Errorf("network %s: driver %q labels %v; want bridge, managed by tentacle", netName, n.Driver, n.Labels)
	}

	if c.HostConfig.Memory != 64<<20 || c.HostConfig.NanoCPUs != 500_000_000 {
		t.Errorf("limits: memory %d nano CPUs %d; want %d and 500000000", c.HostConfig.Memory, c.HostConfig.NanoCPUs, 64<<20)
	}
	if got := c.Config.Labels["com.example.team"]; got != "platform" || c.Config.Labels[LabelApp] != f.app {
		t.Errorf("labels = %v; want com.example.team=platform beside the agent's", c.Config.Labels)
	}
	if !slices.Contains(c.HostConfig.ExtraHosts, "db.internal:10.11.12.13") {
		t.Errorf("extra hosts = %v; want db.internal:10.11.12.13", c.HostConfig.ExtraHosts)
	}
}

// TestDeployPullPolicy checks when the agent asks the registry: a tag that
// is present is used as it is with if-not-present, and a digest that is
// present is pulled again with always.
func TestDeployPullPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	// An engine that has the content may skip the manifest, but a pull
	// always contacts the registry.
	registryRequests := func() int { return len(f.reg.Requests()) }
	deploy := func(task Task, policy string) {
		t.Helper()
		task.Spec.PullPolicy = policy
		res, err, rec := f.run(context.Background(), task)
		if err != nil {
			t.Fatalf("Deploy (pull %q): %v\nlogs:\n%s", policy, err, rec.logs.String())
		}
		if res.Digest != digest {
			t.Errorf("Result.Digest = %s, want %s", res.Digest, digest)
		}
	}

	pushed := registryRequests()
	deploy(f.task("1.0", ""), "") // a tag is pulled by default
	before := registryRequests()
	if before == pushed {
		t.Fatal("the first deploy by tag did not contact the registry")
	}
	deploy(f.task("1.0", ""), spec.PullIfNotPresent)
	if n := registryRequests(); n != before {
		t.Errorf("if-not-present with the tag present made %d registry requests", n-before)
	}
	deploy(f.task("1.0", digest), spec.PullAlways)
	if n := registryRequests(); n == before {
		t.Error("always with the digest present did not contact the registry")
	}
}
