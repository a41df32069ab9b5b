// Package browsertest drives Debian's headless Chromium from Go tests with
// chromedp: it finds the browser, starts one per test with a clean
// profile, and saves screenshots for review.
//
// A test that needs a browser calls New. Without Chromium the test is
// skipped, except as root (CI), where it fails naming the Debian package
// to install (`apt-get install chromium`).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Viewport sizes the dashboard's screenshots are taken at.
var (
	Desktop = Size{Name: "desktop", Width: 1280, Height: 800}
	Phone   = Size{Name: "phone", Width: 390, Height: 844, Mobile: true}
)

// Size is a viewport.
type Size struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

// Chromium returns the path of the Chromium binary: $DEVMESH_CHROMIUM,
// else chromium, chromium-browser, google-chrome on PATH. Without one it
// skips t, or as root fails it.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DEVMESH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Geteuid() == 0 {
		t.Fatal("no Chromium found: install the Debian package chromium (apt-get install -y chromium), or set DEVMESH_CHROMIUM")
	}
	t.Skip("no Chromium found: install the Debian package chromium, or set DEVMESH_CHROMIUM")
	return ""
}

// New starts a headless Chromium for t (closed when t ends) and returns a
// chromedp context for its first tab, bounded by timeout. As root the
// browser runs with --no-sandbox (Chromium refuses to start otherwise).
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.WindowSize(int(Desktop.Width), int(Desktop.Height)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	base, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser now, so a missing library fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// Dir is where screenshots go: $DEVMESH_SCREENSHOTS, else screenshots/ at
// the root of the repository (the directory with go.mod; gitignored).
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("DEVMESH_SCREENSHOTS"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "screenshots")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(wd, "screenshots")
		}
	}
}

// SetViewport sizes the page.
func SetViewport(ctx context.Context, s Size) error {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if s.Mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	return chromedp.Do(ctx, chromedp.EmulateViewport(s.Width, s.Height, opts...))
}

// Screenshot saves the whole page as Dir()/NAME-SIZE.png at each size
// and returns the paths; the viewport is left at the last size.
func Screenshot(t testing.TB, ctx context.Context, name string, sizes ...Size) []string {
	t.Helper()
	dir := Dir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range sizes {
		if err := SetViewport(ctx, s); err != nil {
			t.Fatalf("viewport %s: %v", s.Name, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s at %s: %v", name, s.Name, err)
		}
		p := filepath.Join(dir, name+"-"+s.Name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}
