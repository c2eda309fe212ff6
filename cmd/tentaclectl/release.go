package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newReleaseCmd() *cobra.Command {
	return groupCmd("release", "Create and list releases (an application pinned to an image)",
		c.newReleaseCreateCmd(), c.newReleaseListCmd("list"))
}

func (c *cli) newReleaseCreateCmd() *cobra.Command {
	var app, tag, ver, digest string
	var noResolve bool
	cmd := &cobra.Command{
		Use:   "create --app APP --tag TAG [--version V] [--digest sha256:…] [--no-resolve]",
		Short: "Create a release of an application",
		Long: `Create a release: the application's image at TAG, with a snapshot of its
run spec. The release is immutable; its version (by default the tag) names it
in deploy --release.

The release is pinned to the digest the tag points to now: tentaclectl asks
the registry itself, with your own registry credentials (docker's config.json
in $DOCKER_CONFIG or ~/.docker, and its credential helpers; registries on
localhost and 127.0.0.1 over plain HTTP). When that fails (no credentials,
registry unreachable) it warns and creates the release without a digest: the
first pull then pins the digest the tag points to at that time. --digest pins
a digest you give; --no-resolve skips asking the registry.`,
		Example: `  tentaclectl release create --app web --tag 1.4.2
  tentaclectl release create --app web --tag latest --version 2024.06.01 \
      --digest sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := spec.ValidateName("--app", app); err != nil {
				return badValue("%v", err)
			}
			if err := spec.ValidateTag(tag); err != nil {
				return badValue("--tag: %v", err)
			}
			if cmd.Flags().Changed("version") && strings.TrimSpace(ver) == "" {
				return badValue("--version is empty: leave it out to use the tag")
			}
			if digest != "" {
				if err := spec.ValidateDigest(digest); err != nil {
					return badValue("--digest: %v", err)
				}
			}
			if digest == "" && !noResolve {
				digest = c.pinTag(cmd, app, tag)
			}
			req := &tentaclev1.CreateReleaseRequest{Application: app, ImageTag: tag, Version: ver, ImageDigest: digest}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.CreateReleaseResponse, error) {
				return admin.CreateRelease(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				r := resp.GetRelease()
				fmt.Fprintf(w, "created release %s of %s: %s\n", cell(r.GetVersion()), cell(r.GetApplication()), cell(imageRef(r)))
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "application (required)")
	fl.StringVar(&tag, "tag", "", "image tag (required)")
	fl.StringVar(&ver, "version", "", "release version, unique per application (default: the tag)")
	fl.StringVar(&digest, "digest", "", "pin the image digest, sha256:<64 hex digits>")
	fl.BoolVar(&noResolve, "no-resolve", false, "do not ask the registry for the tag's digest: the first pull pins it")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

// newReleaseListCmd builds "release list", also registered as "releases".
func (c *cli) newReleaseListCmd(use string) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:     use + " [--app APP]",
		Short:   "List releases",
		Example: "  tentaclectl release list --app web\n  tentaclectl releases -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if app != "" {
				if err := spec.ValidateName("--app", app); err != nil {
					return badValue("%v", err)
				}
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListReleasesResponse, error) {
				return admin.ListReleases(ctx, &tentaclev1.ListReleasesRequest{Application: app})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "APP", "VERSION", "IMAGE", "DIGEST", "CREATED")
				for _, r := range resp.GetReleases() {
					row(w, cell(r.GetApplication()), cell(r.GetVersion()),
						cell(r.GetImageRepository()+":"+r.GetImageTag()), shortDigest(r.GetImageDigest()), c.formatTime(r.GetCreatedAt()))
				}
			})
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "only this application's releases")
	if use == "list" {
		cmd.Aliases = []string{"ls"}
	} else {
		cmd.Short += " (same as release list)"
	}
	return cmd
}

// imageRef is the full reference a release runs: repository:tag@digest.
func imageRef(r *tentaclev1.Release) string {
	ref := r.GetImageRepository() + ":" + r.GetImageTag()
	if r.GetImageDigest() != "" {
		ref += "@" + r.GetImageDigest()
	}
	return ref
}

// shortDigest keeps enough of a digest to tell releases apart in a table.
func shortDigest(d string) string {
	const keep = len("sha256:") + 12
	switch {
	case d == "":
		return "(on first pull)"
	case len(d) > keep:
		return cell(d[:keep])
	}
	return cell(d)
}
