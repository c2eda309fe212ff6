package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// pinTag returns the digest the application's image tag points to now,
// asked of the registry with the caller's own credentials; "" when it
// cannot be resolved, after a warning: the release is then pinned by its
// first pull instead.
func (c *cli) pinTag(cmd *cobra.Command, app, tag string) string {
	apps, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListApplicationsResponse, error) {
		return admin.ListApplications(ctx, &tentaclev1.ListApplicationsRequest{})
	})
	if err != nil {
		// CreateRelease, which comes next, reports what is wrong.
		return ""
	}
	for _, a := range apps.GetApplications() {
		if a.GetName() != app {
			continue
		}
		ref := a.GetImageRepository() + ":" + tag
		ctx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
		defer cancel()
		digest, err := resolveDigest(ctx, ref)
		if err != nil {
			fmt.Fprintf(c.stderr, "warning: cannot resolve %s to a digest: %v\n"+
				"warning: the release is created without one; the first pull pins the digest the tag points to then (for a digest now: docker login to the registry, or pass --digest; --no-resolve skips this step)\n",
				ref, err)
			return ""
		}
		return digest
	}
	return ""
}

// resolveDigest asks the registry which manifest ref (repository:tag)
// points to, with the credentials of docker's config.json ($DOCKER_CONFIG
// or ~/.docker) and its credential helpers. Registries on localhost and
// 127.0.0.1 are spoken to over plain HTTP, as Docker does.
func resolveDigest(ctx context.Context, ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(tag, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithContext(ctx))
	var terr *transport.Error
	if errors.As(err, &terr) {
		host := tag.RegistryStr()
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return "", fmt.Errorf("unauthorized (HTTP %d): docker's config.json has no accepted credentials for %s; run `docker login %s`", terr.StatusCode, host, host)
		case http.StatusNotFound:
			return "", fmt.Errorf("not found (HTTP 404): %s has no tag %s", tag.Context(), tag.TagStr())
		}
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}
