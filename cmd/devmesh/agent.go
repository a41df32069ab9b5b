package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/agent"
	"github.com/devmesh/devmesh/internal/certpin"
)

// The agent's credentials come from the environment only: a flag would
// show the token in `ps`.
const (
	envAgentURL   = "DEVMESH_URL"
	envAgentToken = "DEVMESH_AGENT_TOKEN"
)

func newAgentCmd() *cobra.Command {
	var (
		stateDir   string
		verbose    bool
		tokenGrace time.Duration
		shell      string
		logFile    string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the workspace agent (on the workspace's machine)",
		Long: `Run the workspace agent: it joins the tailnet as the workspace's node and
serves SSH to the workspace owner's devices.

It reads the coordinator's URL from DEVMESH_URL and its token from
DEVMESH_AGENT_TOKEN (never from a flag, which would show in ps). For a
coordinator serving its self-signed certificate (--tls-self-signed), set
DEVMESH_FINGERPRINT to the certificate's SHA-256 fingerprint, which
` + "`devmesh server`" + ` prints: the agent then accepts only that certificate. The state
directory keeps the SSH host key and the tailnet node's keys, so a restart
keeps the same host key and address.

A token the coordinator has never accepted is retried for --token-grace
(default 10m): a template's agent starts while its build still runs, and
the build registers the token only when it finishes. A token that was
accepted and is then rejected (the workspace was stopped or deleted) stops
the agent at once, with a non-zero exit; the state directory remembers the
acceptance across restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, token := os.Getenv(envAgentURL), os.Getenv(envAgentToken)
			if url == "" || token == "" {
				return fmt.Errorf("%s and %s must be set: run the agent with the command `devmesh create WS --external` printed", envAgentURL, envAgentToken)
			}
			// Nothing the agent starts inherits the token.
			os.Unsetenv(envAgentToken)
			if stateDir == "" {
				var err error
				if stateDir, err = defaultAgentStateDir(); err != nil {
					return err
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			grace := tokenGrace
			if grace <= 0 {
				grace = -1 // no grace: give up at the first rejection
			}
			logOut := cmd.ErrOrStderr()
			if logFile != "" {
				f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return fmt.Errorf("open the log file: %w", err)
				}
				defer f.Close()
				logOut = f
			}
			a, err := agent.New(agent.Options{
				URL:                url,
				Token:              token,
				Fingerprint:        os.Getenv(certpin.EnvFingerprint),
				StateDir:           stateDir,
				Logger:             slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level})),
				TokenRejectedGrace: grace,
				Shell:              shell,
			})
			if err != nil {
				return err
			}
			if ok, err := runAsService(cmd.Context(), "devmesh-agent", a.Run); ok {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "where the agent keeps its host key and node state (default $XDG_STATE_HOME/devmesh-agent or ~/.local/state/devmesh-agent)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log tailnet details too")
	cmd.Flags().StringVar(&logFile, "log-file", "", "append the log to this file instead of stderr (for a Windows service, which has no console)")
	cmd.Flags().StringVar(&shell, "shell", "", "the shell SSH sessions run (default: the user's login shell; on Windows powershell.exe, or cmd.exe)")
	cmd.Flags().DurationVar(&tokenGrace, "token-grace", agent.DefaultTokenRejectedGrace, "how long to keep retrying a token the coordinator has not accepted yet (0: give up at once)")
	return cmd
}

// defaultAgentStateDir is $XDG_STATE_HOME/devmesh-agent, else
// ~/.local/state/devmesh-agent.
func defaultAgentStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "devmesh-agent"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", errors.New("cannot find a state directory: set --state-dir or XDG_STATE_HOME")
	}
	return filepath.Join(home, ".local", "state", "devmesh-agent"), nil
}
