package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/certpin"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

// agentEnv is the environment that points an agent at the coordinator of
// creds: its URL and, for a pinned certificate, the fingerprint.
func agentEnv(creds cliconfig.Credentials) string {
	env := "DEVMESH_URL=" + creds.URL
	if creds.Fingerprint != "" {
		env += " " + certpin.EnvFingerprint + "=" + creds.Fingerprint
	}
	return env
}

// confirmPin asks, on a terminal, whether to trust and pin the
// certificate of an untrusted coordinator. Without a terminal it returns
// the error, which says how to pin with --fingerprint.
func confirmPin(cmd *cobra.Command, untrusted *client.UntrustedError) (string, error) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || !isTerminal(cmd.ErrOrStderr()) {
		return "", untrusted
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "The certificate of %s is not signed by an authority this system trusts.\n", untrusted.URL)
	fmt.Fprintf(stderr, "Its SHA-256 fingerprint is:\n  %s\n", untrusted.Fingerprint)
	fmt.Fprintf(stderr, "Compare it with the fingerprint `devmesh server` printed. Trust this certificate from now on? [y/N] ")
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return untrusted.Fingerprint, nil
	}
	return "", errors.New("certificate not trusted: nothing was stored")
}
