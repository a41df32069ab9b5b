package tunnel

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// VSCodeURL is the link that opens dir on the OpenSSH host alias in VS
// Code's Remote - SSH: vscode://vscode-remote/ssh-remote+ALIAS/DIR. dir
// must be absolute (a Windows workspace's "C:/src" or "C:\src" too).
func VSCodeURL(alias, dir string) (string, error) {
	dir = strings.ReplaceAll(dir, `\`, "/")
	if len(dir) >= 2 && dir[1] == ':' { // C:/src
		dir = "/" + dir
	}
	if !strings.HasPrefix(dir, "/") {
		return "", fmt.Errorf("directory %q: want an absolute path in the workspace", dir)
	}
	if strings.ContainsAny(alias, "/ \t") {
		return "", fmt.Errorf("host %q: VS Code cannot open it (an admin's OWNER/WS has no OpenSSH host name)", alias)
	}
	return "vscode://vscode-remote/ssh-remote+" + alias + (&url.URL{Path: path.Clean(dir)}).EscapedPath(), nil
}

// Opener is the command that opens a URL on the local desktop: xdg-open
// (Linux and the BSDs, when a graphical session is there), open (macOS),
// rundll32's URL handler (Windows). ok is false without a desktop.
func Opener(goos string, getenv func(string) string, link string) (name string, args []string, ok bool) {
	switch goos {
	case "darwin":
		return "open", []string{link}, true
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler", link}, true
	}
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return "", nil, false
	}
	return "xdg-open", []string{link}, true
}
