//go:build !windows

package main

import "context"

// runAsService reports false: only Windows has a service manager that
// starts the agent directly; elsewhere systemd or launchd run it as a
// foreground process.
func runAsService(context.Context, string, func(context.Context) error) (bool, error) {
	return false, nil
}
