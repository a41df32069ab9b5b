package provision

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarEntry describes one member of a crafted archive.
type tarEntry struct {
	name     string
	typ      byte
	body     string
	linkname string
	mode     int64
}

func file(name, body string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) tarEntry        { return tarEntry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, linkname: target}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeLink, linkname: target}
}

// makeTar writes entries verbatim, however unsafe.
func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: mode, Size: int64(len(e.body))}
		if e.typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": "commit id"}}
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestValidateArchive(t *testing.T) {
	big := strings.Repeat("x", 4096)
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		max     int64
		wantErr error
		entry   string // the entry the error must name
	}{
		{name: "ok", archive: func(t *testing.T) []byte {
			return makeTar(t, dir("./"), file("main.tf", "x"), dir("mod/"), file("mod/a.tf", "y"),
				symlink("mod/link.tf", "a.tf"), symlink("up.tf", "mod/../main.tf"), hardlink("copy.tf", "main.tf"),
				tarEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader})
		}},
		{name: "symlink chain inside", archive: func(t *testing.T) []byte {
			return makeTar(t, dir("a/"), dir("a/b/"), symlink("a/b/c", ".."), symlink("d", "a/b/c/b"))
		}},
		{name: "dot-dot traversal", archive: func(t *testing.T) []byte {
			return makeTar(t, file("main.tf", "x"), file("../evil.sh", "x"))
		}, wantErr: ErrUnsafePath, entry: "../evil.sh"},
		{name: "dot-dot in the middle", archive: func(t *testing.T) []byte {
			return makeTar(t, file("a/../../evil", "x"))
		}, wantErr: ErrUnsafePath, entry: "a/../../evil"},
		{name: "dot-dot that stays inside is still refused", archive: func(t *testing.T) []byte {
			return makeTar(t, file("a/../b.tf", "x"))
		}, wantErr: ErrUnsafePath, entry: "a/../b.tf"},
		{name: "absolute path", archive: func(t *testing.T) []byte {
			return makeTar(t, file("/etc/cron.d/evil", "x"))
		}, wantErr: ErrUnsafePath, entry: "/etc/cron.d/evil"},
		{name: "windows drive path", archive: func(t *testing.T) []byte {
			return makeTar(t, file("C:/evil", "x"))
		}, wantErr: ErrUnsafePath, entry: "C:/evil"},
		{name: "backslash", archive: func(t *testing.T) []byte {
			return makeTar(t, file(`..\evil`, "x"))
		}, wantErr: ErrUnsafePath, entry: `..\evil`},
		{name: "symlink to absolute path", archive: func(t *testing.T) []byte {
			return makeTar(t, symlink("passwd", "/etc/passwd"))
		}, wantErr: ErrLinkEscape, entry: "passwd"},
		{name: "symlink up and out", archive: func(t *testing.T) []byte {
			return makeTar(t, dir("a/"), symlink("a/up", "../../etc"))
		}, wantErr: ErrLinkEscape, entry: "a/up"},
		{name: "symlink escaping through another symlink", archive: func(t *testing.T) []byte {
			// "here" is the root itself, so "here/.." is the root's parent,
			// though lexically "x/here/.." looks like "x".
			return makeTar(t, dir("x/"), symlink("x/here", ".."), symlink("out", "x/here/.."))
		}, wantErr: ErrLinkEscape, entry: "out"},
		{name: "symlink loop", archive: func(t *testing.T) []byte {
			return makeTar(t, symlink("a", "b"), symlink("b", "a"))
		}, wantErr: ErrLinkEscape},
		{name: "file written through a symlinked directory", archive: func(t *testing.T) []byte {
			return makeTar(t, dir("real/"), symlink("link", "real"), file("link/main.tf", "x"))
		}, wantErr: ErrLinkEscape, entry: "link/main.tf"},
		{name: "hardlink outside", archive: func(t *testing.T) []byte {
			return makeTar(t, hardlink("shadow", "/etc/shadow"))
		}, wantErr: ErrLinkEscape, entry: "shadow"},
		{name: "hardlink up", archive: func(t *testing.T) []byte {
			return makeTar(t, hardlink("shadow", "../etc/shadow"))
		}, wantErr: ErrLinkEscape, entry: "shadow"},
		{name: "hardlink to missing file", archive: func(t *testing.T) []byte {
			return makeTar(t, hardlink("a", "b"), file("b", "x"))
		}, wantErr: ErrLinkEscape, entry: "a"},
		{name: "char device", archive: func(t *testing.T) []byte {
			return makeTar(t, tarEntry{name: "null", typ: tar.TypeChar})
		}, wantErr: ErrUnsupportedEntry, entry: "null"},
		{name: "block device", archive: func(t *testing.T) []byte {
			return makeTar(t, tarEntry{name: "sda", typ: tar.TypeBlock})
		}, wantErr: ErrUnsupportedEntry, entry: "sda"},
		{name: "fifo", archive: func(t *testing.T) []byte {
			return makeTar(t, tarEntry{name: "pipe", typ: tar.TypeFifo})
		}, wantErr: ErrUnsupportedEntry, entry: "pipe"},
		{name: "duplicate", archive: func(t *testing.T) []byte {
			return makeTar(t, file("main.tf", "x"), file("main.tf", "y"))
		}, wantErr: ErrUnsafePath, entry: "main.tf"},
		{name: "file under a file", archive: func(t *testing.T) []byte {
			return makeTar(t, file("a", "x"), file("a/b", "y"))
		}, wantErr: ErrUnsafePath, entry: "a/b"},
		{name: "oversized", archive: func(t *testing.T) []byte {
			return makeTar(t, file("main.tf", big))
		}, max: 4096, wantErr: ErrArchiveTooLarge},
		{name: "not a tar", archive: func(*testing.T) []byte {
			return []byte("this is not a tar archive, just some text that is long enough" + strings.Repeat(".", 600))
		}, wantErr: ErrArchiveMalformed},
		{name: "truncated", archive: func(t *testing.T) []byte {
			return makeTar(t, file("main.tf", big))[:1024]
		}, wantErr: ErrArchiveMalformed},
		{name: "empty", archive: func(t *testing.T) []byte { return makeTar(t) }, wantErr: ErrArchiveMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.archive(t), tt.max)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Validate: got %v, want %v", err, tt.wantErr)
			}
			if tt.entry != "" {
				var ae *ArchiveError
				if !errors.As(err, &ae) || ae.Entry != tt.entry {
					t.Fatalf("error %q does not name entry %q", err, tt.entry)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.entry)) {
					t.Fatalf("message %q does not name entry %q", err, tt.entry)
				}
			}
		})
	}
}

func TestExtractRefusesBadArchiveWithoutWriting(t *testing.T) {
	dst := t.TempDir()
	outside := filepath.Join(filepath.Dir(dst), "escaped")
	err := Extract(makeTar(t, file("ok.tf", "x"), file("../escaped", "x")), dst)
	if !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("Extract: %v", err)
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Fatalf("file escaped: %v", err)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Fatalf("wrote %d entries before failing validation", len(ents))
	}
}

func TestPackExtractRoundTrip(t *testing.T) {
	src := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("main.tf", "# main", 0o600)
	write("scripts/start.sh", "#!/bin/sh\n", 0o700)
	write(".terraform/providers/junk", "junk", 0o644)
	write("terraform.tfstate", "{}", 0o644)
	write(".git/config", "x", 0o644)
	if err := os.Symlink("scripts/start.sh", filepath.Join(src, "start.sh")); err != nil {
		t.Fatal(err)
	}

	a1, err := Pack(src, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := Pack(src, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a1, a2) {
		t.Error("Pack is not deterministic")
	}
	if _, err := Pack(src, 600); !errors.Is(err, ErrArchiveTooLarge) {
		t.Errorf("Pack over the limit: %v", err)
	}

	dst := filepath.Join(t.TempDir(), "out")
	if err := Extract(a1, dst); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dst, p)
		info, _ := os.Lstat(p)
		got[rel] = info.Mode().String()
		return nil
	})
	want := map[string]string{
		".":                "drwxr-xr-x",
		"main.tf":          "-rw-r--r--",
		"scripts":          "drwxr-xr-x",
		"scripts/start.sh": "-rwxr-xr-x",
		"start.sh":         "Lrwxrwxrwx",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: mode %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("extracted %v, want exactly %v", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "start.sh")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Errorf("through symlink: %q, %v", b, err)
	}
}

func TestPackRefusesEscapingSymlink(t *testing.T) {
	src := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := Pack(src, 0); !errors.Is(err, ErrLinkEscape) {
		t.Fatalf("Pack: %v", err)
	}
}

func TestExtractHardlink(t *testing.T) {
	dst := t.TempDir()
	if err := Extract(makeTar(t, file("a.tf", "hello"), hardlink("b.tf", "a.tf")), dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "b.tf")); err != nil || string(b) != "hello" {
		t.Fatalf("hardlink: %q, %v", b, err)
	}
}
