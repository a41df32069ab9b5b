// Package ownerperm restricts a file or directory holding secrets (the
// CLI's credentials, the daemon's and agent's node state) to the user
// who owns the process: mode 0600/0700 on Unix, and on Windows a
// protected DACL that grants only that user and SYSTEM, so the secret
// does not inherit a broader ACL from its parent folder.
package ownerperm

import "os"

// File restricts path, an existing regular file, to its owner.
func File(path string) error { return restrict(path, false) }

// Dir creates path (and parents) if it does not exist and restricts the
// new directory to its owner; files created in it later inherit that on
// Windows. An existing directory is left as it is: it may be one the
// user chose and shares (say, DEVMESH_CONFIG_DIR=/tmp), so the files
// themselves are restricted with File.
func Dir(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	return restrict(path, true)
}
