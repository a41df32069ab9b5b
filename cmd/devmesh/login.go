package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/certpin"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

type loginOptions struct {
	username      string
	passwordStdin bool
	fingerprint   string
}

func newLoginCmd() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login URL --username NAME",
		Short: "Log in to a coordinator (on a fresh one, create its first admin)",
		Long: `Log in to the coordinator at URL and store the session in the configuration
directory ($DEVMESH_CONFIG_DIR, default ~/.config/devmesh).

If the coordinator has no users yet, this creates the first account, an
admin, with the given username and password. URL defaults to $DEVMESH_URL.

For a coordinator serving its self-signed certificate (devmesh server
--tls-self-signed), give the certificate's SHA-256 fingerprint, which the
server printed, with --fingerprint; on a terminal, login shows the
fingerprint and asks instead. The pin is stored with the session, and every
later command accepts only that certificate.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := os.Getenv(cliconfig.EnvURL)
			if len(args) == 1 {
				url = args[0]
			}
			if url == "" {
				return errors.New("missing coordinator URL: devmesh login URL --username NAME")
			}
			return runLogin(cmd, url, o)
		},
	}
	cmd.Flags().StringVarP(&o.username, "username", "u", "", "your username")
	cmd.Flags().BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from stdin instead of prompting")
	cmd.Flags().StringVar(&o.fingerprint, "fingerprint", "", "SHA-256 fingerprint of the coordinator's self-signed certificate, to pin (default $"+certpin.EnvFingerprint+")")
	cmd.MarkFlagRequired("username")
	return cmd
}

func runLogin(cmd *cobra.Command, url string, o loginOptions) error {
	if o.username == "" {
		return errors.New("missing --username")
	}
	ctx := cmd.Context()
	dir, err := cliconfig.Dir()
	if err != nil {
		return err
	}
	fp := o.fingerprint
	if fp == "" {
		fp = os.Getenv(certpin.EnvFingerprint)
	}
	anon, err := client.New(url, "", client.WithFingerprint(fp))
	if err != nil {
		return err
	}
	info, err := anon.BuildInfo(ctx)
	var untrusted *client.UntrustedError
	if errors.As(err, &untrusted) && fp == "" {
		if fp, err = confirmPin(cmd, untrusted); err != nil {
			return err
		}
		if anon, err = client.New(url, "", client.WithFingerprint(fp)); err != nil {
			return err
		}
		info, err = anon.BuildInfo(ctx)
	}
	if err != nil {
		if client.IsTransportExplained(err) {
			return err
		}
		return fmt.Errorf("reach the coordinator at %s: %w", anon.URL(), err)
	}
	if anon.URL().Scheme == "http" && !isLoopbackHost(anon.URL().Hostname()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s is plain HTTP: your password and session token cross the network unencrypted. Ask for HTTPS (devmesh server --tls-self-signed).\n", anon.URL())
	}
	stderr := cmd.ErrOrStderr()
	var sess client.Session
	if !info.Setup {
		fmt.Fprintf(stderr, "%s has no users yet: creating the first account, %q, as admin.\n", anon.URL(), o.username)
		pw, err := readPassword(cmd, passwordPrompt{fromStdin: o.passwordStdin, prompt: "New password: ", confirm: true})
		if err != nil {
			return err
		}
		req := client.LoginRequest{Username: o.username, Password: pw}
		sess, err = anon.CreateFirstUser(ctx, req)
		if client.ErrorCode(err) == client.CodeAlreadySetUp {
			// Someone else set the server up meanwhile; try a normal login.
			sess, err = anon.Login(ctx, req)
		}
		if err != nil {
			return err
		}
	} else {
		pw, err := readPassword(cmd, passwordPrompt{fromStdin: o.passwordStdin, prompt: fmt.Sprintf("Password for %s: ", o.username)})
		if err != nil {
			return err
		}
		if sess, err = anon.Login(ctx, client.LoginRequest{Username: o.username, Password: pw}); err != nil {
			return err
		}
	}
	creds := cliconfig.Credentials{URL: anon.URL().String(), Token: sess.Token, Username: sess.User.Username, Fingerprint: anon.Fingerprint()}
	if err := cliconfig.Save(dir, creds); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (%s).\n", creds.URL, sess.User.Username, sess.User.Role)
	return err
}
