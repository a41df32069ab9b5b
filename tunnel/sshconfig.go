package tunnel

import (
	"errors"
	"fmt"
	"strings"
)

// Markers of the block config-ssh manages in ~/.ssh/config. Nothing
// outside them is ever changed.
const (
	BlockStart = "# ------------START-DEVMESH-----------"
	BlockEnd   = "# ------------END-DEVMESH-------------"
)

// ErrBrokenBlock: the file has unpaired or repeated block markers, so
// where the managed block ends cannot be known.
var ErrBrokenBlock = errors.New("broken devmesh block")

// SSHConfig is what the managed block says.
type SSHConfig struct {
	// DevmeshPath is the absolute path of the devmesh binary that
	// ProxyCommand runs.
	DevmeshPath string
	// ConfigDir, if set, is passed to it as DEVMESH_CONFIG_DIR (for a
	// configuration directory other than the default).
	ConfigDir string
	// KnownHostsFile is the devmesh-managed known_hosts file.
	KnownHostsFile string
	// Coordinator is the coordinator's URL, for the comment.
	Coordinator string
	// Aliases get their own Host entries (devmesh.WS, devmesh.WS.AGENT),
	// so that VS Code and JetBrains Gateway list them; "devmesh.*"
	// covers workspaces created later too.
	Aliases []string
	// Windows renders the block for Windows' OpenSSH, which starts
	// ProxyCommand with CreateProcess, not a shell: the binary's full
	// path in double quotes, the configuration directory as a flag
	// (there is no env), and forward slashes in file paths.
	Windows bool
}

// Block renders the managed block, markers included, ending in a newline.
func (c SSHConfig) Block() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("%s", BlockStart)
	line("# Managed by `devmesh config-ssh` for %s.", c.Coordinator)
	line("# Changes inside this block are overwritten: run `devmesh config-ssh` again instead.")
	for _, a := range c.Aliases {
		line("Host %s", a)
		line("  HostKeyAlias %s", a)
	}
	proxy := quoteWord(c.DevmeshPath) + " ssh --stdio %n"
	if c.ConfigDir != "" {
		proxy = "env DEVMESH_CONFIG_DIR=" + quoteWord(c.ConfigDir) + " " + proxy
	}
	knownHosts := c.KnownHostsFile
	if c.Windows {
		proxy = windowsQuote(c.DevmeshPath) + " ssh --stdio %n"
		if c.ConfigDir != "" {
			proxy = windowsQuote(c.DevmeshPath) + " ssh --stdio --config-dir " + windowsQuote(c.ConfigDir) + " %n"
		}
		knownHosts = strings.ReplaceAll(knownHosts, `\`, "/")
	}
	line("Host %s*", AliasPrefix)
	line("  ProxyCommand %s", escapePercent(proxy, "%n"))
	line("  UserKnownHostsFile %s", quoteConfigArg(escapePercent(knownHosts, "")))
	line("  StrictHostKeyChecking yes")
	line("  UpdateHostKeys no")
	line("  CheckHostIP no")
	// OpenSSH's own order puts ChaCha20-Poly1305 first, which costs the
	// agent far more CPU than AES-GCM (see Ciphers).
	line("  Ciphers %s", strings.Join(Ciphers(), ","))
	line("  ConnectTimeout 60")
	line("  ServerAliveInterval 15")
	line("  ServerAliveCountMax 3")
	line("  LogLevel ERROR")
	line("%s", BlockEnd)
	return b.String()
}

// windowsQuote quotes s as one argument for CreateProcess's command-line
// parsing: in double quotes, with backslashes doubled only where they
// precede a quote (a Windows path has no quotes, but may end in one
// backslash, like C:\).
func windowsQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, c := range s {
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteRune(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// escapePercent doubles the % signs of s (ssh_config expands %-tokens),
// except in the token keep.
func escapePercent(s, keep string) string {
	if keep == "" {
		return strings.ReplaceAll(s, "%", "%%")
	}
	parts := strings.Split(s, keep)
	for i := range parts {
		parts[i] = strings.ReplaceAll(parts[i], "%", "%%")
	}
	return strings.Join(parts, keep)
}

// quoteConfigArg double-quotes an ssh_config argument with spaces.
func quoteConfigArg(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + strings.ReplaceAll(s, `"`, ``) + `"`
	}
	return s
}

// ReplaceBlock returns config with its managed block replaced by block,
// or block appended (after a blank line) if it has none. Every line
// outside the block is kept byte for byte.
func ReplaceBlock(config, block string) (string, error) {
	lines := strings.SplitAfter(config, "\n")
	start, end, err := findBlock(lines)
	if err != nil {
		return "", err
	}
	if start < 0 {
		if config == "" {
			return block, nil
		}
		sep := "\n"
		if !strings.HasSuffix(config, "\n") {
			sep = "\n\n"
		} else if strings.HasSuffix(config, "\n\n") {
			sep = ""
		}
		return config + sep + block, nil
	}
	var b strings.Builder
	for _, l := range lines[:start] {
		b.WriteString(l)
	}
	b.WriteString(block)
	for _, l := range lines[end+1:] {
		b.WriteString(l)
	}
	return b.String(), nil
}

// findBlock returns the line indexes of the markers, or -1, -1.
func findBlock(lines []string) (start, end int, err error) {
	start, end = -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case BlockStart:
			if start >= 0 {
				return 0, 0, fmt.Errorf("%w: two start markers (lines %d and %d)", ErrBrokenBlock, start+1, i+1)
			}
			start = i
		case BlockEnd:
			if start < 0 || end >= 0 {
				return 0, 0, fmt.Errorf("%w: an end marker without its start marker (line %d)", ErrBrokenBlock, i+1)
			}
			end = i
		}
	}
	if start >= 0 && end < 0 {
		return 0, 0, fmt.Errorf("%w: a start marker without its end marker (line %d)", ErrBrokenBlock, start+1)
	}
	return start, end, nil
}
