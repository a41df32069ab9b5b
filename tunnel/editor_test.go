package tunnel

import (
	"slices"
	"testing"
)

func TestVSCodeURL(t *testing.T) {
	for _, tc := range []struct{ alias, dir, want string }{
		{"devmesh.dev", "/home/alice/src", "vscode://vscode-remote/ssh-remote+devmesh.dev/home/alice/src"},
		{"devmesh.dev.main", "/srv/my project/", "vscode://vscode-remote/ssh-remote+devmesh.dev.main/srv/my%20project"},
		{"devmesh.win", `C:\Users\alice`, "vscode://vscode-remote/ssh-remote+devmesh.win/C:/Users/alice"},
		{"devmesh.dev", "/a/../b#c?d", "vscode://vscode-remote/ssh-remote+devmesh.dev/b%23c%3Fd"},
	} {
		got, err := VSCodeURL(tc.alias, tc.dir)
		if err != nil || got != tc.want {
			t.Errorf("VSCodeURL(%q, %q) = %q, %v; want %q", tc.alias, tc.dir, got, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"devmesh.dev", "src"}, {"devmesh.dev", ""}, {"devmesh.bob/dev", "/src"}} {
		if got, err := VSCodeURL(bad[0], bad[1]); err == nil {
			t.Errorf("VSCodeURL(%q, %q) = %q, want an error", bad[0], bad[1], got)
		}
	}
}

func TestOpener(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	const link = "vscode://x"
	for _, tc := range []struct {
		goos string
		env  map[string]string
		want []string // command and arguments; nil: no desktop
	}{
		{"linux", nil, nil},
		{"linux", map[string]string{"DISPLAY": ":0"}, []string{"xdg-open", link}},
		{"freebsd", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, []string{"xdg-open", link}},
		{"darwin", nil, []string{"open", link}},
		{"windows", nil, []string{"rundll32", "url.dll,FileProtocolHandler", link}},
	} {
		name, args, ok := Opener(tc.goos, env(tc.env), link)
		got := append([]string{name}, args...)
		if ok != (tc.want != nil) || (ok && !slices.Equal(got, tc.want)) {
			t.Errorf("Opener(%s, %v) = %q, %v; want %q", tc.goos, tc.env, got, ok, tc.want)
		}
	}
}
