package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/pki"
)

// caCommand rotates the server's CA in three steps; each takes effect when
// the server restarts (agents reconnect within seconds).
func caCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show and rotate the server's CA",
		Long: `Show and rotate the CA that signs the server's and the agents' certificates.

Rotation has three steps; run each, then restart the server:

  begin-rotation   create the next CA. The server trusts both, signs new agent
                   certificates with the next one and asks every connecting agent
                   to renew now; renewal gives agents both CAs.
  finish-rotation  once every agent has renewed: the next CA becomes the active
                   one, the server certificate is reissued from it; the old CA is
                   still trusted for agent certificates, its key is deleted.
  end-rotation     stop trusting the old CA.

Join tokens carry the active CA's hash: create new ones after finish-rotation.
tentaclectl users must fetch the new ca.crt after finish-rotation.`,
		Example: "  tentacle-server ca status --data-dir /var/lib/tentacle-server\n  tentacle-server ca begin-rotation --data-dir /var/lib/tentacle-server",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "", "the server's data directory (required)")
	pkiDir := func() (string, error) {
		if dataDir == "" {
			return "", fmt.Errorf("--data-dir is required")
		}
		return filepath.Join(dataDir, "pki"), nil
	}
	step := func(use, short string, run func(dir string, out io.Writer) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error {
			dir, err := pkiDir()
			if err != nil {
				return err
			}
			if err := run(dir, c.OutOrStdout()); err != nil {
				return err
			}
			return printCAs(dir, c.OutOrStdout())
		}}
	}
	cmd.AddCommand(
		step("status", "Show the CAs and the rotation step", func(string, io.Writer) error { return nil }),
		step("begin-rotation", "Create the next CA (restart the server afterwards)", func(dir string, out io.Writer) error {
			_, err := pki.BeginRotation(dir)
			if err == nil {
				fmt.Fprintln(out, "next CA created: restart the server; agents renew as they connect")
			}
			return err
		}),
		step("finish-rotation", "Make the next CA the active one (restart the server afterwards)", func(dir string, out io.Writer) error {
			err := pki.FinishRotation(dir)
			if err == nil {
				fmt.Fprintln(out, "next CA is now active: restart the server, create new join tokens, give tentaclectl users the new ca.crt")
			}
			return err
		}),
		step("end-rotation", "Stop trusting the old CA (restart the server afterwards)", func(dir string, out io.Writer) error {
			err := pki.EndRotation(dir)
			if err == nil {
				fmt.Fprintln(out, "old CA removed: restart the server")
			}
			return err
		}),
	)
	return cmd
}

func printCAs(dir string, out io.Writer) error {
	// Loading would create a CA in an empty directory; status must not.
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err != nil {
		return fmt.Errorf("no CA in %s: the server creates one on its first start", dir)
	}
	set, _, err := pki.LoadCASet(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "active CA: %s (expires %s)\n", set.Active.Hash(), set.Active.Cert.NotAfter.Format("2006-01-02"))
	if set.Next != nil {
		fmt.Fprintf(out, "next CA:   %s (rotation begun: finish-rotation once every agent has renewed)\n", set.Next.Hash())
	}
	if set.Old != nil {
		fmt.Fprintf(out, "old CA:    %s (still trusted: end-rotation once no agent uses it)\n", pki.SPKIHash(set.Old))
	}
	return nil
}
