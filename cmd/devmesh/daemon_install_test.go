package main

import (
	"errors"
	"strings"
	"testing"
)

func TestUserUnit(t *testing.T) {
	got := userUnit("/opt/dev mesh/devmesh", map[string]string{"DEVMESH_CONFIG_DIR": "/home/a/.cfg", "DEVMESH_STATE_DIR": "/srv/100%"})
	for _, want := range []string{
		"ExecStart=\"/opt/dev mesh/devmesh\" daemon\n",
		"Environment=DEVMESH_CONFIG_DIR=/home/a/.cfg\nEnvironment=DEVMESH_STATE_DIR=\"/srv/100%%\"\n",
		"Restart=on-failure\n",
		"WantedBy=default.target\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("unit lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TOKEN") {
		t.Errorf("the unit must not carry a token:\n%s", got)
	}
}

func TestDaemonInstallWithoutSystemd(t *testing.T) {
	if systemdPresent() {
		t.Skip("systemd runs here: install would really enable the unit")
	}
	cliEnv(t)
	for _, sub := range []string{"install", "uninstall"} {
		if _, _, err := runCLI(t, "", "daemon", sub); !errors.Is(err, errNoSystemd) {
			t.Errorf("daemon %s without systemd: %v", sub, err)
		}
	}
}
