// Package specpb converts the run spec between its Go form (internal/spec)
// and the wire (proto/tentacle/v1): one conversion for the server, the agent
// and tentaclectl, so a field cannot reach one and miss another.
package specpb

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// ToProto converts a run spec for the wire.
func ToProto(s spec.RunSpec) *tentaclev1.RunSpec {
	out := &tentaclev1.RunSpec{
		Command: s.Command, RestartPolicy: s.RestartPolicy,
		Entrypoint: s.Entrypoint, WorkingDir: s.WorkingDir, User: s.User,
		RestartMaxRetries: uint32(max(s.RestartMaxRetries, 0)), Labels: s.Labels,
		MemoryBytes: s.MemoryBytes, NanoCpus: s.NanoCPUs,
		StopSignal: s.StopSignal, PullPolicy: s.PullPolicy, Strategy: s.Strategy,
	}
	if s.HealthTimeout > 0 {
		out.HealthTimeout = durationpb.New(s.HealthTimeout)
	}
	for _, e := range s.Env {
		out.Env = append(out.Env, &tentaclev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, &tentaclev1.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: p.Protocol, HostIp: p.HostIP})
	}
	if s.ReadyAfter > 0 {
		out.ReadyAfter = durationpb.New(s.ReadyAfter)
	}
	if s.StopTimeout > 0 {
		out.StopTimeout = durationpb.New(s.StopTimeout)
	}
	for _, v := range s.Volumes {
		out.Volumes = append(out.Volumes, &tentaclev1.VolumeMount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	for _, n := range s.Networks {
		out.Networks = append(out.Networks, &tentaclev1.NetworkAttachment{Name: n.Name, Aliases: n.Aliases})
	}
	if h := s.Healthcheck; h != nil {
		out.Healthcheck = &tentaclev1.Healthcheck{Disable: h.Disable, Command: h.Command, Retries: uint32(max(h.Retries, 0))}
		if h.Interval > 0 {
			out.Healthcheck.Interval = durationpb.New(h.Interval)
		}
		if h.Timeout > 0 {
			out.Healthcheck.Timeout = durationpb.New(h.Timeout)
		}
	}
	if s.Log.Driver != "" || len(s.Log.Options) > 0 {
		out.Log = &tentaclev1.LogConfig{Driver: s.Log.Driver, Options: s.Log.Options}
	}
	for _, h := range s.ExtraHosts {
		out.ExtraHosts = append(out.ExtraHosts, &tentaclev1.ExtraHost{Hostname: h.Name, Ip: h.IP})
	}
	return out
}

// FromProto converts a run spec from the wire; nil gives the zero spec.
func FromProto(p *tentaclev1.RunSpec) spec.RunSpec {
	s := spec.RunSpec{
		Command: p.GetCommand(), RestartPolicy: p.GetRestartPolicy(),
		Entrypoint: p.GetEntrypoint(), WorkingDir: p.GetWorkingDir(), User: p.GetUser(),
		RestartMaxRetries: int(p.GetRestartMaxRetries()), Labels: p.GetLabels(),
		MemoryBytes: p.GetMemoryBytes(), NanoCPUs: p.GetNanoCpus(),
		StopSignal: p.GetStopSignal(), PullPolicy: p.GetPullPolicy(), Strategy: p.GetStrategy(),
		Log: spec.LogConfig{Driver: p.GetLog().GetDriver(), Options: p.GetLog().GetOptions()},
	}
	for _, e := range p.GetEnv() {
		s.Env = append(s.Env, spec.EnvVar{Name: e.GetName(), Value: e.GetValue()})
	}
	for _, pm := range p.GetPorts() {
		s.Ports = append(s.Ports, spec.Port{ContainerPort: pm.GetContainerPort(), HostPort: pm.GetHostPort(), Protocol: pm.GetProtocol(), HostIP: pm.GetHostIp()})
	}
	if p.GetReadyAfter() != nil {
		s.ReadyAfter = p.GetReadyAfter().AsDuration()
	}
	if p.GetStopTimeout() != nil {
		s.StopTimeout = p.GetStopTimeout().AsDuration()
	}
	if p.GetHealthTimeout() != nil {
		s.HealthTimeout = p.GetHealthTimeout().AsDuration()
	}
	for _, v := range p.GetVolumes() {
		s.Volumes = append(s.Volumes, spec.Volume{Source: v.GetSource(), Target: v.GetTarget(), ReadOnly: v.GetReadOnly()})
	}
	for _, n := range p.GetNetworks() {
		s.Networks = append(s.Networks, spec.Network{Name: n.GetName(), Aliases: n.GetAliases()})
	}
	if h := p.GetHealthcheck(); h != nil {
		s.Healthcheck = &spec.Healthcheck{Disable: h.GetDisable(), Command: h.GetCommand(), Retries: int(h.GetRetries())}
		if h.GetInterval() != nil {
			s.Healthcheck.Interval = h.GetInterval().AsDuration()
		}
		if h.GetTimeout() != nil {
			s.Healthcheck.Timeout = h.GetTimeout().AsDuration()
		}
	}
	for _, h := range p.GetExtraHosts() {
		s.ExtraHosts = append(s.ExtraHosts, spec.ExtraHost{Name: h.GetHostname(), IP: h.GetIp()})
	}
	return s
}
