package spec

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Grammar from the distribution reference spec, kept to what a release needs.
var (
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	hostComponentRE = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$`)
	tagRE           = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE        = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// Repository is an image repository: registry host and path, no tag or digest.
type Repository struct {
	// Registry is the registry host with optional port, e.g. "registry.example.com:5000".
	// Repositories without a host are on Docker Hub: "docker.io".
	Registry string
	// Path is the repository path within the registry, e.g. "team/web".
	Path string
}

// String gives the repository as Docker writes it, host included.
func (r Repository) String() string { return r.Registry + "/" + r.Path }

// ParseRepository parses "host[:port]/path" or "path" (Docker Hub) and
// rejects tags and digests: those belong to a release, not an application.
func ParseRepository(s string) (Repository, error) {
	if s == "" {
		return Repository{}, fmt.Errorf("image repository is empty: give e.g. registry.example.com:5000/team/web")
	}
	if len(s) > 255 {
		return Repository{}, fmt.Errorf("image repository %q is longer than 255 characters", s)
	}
	if strings.Contains(s, "@") {
		return Repository{}, fmt.Errorf("image repository %q contains a digest: give the digest to the release instead", s)
	}
	var r Repository
	first, rest, hasSlash := strings.Cut(s, "/")
	if hasSlash && (strings.ContainsAny(first, ".:[") || first == "localhost") {
		r.Registry, r.Path = first, rest
	} else {
		if !hasSlash {
			if host, _, ok := strings.Cut(s, ":"); ok && strings.Contains(host, ".") {
				return Repository{}, fmt.Errorf("image repository %q has no repository path: give e.g. %s/team/web", s, s)
			}
		}
		r.Registry, r.Path = "docker.io", s
	}
	if err := validRegistry(r.Registry); err != nil {
		return Repository{}, fmt.Errorf("image repository %q: %w", s, err)
	}
	// Docker Hub has several names and implies "library/" for official
	// images; one canonical form keeps credentials and digests matching.
	switch r.Registry {
	case "index.docker.io", "registry-1.docker.io":
		r.Registry = "docker.io"
	}
	if r.Registry == "docker.io" && !strings.Contains(r.Path, "/") {
		r.Path = "library/" + r.Path
	}
	last := r.Path[strings.LastIndex(r.Path, "/")+1:]
	if strings.Contains(last, ":") {
		return Repository{}, fmt.Errorf("image repository %q contains a tag: give the tag to the release instead", s)
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !pathComponentRE.MatchString(c) {
			return Repository{}, fmt.Errorf("image repository %q: invalid path component %q: use lowercase letters, digits and separators . _ -", s, c)
		}
	}
	if n := len(r.String()); n > 255 {
		return Repository{}, fmt.Errorf("image repository %q is %d characters long as %s: at most 255", s, n, r.String())
	}
	return r, nil
}

func validRegistry(host string) error {
	if strings.HasPrefix(host, "[") {
		return fmt.Errorf("IPv6 registry hosts are not supported: use a DNS name")
	}
	h, port, hasPort := strings.Cut(host, ":")
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || strings.Trim(port, "0123456789") != "" || n < 1 || n > 65535 {
			return fmt.Errorf("invalid registry port %q: use 1-65535", port)
		}
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	for _, c := range strings.Split(h, ".") {
		if !hostComponentRE.MatchString(c) {
			return fmt.Errorf("invalid registry host %q", h)
		}
	}
	return nil
}

// ValidateTag checks an image tag.
func ValidateTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("image tag %q is invalid: use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", tag)
	}
	return nil
}

// ValidateDigest checks a "sha256:<64 hex>" digest.
func ValidateDigest(d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("image digest %q is invalid: use sha256: followed by 64 lowercase hex digits", d)
	}
	return nil
}

func validIP(s string) bool { return net.ParseIP(s) != nil }
