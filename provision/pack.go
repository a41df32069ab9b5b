package provision

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// packSkip names files and directories Pack leaves out: terraform's working
// data and state, which belong to a run and not to the template, and VCS
// metadata.
var packSkip = map[string]bool{
	".terraform":               true,
	"terraform.tfstate":        true,
	"terraform.tfstate.backup": true,
	".git":                     true,
}

// Pack archives the template directory dir as an uncompressed tar stream
// (see the format note in archive.go) of at most maxBytes (no limit if
// maxBytes <= 0). Entries are in lexical order with zeroed owners and times,
// so the same tree always packs to the same bytes. Symlinks are stored as
// links; the result is checked with Validate before it is returned.
func Pack(dir string, maxBytes int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if packSkip[d.Name()] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if err := packEntry(tw, p, filepath.ToSlash(rel), d); err != nil {
			return err
		}
		if maxBytes > 0 && int64(buf.Len()) > maxBytes {
			return archiveErr(ErrArchiveTooLarge, filepath.ToSlash(rel), "archive passes the limit of %d bytes here", maxBytes)
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := Validate(buf.Bytes(), maxBytes); err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}

func packEntry(tw *tar.Writer, p, name string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, ModTime: time.Unix(0, 0)}
	switch mode := info.Mode(); {
	case mode.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, filepath.ToSlash(target), 0o777
	case mode.IsRegular():
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, info.Size(), 0o644
		if mode&0o111 != 0 {
			hdr.Mode = 0o755
		}
	default:
		return archiveErr(ErrUnsupportedEntry, name, "file mode %v is not allowed", mode)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, hdr.Size)
	return err
}
