package provision

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Template archives are uncompressed POSIX tar streams (as written by
// archive/tar: ustar, with PAX records for long names). They are not
// gzipped: templates are small text files, an uncompressed archive cannot
// expand past its own size (no decompression bombs), and one size limit
// covers both the upload and what lands on disk. Callers may compress for
// transport.

// Errors returned by Validate, Extract and Pack. Each is wrapped in an
// *ArchiveError naming the offending entry, so errors.Is works.
var (
	ErrArchiveTooLarge  = errors.New("template archive is too large")
	ErrArchiveMalformed = errors.New("template archive is not a valid tar stream")
	ErrUnsafePath       = errors.New("unsafe path in template archive")
	ErrLinkEscape       = errors.New("link in template archive points outside it")
	ErrUnsupportedEntry = errors.New("unsupported entry type in template archive")
)

// ArchiveError reports a problem with one entry of a template archive.
type ArchiveError struct {
	Entry  string // name of the entry as stored in the archive ("" if none)
	Reason string // what is wrong with it, for humans
	Err    error  // one of the Err* sentinels above
}

func (e *ArchiveError) Error() string {
	if e.Entry == "" {
		return fmt.Sprintf("%v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("%v: %q: %s", e.Err, e.Entry, e.Reason)
}

func (e *ArchiveError) Unwrap() error { return e.Err }

func archiveErr(err error, entry, format string, args ...any) error {
	return &ArchiveError{Entry: entry, Reason: fmt.Sprintf(format, args...), Err: err}
}

// entry is one validated archive member.
type entry struct {
	hdr  *tar.Header
	name string // cleaned, slash-separated, relative ("a/b.tf")
	data []byte // regular files only
}

// Validate checks that archive is a template archive that is safe to
// extract: at most maxBytes long (no limit if maxBytes <= 0), a well-formed
// tar stream holding only regular files, directories, symlinks and
// hardlinks, with relative paths that stay inside the root, no path that
// passes through a symlink, symlinks that resolve inside the root, and
// hardlinks to regular files earlier in the archive. It does no I/O.
func Validate(archive []byte, maxBytes int64) error {
	_, err := readArchive(archive, maxBytes)
	return err
}

// readArchive parses and validates archive, returning its entries in order.
func readArchive(archive []byte, maxBytes int64) ([]entry, error) {
	if maxBytes > 0 && int64(len(archive)) > maxBytes {
		return nil, archiveErr(ErrArchiveTooLarge, "", "%d bytes, limit is %d", len(archive), maxBytes)
	}
	tr := tar.NewReader(bytes.NewReader(archive))
	var entries []entry
	kinds := map[string]byte{}   // cleaned name -> typeflag, for links and duplicates
	links := map[string]string{} // symlink name -> target
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, archiveErr(ErrArchiveMalformed, "", "%v", err)
		}
		e, err := checkEntry(hdr, kinds)
		if err != nil {
			return nil, err
		}
		if e.name == "" { // the root itself or a skipped global header
			continue
		}
		if hdr.Typeflag == tar.TypeReg {
			if e.data, err = io.ReadAll(tr); err != nil {
				return nil, archiveErr(ErrArchiveMalformed, hdr.Name, "%v", err)
			}
		}
		if hdr.Typeflag == tar.TypeSymlink {
			links[e.name] = hdr.Linkname
		}
		kinds[e.name] = hdr.Typeflag
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, archiveErr(ErrArchiveMalformed, "", "archive is empty")
	}
	for _, e := range entries {
		if err := checkPathAndLinks(e, kinds, links); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// checkEntry validates one header on its own: type, name, hardlink target.
func checkEntry(hdr *tar.Header, seen map[string]byte) (entry, error) {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader: // e.g. git archive's commit id comment
		return entry{}, nil
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "device files are not allowed")
	case tar.TypeFifo:
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "named pipes are not allowed")
	default:
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "entry type %q is not allowed", hdr.Typeflag)
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return entry{}, err
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return entry{}, archiveErr(ErrUnsafePath, hdr.Name, "only a directory may name the archive root")
		}
		return entry{}, nil
	}
	if prev, ok := seen[name]; ok && !(prev == tar.TypeDir && hdr.Typeflag == tar.TypeDir) {
		return entry{}, archiveErr(ErrUnsafePath, hdr.Name, "duplicate entry")
	}
	if hdr.Typeflag == tar.TypeLink {
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "" {
			return entry{}, archiveErr(ErrLinkEscape, hdr.Name, "hardlink target %q is outside the archive", hdr.Linkname)
		}
		if seen[target] != tar.TypeReg {
			return entry{}, archiveErr(ErrLinkEscape, hdr.Name, "hardlink target %q is not a regular file earlier in the archive", hdr.Linkname)
		}
	}
	return entry{hdr: hdr, name: name}, nil
}

// cleanName turns an archive member name into a clean relative slash path,
// rejecting absolute paths, Windows volume names and any ".." component.
// The archive root ("." or "./") yields "".
func cleanName(name string) (string, error) {
	if name == "" {
		return "", archiveErr(ErrUnsafePath, name, "empty name")
	}
	if strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return "", archiveErr(ErrUnsafePath, name, "name contains NUL or backslash")
	}
	if path.IsAbs(name) || filepath.VolumeName(name) != "" || (len(name) > 1 && name[1] == ':') {
		return "", archiveErr(ErrUnsafePath, name, "absolute path")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", archiveErr(ErrUnsafePath, name, "path contains \"..\"")
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// checkPathAndLinks rejects entries whose parent directories include a
// symlink (so extraction never writes through a link) and symlinks that
// resolve outside the root.
func checkPathAndLinks(e entry, kinds map[string]byte, links map[string]string) error {
	for dir := path.Dir(e.name); dir != "."; dir = path.Dir(dir) {
		if kinds[dir] == tar.TypeSymlink {
			return archiveErr(ErrLinkEscape, e.hdr.Name, "path passes through symlink %q", dir)
		}
		if k, ok := kinds[dir]; ok && k != tar.TypeDir {
			return archiveErr(ErrUnsafePath, e.hdr.Name, "parent %q is not a directory", dir)
		}
	}
	if e.hdr.Typeflag != tar.TypeSymlink {
		return nil
	}
	if _, err := resolveLink(e.name, links, 0); err != nil {
		return archiveErr(ErrLinkEscape, e.hdr.Name, "symlink target %q: %v", e.hdr.Linkname, err)
	}
	return nil
}

// maxLinkHops bounds symlink chains, like the kernel's ELOOP limit.
const maxLinkHops = 40

var errOutside = errors.New("resolves outside the archive")

// resolveLink resolves the symlink name within the archive's own tree, the
// way the kernel would after extraction: each ".." pops a component, each
// component that is itself a symlink in the archive is resolved in turn. It
// returns the resolved path, or errOutside if any step leaves the root.
func resolveLink(name string, links map[string]string, hops int) (string, error) {
	if hops > maxLinkHops {
		return "", errors.New("too many levels of symlinks")
	}
	target := links[name]
	switch {
	case target == "":
		return "", errors.New("empty target")
	case path.IsAbs(target) || strings.Contains(target, `\`):
		return "", errors.New("absolute target")
	}
	stack := splitPath(path.Dir(name))
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", errOutside
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, part)
		cur := strings.Join(stack, "/")
		if _, ok := links[cur]; ok {
			resolved, err := resolveLink(cur, links, hops+1)
			if err != nil {
				return "", err
			}
			stack = splitPath(resolved)
		}
	}
	return strings.Join(stack, "/"), nil
}

func splitPath(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Extract validates archive (with no size limit beyond its own length: an
// uncompressed tar cannot expand) and writes it into dst, which is created
// if needed. Writes go through an os.Root, so even a bug in Validate cannot
// write outside dst. File modes are reduced to 0644 or 0755.
func Extract(archive []byte, dst string) error {
	entries, err := readArchive(archive, 0)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("extract template: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("extract template: %w", err)
	}
	defer root.Close()
	for _, e := range entries {
		if err := extractEntry(root, e); err != nil {
			return fmt.Errorf("extract template: %q: %w", e.name, err)
		}
	}
	return nil
}

func extractEntry(root *os.Root, e entry) error {
	name := filepath.FromSlash(e.name)
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch e.hdr.Typeflag {
	case tar.TypeDir:
		return root.MkdirAll(name, 0o755)
	case tar.TypeSymlink:
		return root.Symlink(e.hdr.Linkname, name)
	case tar.TypeLink:
		return root.Link(filepath.FromSlash(path.Clean(e.hdr.Linkname)), name)
	}
	mode := fs.FileMode(0o644)
	if e.hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(e.data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
