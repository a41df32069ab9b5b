package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// maxPasswordInput bounds what --password-stdin reads.
const maxPasswordInput = 4 << 10

// passwordPrompt says how to obtain a password.
type passwordPrompt struct {
	fromStdin bool   // --password-stdin: read stdin, no prompt
	prompt    string // shown on stderr when reading from the terminal
	confirm   bool   // ask twice (a new password)
}

// readPassword reads a password from stdin (one line; a trailing newline
// is dropped) or, interactively, from the terminal without echo.
func readPassword(cmd *cobra.Command, p passwordPrompt) (string, error) {
	if p.fromStdin {
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxPasswordInput+1))
		if err != nil {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		if len(b) > maxPasswordInput {
			return "", errors.New("password on stdin is too long")
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return "", errors.New("no password on stdin")
		}
		return pw, nil
	}
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("stdin is not a terminal: pass the password on stdin with --password-stdin")
	}
	pw, err := promptHidden(cmd, f, p.prompt)
	if err != nil {
		return "", err
	}
	if p.confirm {
		again, err := promptHidden(cmd, f, "Repeat the password: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords do not match")
		}
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

func promptHidden(cmd *cobra.Command, f *os.File, prompt string) (string, error) {
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}
