package coordinator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// SHA256SUMS is the checksum file at /bin/ (and in a release directory):
// one "HEX  NAME" line per binary, as sha256sum(1) writes it.
const sumsFile = "SHA256SUMS"

// SHA256Header carries a served binary's SHA-256 (hex).
const SHA256Header = "X-Devmesh-Sha256"

// binaryNameRE matches the names binaries are served under.
var binaryNameRE = regexp.MustCompile(`^devmesh-[a-z0-9]+-[a-z0-9]+(\.exe)?$`)

// BinaryName is the file name of the devmesh binary for goos/goarch under
// /bin/ and in a release directory.
func BinaryName(goos, goarch string) string {
	name := "devmesh-" + goos + "-" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

// binariesDir is Config.BinariesDir, else the directory of this process's
// executable when it is a release directory (has SHA256SUMS).
func (s *Server) binariesDir() string {
	if s.cfg.BinariesDir != "" {
		return s.cfg.BinariesDir
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	dir := filepath.Dir(exe)
	if _, err := os.Stat(filepath.Join(dir, sumsFile)); err != nil {
		return ""
	}
	return dir
}

// binaries serves devmesh binaries at /bin/NAME for workspace init
// scripts, with their SHA-256 at /bin/NAME.sha256, in the SHA256Header of
// the binary itself, and all of them at /bin/SHA256SUMS. This platform's
// binary is own (the coordinator's own executable, "" if none); the
// others come from dir ("" if none). Sums are computed from the files
// served, cached until a file changes.
type binaries struct {
	own string
	dir string
	log *slog.Logger

	mu   sync.Mutex
	sums map[string]fileSum // by path; guarded by mu
}

type fileSum struct {
	size int64
	mod  time.Time
	hex  string
}

func newBinaries(own, dir string, log *slog.Logger) *binaries {
	return &binaries{own: own, dir: dir, log: log, sums: map[string]fileSum{}}
}

// path returns the file served as name, or "".
func (b *binaries) path(name string) string {
	if name == BinaryName(runtime.GOOS, runtime.GOARCH) && b.own != "" {
		return b.own
	}
	if b.dir == "" || !binaryNameRE.MatchString(name) {
		return ""
	}
	p := filepath.Join(b.dir, name)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return p
}

// names lists the binaries served, sorted.
func (b *binaries) names() []string {
	var names []string
	if b.own != "" {
		names = append(names, BinaryName(runtime.GOOS, runtime.GOARCH))
	}
	if b.dir != "" {
		entries, _ := os.ReadDir(b.dir)
		for _, e := range entries {
			if binaryNameRE.MatchString(e.Name()) && b.path(e.Name()) != "" {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// sum returns the SHA-256 of the file at path.
func (b *binaries) sum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	c, ok := b.sums[path]
	b.mu.Unlock()
	if ok && c.size == fi.Size() && c.mod.Equal(fi.ModTime()) {
		return c.hex, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sums[path] = fileSum{size: fi.Size(), mod: fi.ModTime(), hex: sum}
	return sum, nil
}

func (b *binaries) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == sumsFile {
		b.serveSums(w)
		return
	}
	bin, wantSum := strings.CutSuffix(name, ".sha256")
	path := b.path(bin)
	if path == "" {
		b.notFound(w, bin)
		return
	}
	sum, err := b.sum(path)
	if err != nil {
		b.log.Error("serve devmesh binary", "name", bin, "err", err)
		http.Error(w, "devmesh binary unavailable\n", http.StatusInternalServerError)
		return
	}
	if wantSum {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s  %s\n", sum, bin)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		b.log.Error("serve devmesh binary", "name", bin, "err", err)
		http.Error(w, "devmesh binary unavailable\n", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "devmesh binary unavailable\n", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", bin))
	w.Header().Set(SHA256Header, sum)
	http.ServeContent(w, r, bin, fi.ModTime(), f)
}

func (b *binaries) serveSums(w http.ResponseWriter) {
	var out strings.Builder
	for _, name := range b.names() {
		sum, err := b.sum(b.path(name))
		if err != nil {
			b.log.Error("checksum devmesh binary", "name", name, "err", err)
			http.Error(w, "devmesh binaries unavailable\n", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(&out, "%s  %s\n", sum, name)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, out.String())
}

func (b *binaries) notFound(w http.ResponseWriter, name string) {
	names := b.names()
	msg := "this coordinator serves no devmesh binary (provisioning is disabled and there is no release directory: see --binaries-dir)\n"
	if len(names) > 0 {
		msg = fmt.Sprintf("this coordinator serves only %s, not %s; put a devmesh built for this platform on the host's PATH, or give the coordinator a release directory (make release; --binaries-dir)\n",
			strings.Join(names, ", "), name)
	}
	http.Error(w, msg, http.StatusNotFound)
}
