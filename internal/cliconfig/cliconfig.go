// Package cliconfig keeps the CLI's credentials between commands: the
// coordinator URL and a session token, in a JSON file readable only by
// its owner inside $DEVMESH_CONFIG_DIR (default ~/.config/devmesh).
package cliconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/devmesh/devmesh/internal/certpin"
	"github.com/devmesh/devmesh/internal/ownerperm"
)

// Environment variables.
const (
	// EnvDir overrides the configuration directory.
	EnvDir = "DEVMESH_CONFIG_DIR"
	// EnvToken, if set, replaces the stored token (an API token for
	// scripts and CI). EnvURL then names the coordinator; otherwise the
	// stored URL is used. certpin.EnvFingerprint (DEVMESH_FINGERPRINT)
	// then pins its certificate.
	EnvToken = "DEVMESH_TOKEN"
	EnvURL   = "DEVMESH_URL"
)

// credentialsFile is the file name inside the configuration directory.
const credentialsFile = "credentials.json"

// ErrNotLoggedIn means there are no stored credentials.
var ErrNotLoggedIn = errors.New("not logged in: run `devmesh login URL --username NAME`")

// Credentials say which coordinator to talk to and as whom.
type Credentials struct {
	URL      string `json:"url"`
	Token    string `json:"token"`
	Username string `json:"username,omitempty"` // for display only
	// Fingerprint pins the coordinator's self-signed TLS certificate
	// (SHA-256, hex), accepted at login; "" trusts the system's roots.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Dir returns the configuration directory: $DEVMESH_CONFIG_DIR, else
// ~/.config/devmesh.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration directory (set %s): %w", EnvDir, err)
	}
	return filepath.Join(home, ".config", "devmesh"), nil
}

// Path returns the credentials file's path in dir.
func Path(dir string) string { return filepath.Join(dir, credentialsFile) }

// Load reads the credentials stored in dir. It returns ErrNotLoggedIn if
// there are none, and refuses a file that others can read.
func Load(dir string) (Credentials, error) {
	path := Path(dir)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, ErrNotLoggedIn
	}
	if err != nil {
		return Credentials{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Credentials{}, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return Credentials{}, fmt.Errorf("%s is accessible by other users (mode %v): run `chmod 600 %s`, and log in again if others may have read it",
			path, fi.Mode().Perm(), path)
	}
	var c Credentials
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return Credentials{}, fmt.Errorf("read %s: %w", path, err)
	}
	if c.URL == "" || c.Token == "" {
		return Credentials{}, ErrNotLoggedIn
	}
	return c, nil
}

// Resolve returns the credentials a command should use: the stored ones,
// with the token (and then the URL) replaced from the environment when
// EnvToken is set. A stored token is only ever paired with its stored
// URL, so a stray DEVMESH_URL cannot send it elsewhere.
func Resolve(dir string) (Credentials, error) {
	if tok := os.Getenv(EnvToken); tok != "" {
		c, err := Load(dir)
		if err != nil && !errors.Is(err, ErrNotLoggedIn) {
			return Credentials{}, err
		}
		c.Token, c.Username = tok, ""
		if u := os.Getenv(EnvURL); u != "" && u != c.URL {
			// A stored pin belongs to the stored URL only.
			c.URL, c.Fingerprint = u, ""
		}
		if fp := os.Getenv(certpin.EnvFingerprint); fp != "" {
			c.Fingerprint = fp
		}
		if c.URL == "" {
			return Credentials{}, fmt.Errorf("%s is set but no coordinator URL: set %s too", EnvToken, EnvURL)
		}
		return c, nil
	}
	return Load(dir)
}

// Save stores c in dir atomically, creating dir (mode 0700) if needed;
// the file has mode 0600, and on Windows a protected ACL that grants only
// the user (and SYSTEM), set before the token is written.
func Save(dir string, c Credentials) error {
	if err := ownerperm.Dir(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, credentialsFile+".tmp*") // created 0600
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := ownerperm.File(tmp.Name()); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), Path(dir)); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// Remove deletes the stored credentials; it is not an error if there are
// none.
func Remove(dir string) error {
	if err := os.Remove(Path(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
