package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/internal/ownerperm"
)

// LoadOrCreateHostKey returns the host key stored at path, creating an
// ed25519 key there (OpenSSH PEM format, mode 0600, parent directories 0700)
// if the file does not exist. A key that others can read is tightened to
// 0600 on load. Concurrent callers agree on one key: a new key is written to
// a temporary file and linked into place, which fails if another process won.
func LoadOrCreateHostKey(path string) (gossh.Signer, error) {
	signer, err := loadHostKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return signer, err
	}
	if err := createHostKey(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return loadHostKey(path)
}

func loadHostKey(path string) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse host key %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("restrict host key mode: %w", err)
		}
	}
	return signer, nil
}

func createHostKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate host key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "devmesh agent host key")
	if err != nil {
		return fmt.Errorf("encode host key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := ownerperm.Dir(dir); err != nil {
		return fmt.Errorf("create host key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".hostkey-*")
	if err != nil {
		return fmt.Errorf("create host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; say so explicitly anyway, as
	// this is the one property of the file that matters.
	err = errors.Join(tmp.Chmod(0o600), writeAll(tmp, pem.EncodeToMemory(block)), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("write host key: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		// Some file systems cannot hard-link; a rename is atomic too, it
		// just cannot tell that another process got there first.
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("install host key: %w", err)
	}
	return nil
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}
