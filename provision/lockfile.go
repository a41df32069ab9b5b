package provision

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/devmesh/devmesh/provision/tfprovider"
)

// lockFileName is terraform's dependency lock file in a module directory.
const lockFileName = ".terraform.lock.hcl"

// pinProvider rewrites the lock file at path so that its block for the
// devmesh provider is entry (see tfprovider.Mirror.LockFileEntry), keeping
// the blocks of other providers. The author's lock file records a hash of
// the provider on their machine, which would never match ours.
func pinProvider(path, entry string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out := dropLockBlock(string(old), tfprovider.Address)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return os.WriteFile(path, []byte(out+entry), 0o644)
}

// dropLockBlock removes the top-level `provider "addr" {` ... `}` block from
// a lock file, which terraform writes in canonical form: the block opens
// and closes on lines of their own, with the closing brace in column one.
func dropLockBlock(lock, addr string) string {
	var b strings.Builder
	open := `provider "` + addr + `" {`
	skipping := false
	for _, line := range strings.SplitAfter(lock, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !skipping && trimmed == open:
			skipping = true
		case skipping:
			if strings.TrimRight(line, "\r\n") == "}" {
				skipping = false
			}
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}
