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
// gzipped: templates are small text files, and one size limit covers both
// the upload and what lands on disk. Callers may compress for transport.
//
// What lands on disk is at most the archive's own size because the reader
// makes it so, not because tar cannot expand: GNU sparse entries (type 'S'
// or GNU.sparse.* PAX records) describe files far larger than the bytes
// stored, and a header may declare any size. So sparse entries are
// refused, each regular file's declared size is checked against the bytes
// left in the archive and in the budget (the archive's length) before any
// of it is read or allocated, and the files' sizes together never exceed
// the archive's length. Hardlinks add names, not bytes; directories and
// symlinks take a 512-byte header each. Names and symlink targets are at
// most maxPathBytes long, and resolving symlinks costs time linear in the
// archive's size (see linkTree, in linktree.go).

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

// maxPathBytes bounds entry names and symlink targets (Linux's PATH_MAX);
// maxNameBytes bounds one component of a name (NAME_MAX). Longer ones
// would fail to extract anyway.
const (
	maxPathBytes = 4096
	maxNameBytes = 255
)

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
// The regular files' data, held in memory, total at most len(archive).
func readArchive(archive []byte, maxBytes int64) ([]entry, error) {
	if maxBytes > 0 && int64(len(archive)) > maxBytes {
		return nil, archiveErr(ErrArchiveTooLarge, "", "%d bytes, limit is %d", len(archive), maxBytes)
	}
	r := bytes.NewReader(archive)
	tr := tar.NewReader(r)
	var entries []entry
	kinds := map[string]byte{} // cleaned name -> typeflag, for links and duplicates
	tree := newLinkTree()
	budget := int64(len(archive)) // bytes the files may still take
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
			if e.data, err = readData(tr, hdr, int64(r.Len()), &budget); err != nil {
				return nil, err
			}
		}
		kinds[e.name] = hdr.Typeflag
		tree.add(e.name, hdr.Typeflag, hdr.Linkname)
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, archiveErr(ErrArchiveMalformed, "", "archive is empty")
	}
	for _, e := range entries {
		if err := checkPathAndLinks(e, tree); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// readData reads the data of the regular file hdr, after checking its
// declared size against the bytes left in the archive (left) and in the
// budget, which it then reduces: nothing is allocated for a size the
// archive cannot hold.
func readData(tr *tar.Reader, hdr *tar.Header, left int64, budget *int64) ([]byte, error) {
	switch {
	case hdr.Size < 0:
		return nil, archiveErr(ErrArchiveMalformed, hdr.Name, "negative size")
	case hdr.Size > left:
		return nil, archiveErr(ErrArchiveMalformed, hdr.Name, "declares %d bytes, but only %d are left in the archive", hdr.Size, left)
	case hdr.Size > *budget:
		return nil, archiveErr(ErrArchiveTooLarge, hdr.Name, "declares %d bytes, more than the %d left of the budget", hdr.Size, *budget)
	}
	*budget -= hdr.Size
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, archiveErr(ErrArchiveMalformed, hdr.Name, "%v", err)
	}
	return data, nil
}

// checkEntry validates one header on its own: type, name, hardlink target.
func checkEntry(hdr *tar.Header, seen map[string]byte) (entry, error) {
	if isSparse(hdr) {
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "sparse files are not allowed")
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader: // e.g. git archive's commit id comment
		return entry{}, nil
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "device files are not allowed")
	case tar.TypeFifo:
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "named pipes are not allowed")
	case tar.TypeGNUSparse:
		return entry{}, archiveErr(ErrUnsupportedEntry, hdr.Name, "sparse files are not allowed")
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
	if len(hdr.Linkname) > maxPathBytes {
		return entry{}, archiveErr(ErrUnsafePath, hdr.Name, "link target longer than %d bytes", maxPathBytes)
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

// isSparse reports whether hdr is a GNU sparse file: old GNU type 'S', or
// a regular file with GNU.sparse.* PAX records, whose declared size can be
// anything regardless of the bytes stored.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// cleanName turns an archive member name into a clean relative slash path,
// rejecting absolute paths, Windows volume names and any ".." component.
// The archive root ("." or "./") yields "".
func cleanName(name string) (string, error) {
	if name == "" {
		return "", archiveErr(ErrUnsafePath, name, "empty name")
	}
	if len(name) > maxPathBytes {
		return "", archiveErr(ErrUnsafePath, name, "name longer than %d bytes", maxPathBytes)
	}
	if strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return "", archiveErr(ErrUnsafePath, name, "name contains NUL or backslash")
	}
	if path.IsAbs(name) || filepath.VolumeName(name) != "" || (len(name) > 1 && name[1] == ':') {
		return "", archiveErr(ErrUnsafePath, name, "absolute path")
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", archiveErr(ErrUnsafePath, name, "path contains \"..\"")
		}
		if len(part) > maxNameBytes {
			return "", archiveErr(ErrUnsafePath, name, "a component is longer than %d bytes", maxNameBytes)
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
func checkPathAndLinks(e entry, tree *linkTree) error {
	if dir, kind := tree.badParent(e.name); dir != "" {
		if kind == tar.TypeSymlink {
			return archiveErr(ErrLinkEscape, e.hdr.Name, "path passes through symlink %q", dir)
		}
		return archiveErr(ErrUnsafePath, e.hdr.Name, "parent %q is not a directory", dir)
	}
	if e.hdr.Typeflag != tar.TypeSymlink {
		return nil
	}
	if err := tree.checkLink(e.name); err != nil {
		return archiveErr(ErrLinkEscape, e.hdr.Name, "symlink target %q: %v", e.hdr.Linkname, err)
	}
	return nil
}

// Extract validates archive (with no size limit beyond its own length,
// which bounds the bytes it writes: see the format note above) and writes
// it into dst, which is created if needed. Writes go through an os.Root, so even a bug in Validate cannot
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
