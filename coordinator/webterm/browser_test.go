package webterm_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/browsertest"
)

// readScreen returns the terminal's buffer as text, line by line.
const readScreen = `(() => { const b = devmeshTerm.term.buffer.active; let s = "";
  for (let i = 0; i < b.length; i++) s += b.getLine(i).translateToString(true) + "\n"; return s; })()`

// echoLatencyJS types 20 characters one at a time and returns the median
// milliseconds from a keystroke to its echo on the screen.
const echoLatencyJS = `(async () => {
  const t = devmeshTerm.term, ds = [];
  const line = () => t.buffer.active.getLine(t.buffer.active.baseY + t.buffer.active.cursorY).translateToString(true);
  for (let i = 0; i < 20; i++) {
    const ch = String.fromCharCode(97 + i), before = line();
    const t0 = performance.now();
    await new Promise((res) => {
      const d = t.onWriteParsed(() => { if (line().length > before.length) { d.dispose(); res(); } });
      t.input(ch);
    });
    ds.push(performance.now() - t0);
  }
  t.input("\x15");
  ds.sort((a, b) => a - b);
  return ds[10];
})()`

// TestBrowserTerminal drives the terminal page in headless Chromium:
// log in, open the terminal, run echo $((6*7)) and read 42 from the
// screen over the direct (WebRTC) path; reload and find the same
// session and its scrollback. It reports the keystroke-echo latency.
func TestBrowserTerminal(t *testing.T) {
	browsertest.Chromium(t) // skip early, before starting a coordinator
	coord := coordtest.Start(t, coordtest.WithoutProvisioning())
	startAgent(t, coord)
	base := coord.URL()

	// Direct. Chromium hides host candidates behind mDNS names unless
	// told otherwise; on a loopback-only test host mDNS does not resolve.
	b := newBrowser(t, chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"))
	login(t, b, base, "bob")
	openTerminal(t, b, base, "direct")
	typeInto(t, b, "echo $((6*7))\r")
	waitScreen(t, b, "42\n")
	session := eval[string](t, b, "devmeshTerm.session")
	t.Logf("measured: browser keystroke echo, direct (WebRTC, loopback): %.2f ms", eval[float64](t, b, echoLatencyJS))
	browsertest.Screenshot(t, b, "terminal", browsertest.Desktop, browsertest.Phone)

	run(t, b, "reload", chromedp.Reload())
	openTerminal(t, b, base+"-reloaded", "direct")
	if got := eval[string](t, b, "devmeshTerm.session"); got != session {
		t.Fatalf("after the reload the session is %s, want %s", got, session)
	}
	if !eval[bool](t, b, "devmeshTerm.hello.reattached") {
		t.Fatal("after the reload the agent started a new shell")
	}
	waitScreen(t, b, "42\n") // the scrollback, replayed

}

func newBrowser(t *testing.T, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	return newBrowserAt(t, browsertest.Chromium(t), flags...)
}

func newBrowserAt(t *testing.T, exe string, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	opts = append(opts, flags...)
	base, cancelTimeout := context.WithTimeout(context.Background(), 120*time.Second)
	alloc, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc(); cancelTimeout() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, b context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, b context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(b, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.40q: %v", js, err)
	}
	return v
}

func login(t *testing.T, b context.Context, base, user string) {
	t.Helper()
	run(t, b, "log in as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), user+"-password-1"),
		chromedp.Click(chromedp.CSS("form.stack button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
	)
}

// openTerminal opens (or, with a URL that is not base, just waits for)
// the terminal page and checks the path it connected over.
func openTerminal(t *testing.T, b context.Context, base, wantPath string) {
	t.Helper()
	if !strings.HasSuffix(base, "-reloaded") {
		run(t, b, "open the terminal", chromedp.Navigate(base+"/@bob/dev/terminal"))
	}
	// The path shows once connected (after the 8 s WebRTC timeout when
	// relayed).
	if _, err := chromedp.Run(b, chromedp.Poll[bool](`!!(window.devmeshTerm && devmeshTerm.hello && (devmeshTerm.path == "direct" || devmeshTerm.path == "relayed"))`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		state, _ := chromedp.Run(b, chromedp.Evaluate[string](`JSON.stringify({path: window.devmeshTerm && devmeshTerm.path, hello: window.devmeshTerm && devmeshTerm.hello, shown: document.getElementById("term-path") && document.getElementById("term-path").textContent, screen: window.devmeshTerm && devmeshTerm.term.buffer.active.getLine(0).translateToString(true)})`))
		t.Fatalf("the terminal did not connect: %v; page state %s", err, state)
	}
	if got := eval[string](t, b, "devmeshTerm.path"); got != wantPath {
		t.Fatalf("terminal path %q, want %q", got, wantPath)
	}
	run(t, b, "focus", chromedp.Focus(chromedp.CSS(".xterm-helper-textarea")))
}

func waitScreen(t *testing.T, b context.Context, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := eval[string](t, b, readScreen)
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %q:\n%s", want, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// typeInto types s as the user would: xterm's input path (onData), as a
// keyboard does. (chromedp's SendKeys doubles characters in xterm's
// textarea: xterm takes both its keydown and its input event.)
func typeInto(t *testing.T, b context.Context, s string) {
	t.Helper()
	js, _ := json.Marshal(s)
	eval[bool](t, b, "devmeshTerm.term.input("+string(js)+", true), true")
}
