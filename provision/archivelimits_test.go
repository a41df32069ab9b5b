package provision

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawHeader is a ustar header block, however inconsistent its fields.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad512(b []byte) []byte {
	if n := len(b) % 512; n != 0 {
		b = append(b, make([]byte, 512-n)...)
	}
	return b
}

// paxRecords encodes PAX extended header records.
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		out = append(out, strconv.Itoa(n)+rec...)
	}
	return out
}

// sparseTar is an archive of about 3 KB holding one GNU sparse file
// (PAX format 1.0) whose real size is realSize: one data block at its end,
// holes before it. archive/tar expands it on read.
func sparseTar(name string, realSize int64) []byte {
	recs := paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0",
		"GNU.sparse.name", name, "GNU.sparse.realsize", strconv.FormatInt(realSize, 10))
	var b []byte
	b = append(b, rawHeader("PaxHeaders/"+name, tar.TypeXHeader, int64(len(recs)))...)
	b = append(b, pad512(recs)...)
	b = append(b, rawHeader("GNUSparseFile.0/"+name, tar.TypeReg, 1024)...)
	b = append(b, pad512([]byte(fmt.Sprintf("1\n%d\n512\n", realSize-512)))...)
	b = append(b, bytes.Repeat([]byte("x"), 512)...)
	return append(b, make([]byte, 1024)...)
}

// oldGNUSparseTar is an archive with one old-GNU-format sparse entry
// (type 'S') of the given real size.
func oldGNUSparseTar(name string, realSize int64) []byte {
	h := rawHeader(name, tar.TypeGNUSparse, 512)
	copy(h[257:], "ustar  \x00")
	copy(h[386:], fmt.Sprintf("%011o\x00%011o\x00", realSize-512, 512)) // one sparse entry
	copy(h[483:], fmt.Sprintf("%011o\x00", realSize))
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	b := append(h, bytes.Repeat([]byte("x"), 512)...)
	return append(b, make([]byte, 1024)...)
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestSparseEntryRejected is the regression test for GNU sparse entries:
// a 10 KB push allocated 2.3 GB and wrote 1 GiB. The archive must be
// refused, quickly, without allocating or writing what it declares.
func TestSparseEntryRejected(t *testing.T) {
	const realSize = 2 << 30
	for name, archive := range map[string][]byte{"pax": sparseTar("big.tf", realSize), "old gnu": oldGNUSparseTar("big.tf", realSize)} {
		t.Run(name, func(t *testing.T) {
			t.Logf("%d-byte archive declares a %d-byte file", len(archive), realSize)
			var err error
			var alloc uint64
			within(t, time.Second, "Validate", func() {
				alloc = allocated(func() { err = Validate(archive, 0) })
			})
			var ae *ArchiveError
			if !errors.Is(err, ErrUnsupportedEntry) || !errors.As(err, &ae) || !strings.Contains(err.Error(), "sparse") {
				t.Fatalf("Validate: %v, want a sparse-entry error", err)
			}
			if alloc > 1<<20 {
				t.Errorf("Validate allocated %d bytes", alloc)
			}
			dst := t.TempDir()
			within(t, time.Second, "Extract", func() {
				alloc = allocated(func() { err = Extract(archive, dst) })
			})
			if !errors.Is(err, ErrUnsupportedEntry) {
				t.Fatalf("Extract: %v", err)
			}
			if alloc > 1<<20 {
				t.Errorf("Extract allocated %d bytes", alloc)
			}
			if ents, _ := os.ReadDir(dst); len(ents) != 0 {
				t.Errorf("Extract wrote %d entries", len(ents))
			}
		})
	}
}

// TestDeclaredSizeBeyondArchive checks that a regular file's declared
// size is checked against the bytes left before any of it is read or
// allocated: exactly the bytes left is fine, one more is not.
func TestDeclaredSizeBeyondArchive(t *testing.T) {
	body := strings.Repeat("x", 1024)
	exact := makeTar(t, file("a.tf", body))[:512+1024] // no end-of-archive blocks: the data is all that is left
	if err := Validate(exact, 0); err != nil {
		t.Fatalf("size equal to the bytes left: %v", err)
	}
	over := append(rawHeader("a.tf", tar.TypeReg, 1025), body...)
	if err := Validate(over, 0); !errors.Is(err, ErrArchiveMalformed) || !strings.Contains(err.Error(), "declares 1025 bytes, but only 1024 are left") {
		t.Fatalf("size one more than the bytes left: %v", err)
	}
	huge := append(rawHeader("a.tf", tar.TypeReg, 1<<32), body...)
	var err error
	if alloc := allocated(func() { err = Validate(huge, 0) }); !errors.Is(err, ErrArchiveMalformed) || alloc > 1<<20 {
		t.Fatalf("4 GiB declared: %v, allocated %d bytes", err, alloc)
	}
	// The budget: what the files may take in total.
	budget := int64(1024)
	tr := tar.NewReader(bytes.NewReader(makeTar(t, file("a.tf", body), file("b.tf", "y"))))
	for i, name := range []string{"a.tf", "b.tf"} {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		_, err = readData(tr, hdr, 1<<20, &budget)
		if (i == 0) != (err == nil) || (i == 1 && !errors.Is(err, ErrArchiveTooLarge)) {
			t.Errorf("%s with %d bytes of budget left: %v", name, budget, err)
		}
	}
}

func TestArchiveSizeLimit(t *testing.T) {
	a := makeTar(t, file("main.tf", "x"))
	if err := Validate(a, int64(len(a))); err != nil {
		t.Errorf("archive at the limit: %v", err)
	}
	if err := Validate(a, int64(len(a))-1); !errors.Is(err, ErrArchiveTooLarge) {
		t.Errorf("archive one byte over the limit: %v", err)
	}
}

func TestNameLimits(t *testing.T) {
	long := func(n int) string { // n bytes: components of 100
		s := strings.Repeat(strings.Repeat("a", 99)+"/", n/100) + strings.Repeat("b", n%100)
		return strings.TrimSuffix(s, "/")
	}
	tests := []struct {
		name  string
		entry tarEntry
		ok    bool
	}{
		{"name at PATH_MAX", file(long(maxPathBytes), "x"), true},
		{"name over PATH_MAX", file(long(maxPathBytes+1), "x"), false},
		{"component at NAME_MAX", file(strings.Repeat("c", maxNameBytes), "x"), true},
		{"component over NAME_MAX", file(strings.Repeat("c", maxNameBytes+1), "x"), false},
		{"link target at PATH_MAX", symlink("l", strings.Repeat("./", maxPathBytes/2-1)+"f"), true},
		{"link target over PATH_MAX", symlink("l", strings.Repeat("./", maxPathBytes/2)+"f"), false},
	}
	for _, tt := range tests {
		err := Validate(makeTar(t, file("f", "x"), tt.entry), 0)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrUnsafePath)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// linkChain is an archive with a file f and symlinks l1 -> f, l2 -> l1,
// ..., ln -> l(n-1): looking up ln follows n links.
func linkChain(t *testing.T, n int) []byte {
	entries := []tarEntry{file("f", "x"), symlink("l1", "f")}
	for i := 2; i <= n; i++ {
		entries = append(entries, symlink(fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i-1)))
	}
	return makeTar(t, entries...)
}

func TestLinkHopLimit(t *testing.T) {
	if err := Validate(linkChain(t, maxLinkHops), 0); err != nil {
		t.Errorf("a lookup of %d links: %v", maxLinkHops, err)
	}
	err := Validate(linkChain(t, maxLinkHops+1), 0)
	var ae *ArchiveError
	if !errors.Is(err, ErrLinkEscape) || !errors.As(err, &ae) || ae.Entry != fmt.Sprintf("l%d", maxLinkHops+1) || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("a lookup of %d links: %v", maxLinkHops+1, err)
	}
	// Hops count in total across nested resolutions: l2 follows l1 three
	// times (each a hop) and itself: 4; the rest follow no more than 40.
	ok := makeTar(t, dir("d/"), symlink("l1", "d"), symlink("l2", "l1/../l1/../l1"))
	if err := Validate(ok, 0); err != nil {
		t.Errorf("nested links within the limit: %v", err)
	}
	// l3 -> l2 x 3: 3 * (1 + 3) = 12 hops; l4: 3 * (1 + 12) = 39, plus
	// l4 itself: 40, the limit. l5 would take 1 + 3 * 40.
	entries := []tarEntry{dir("d/"), symlink("l1", "d"), symlink("l2", "l1/../l1/../l1"), symlink("l3", "l2/../l2/../l2"),
		symlink("l4", "l3/../l3/../l3")}
	if err := Validate(makeTar(t, entries...), 0); err != nil {
		t.Errorf("l4, 40 hops in total: %v", err)
	}
	entries = append(entries, symlink("l5", "l4/../l4/../l4"))
	if err := Validate(makeTar(t, entries...), 0); !errors.Is(err, ErrLinkEscape) || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("l5, 121 hops in total: %v", err)
	}
}

// TestChainedLinksBoundedTime is the regression test for symlink
// resolution counting depth per recursion rather than hops in total: each
// link names the previous one three times, so resolving the last took
// 3^n steps, though no recursion went deeper than n.
func TestChainedLinksBoundedTime(t *testing.T) {
	entries := []tarEntry{dir("d/"), symlink("l0", "d")}
	for i := 1; i <= 36; i++ {
		p := fmt.Sprintf("l%d", i-1)
		entries = append(entries, symlink(fmt.Sprintf("l%d", i), p+"/../"+p+"/../"+p))
	}
	archive := makeTar(t, entries...)
	t.Logf("%d-byte archive of %d chained links", len(archive), len(entries)-1)
	var err error
	within(t, time.Second, "Validate", func() { err = Validate(archive, 0) })
	if !errors.Is(err, ErrLinkEscape) || !strings.Contains(err.Error(), "too many levels") {
		t.Fatalf("Validate: %v", err)
	}
	// Many links onto one long valid chain: each lookup follows up to 40
	// links, each resolved once.
	entries = nil
	for i := 0; i < 39; i++ {
		entries = append(entries, symlink(fmt.Sprintf("c%d", i+1), fmt.Sprintf("c%d", i)))
	}
	entries = append(entries, dir("c0/"))
	for i := 0; i < 2000; i++ {
		entries = append(entries, symlink(fmt.Sprintf("m%d", i), "c39/../c39/../c39"))
	}
	archive = makeTar(t, entries...)
	within(t, time.Second, "Validate", func() { err = Validate(archive, 0) })
	if err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Fatalf("Validate: %v, want too many levels (3 x 40 hops)", err)
	}
}

// FuzzReadArchive checks that readArchive never panics, is quick, keeps
// to the archive's size, and that what it accepts it accepts again.
func FuzzReadArchive(f *testing.F) {
	seed := func(entries ...tarEntry) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o644, Size: int64(len(e.body))}
			if tw.WriteHeader(hdr) != nil {
				return
			}
			tw.Write([]byte(e.body))
		}
		tw.Close()
		f.Add(buf.Bytes())
	}
	seed(file("main.tf", "x"), dir("mod/"), file("mod/a.tf", "y"), symlink("mod/l", "a.tf"), hardlink("h", "main.tf"))
	seed(dir("a/"), dir("a/b/"), symlink("a/b/c", ".."), symlink("d", "a/b/c/b"))
	seed(symlink("a", "b"), symlink("b", "a"))
	seed(dir("x/"), symlink("x/here", ".."), symlink("out", "x/here/.."))
	seed(dir("d/"), symlink("l0", "d"), symlink("l1", "l0/../l0/../l0"), symlink("l2", "l1/../l1/../l1"))
	f.Add(sparseTar("big.tf", 1<<30))
	f.Add(oldGNUSparseTar("big.tf", 1<<30))
	f.Add(append(rawHeader("a.tf", tar.TypeReg, 1<<32), "xx"...))
	f.Fuzz(func(t *testing.T, archive []byte) {
		start := time.Now()
		entries, err := readArchive(archive, 0)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("readArchive of %d bytes took %v", len(archive), d)
		}
		if err != nil {
			var ae *ArchiveError
			if !errors.As(err, &ae) {
				t.Fatalf("error is not an *ArchiveError: %v", err)
			}
			return
		}
		total := 0
		for _, e := range entries {
			total += len(e.data)
			if e.name == "" || strings.HasPrefix(e.name, "/") || strings.Contains("/"+e.name+"/", "/../") {
				t.Fatalf("accepted entry name %q", e.name)
			}
		}
		if total > len(archive) {
			t.Fatalf("%d bytes of files from a %d-byte archive", total, len(archive))
		}
	})
}

// FuzzArchiveEntries builds archives from a line-based spec ("l name
// target", "f name body", "d name", "h name target"), so that mutations
// reach the path and symlink checks rather than tar's header checksum. An
// archive readArchive accepts must extract, and each of its symlinks
// must, once on disk, resolve inside the extraction directory (or not at
// all).
func FuzzArchiveEntries(f *testing.F) {
	for _, s := range []string{
		"f main.tf x\nd mod\nf mod/a.tf y\nl mod/l a.tf\nh h main.tf",
		"d a\nd a/b\nl a/b/c ..\nl d a/b/c/b",
		"d x\nl x/here ..\nl out x/here/..",
		"l a b\nl b a",
		"d d\nl l0 d\nl l1 l0/../l0/../l0\nl l2 l1/../l1/../l1",
		"d real\nl link real\nf link/main.tf x",
		"l up ../etc",
		"d a\nl a/b .\nl c a/b/b/b/../..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for line := range strings.SplitSeq(spec, "\n") {
			fields := strings.SplitN(line, " ", 3)
			if len(fields) < 2 {
				continue
			}
			hdr := &tar.Header{Name: fields[1], Mode: 0o644, Format: tar.FormatPAX}
			arg := ""
			if len(fields) == 3 {
				arg = fields[2]
			}
			switch fields[0] {
			case "f":
				hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(arg))
			case "d":
				hdr.Typeflag = tar.TypeDir
			case "l":
				hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, arg
			case "h":
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, arg
			default:
				continue
			}
			if tw.WriteHeader(hdr) != nil {
				return
			}
			if hdr.Typeflag == tar.TypeReg {
				tw.Write([]byte(arg))
			}
		}
		if tw.Close() != nil {
			return
		}
		archive := buf.Bytes()
		start := time.Now()
		entries, err := readArchive(archive, 0)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("readArchive took %v", d)
		}
		if err != nil {
			return
		}
		dst := filepath.Join(t.TempDir(), "x")
		if err := Extract(archive, dst); err != nil {
			t.Fatalf("accepted, but Extract: %v", err)
		}
		root, err := filepath.EvalSymlinks(dst)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.hdr.Typeflag != tar.TypeSymlink {
				continue
			}
			got, err := filepath.EvalSymlinks(filepath.Join(dst, e.name))
			if err == nil && got != root && !strings.HasPrefix(got, root+string(filepath.Separator)) {
				t.Fatalf("symlink %q -> %q resolves to %s, outside %s", e.name, e.hdr.Linkname, got, root)
			}
		}
	})
}
