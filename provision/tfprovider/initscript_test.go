package tfprovider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeDevmesh is a stand-in devmesh binary: it records its arguments and
// the variables the agent needs into $OUT.
const fakeDevmesh = `#!/bin/sh
printf '%s\n' "args=$*" "url=$DEVMESH_URL" "token=$DEVMESH_AGENT_TOKEN" > "$OUT"
`

// runInit runs an init script with sh in a minimal environment.
func runInit(t *testing.T, script string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append([]string{"HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// toolDir returns a directory holding links to the named commands only,
// to use as PATH.
func toolDir(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed", tool)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeExe(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func readOut(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("devmesh did not run: %v", err)
	}
	return string(b)
}

func TestInitScriptNeedsToken(t *testing.T) {
	out, err := runInit(t, InitScript("http://127.0.0.1:1", "linux", "amd64"), "PATH="+toolDir(t, "sh"))
	if err == nil || !strings.Contains(out, "DEVMESH_AGENT_TOKEN is not set") {
		t.Fatalf("without a token: %v, %q", err, out)
	}
}

func TestInitScriptRunsDevmeshFromPATH(t *testing.T) {
	bin := toolDir(t, "sh")
	writeExe(t, filepath.Join(bin, "devmesh"), fakeDevmesh)
	outFile := filepath.Join(t.TempDir(), "out")
	url := "http://127.0.0.1:1/it's"
	out, err := runInit(t, InitScript(url, "linux", "amd64"), "PATH="+bin, "OUT="+outFile, "DEVMESH_AGENT_TOKEN=s3cret")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "args=agent\nurl=" + url + "\ntoken=s3cret\n"
	if got := readOut(t, outFile); got != want {
		t.Errorf("devmesh got:\n%s\nwant:\n%s", got, want)
	}
}

func TestInitScriptPrefersDevmeshBinary(t *testing.T) {
	bin := toolDir(t, "sh")
	writeExe(t, filepath.Join(bin, "devmesh"), "#!/bin/sh\nexit 7\n")
	mine := filepath.Join(t.TempDir(), "my-devmesh")
	writeExe(t, mine, fakeDevmesh)
	outFile := filepath.Join(t.TempDir(), "out")
	out, err := runInit(t, InitScript("https://example.invalid", "linux", "amd64"),
		"PATH="+bin, "OUT="+outFile, "DEVMESH_AGENT_TOKEN=t", EnvBinary+"="+mine)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := readOut(t, outFile); !strings.HasPrefix(got, "args=agent\nurl=https://example.invalid\n") {
		t.Errorf("devmesh got %q", got)
	}
}

// TestInitScriptDownloads serves a devmesh binary the way the coordinator
// will, at /bin/devmesh-OS-ARCH, and checks the script fetches and runs it
// with curl and with wget.
func TestInitScriptDownloads(t *testing.T) {
	for _, fetcher := range []string{"curl", "wget"} {
		t.Run(fetcher, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				switch r.URL.Path {
				case "/bin/devmesh-linux-arm64":
					w.Write([]byte(fakeDevmesh))
				case "/bin/devmesh-linux-arm64.sha256":
					fmt.Fprintf(w, "%s  devmesh-linux-arm64\n", sha256Hex(fakeDevmesh))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			// No uname: the script falls back to the template's platform.
			bin := toolDir(t, "sh", "mkdir", "chmod", "mv", "rm", "sha256sum", fetcher)
			home := t.TempDir()
			outFile := filepath.Join(t.TempDir(), "out")
			cmd := exec.Command("sh", "-c", InitScript(srv.URL+"/", "linux", "arm64"))
			cmd.Env = []string{"PATH=" + bin, "HOME=" + home, "OUT=" + outFile, "DEVMESH_AGENT_TOKEN=tok"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			mu.Lock()
			if len(paths) != 2 {
				t.Errorf("requests: %q", paths)
			}
			mu.Unlock()
			if got := readOut(t, outFile); got != "args=agent\nurl="+srv.URL+"\ntoken=tok\n" {
				t.Errorf("downloaded devmesh got %q", got)
			}
			if _, err := os.Stat(filepath.Join(home, ".cache", "devmesh", "devmesh")); err != nil {
				t.Errorf("binary not cached: %v", err)
			}
		})
	}
}

func TestInitScriptDownloadFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	bin := toolDir(t, "sh", "mkdir", "chmod", "mv", "curl")
	out, err := runInit(t, InitScript(srv.URL, "linux", "amd64"), "PATH="+bin, "DEVMESH_AGENT_TOKEN=t")
	if err == nil || !strings.Contains(out, "downloading "+srv.URL+"/bin/devmesh-linux-amd64") {
		t.Fatalf("failed download: %v, %q", err, out)
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestInitScriptRefusesChecksumMismatch: a binary whose SHA-256 is not
// the published one is neither run nor kept.
func TestInitScriptRefusesChecksumMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bin/devmesh-linux-amd64":
			w.Write([]byte(fakeDevmesh))
		case "/bin/devmesh-linux-amd64.sha256":
			fmt.Fprintf(w, "%s  devmesh-linux-amd64\n", sha256Hex("some other binary"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	bin := toolDir(t, "sh", "mkdir", "chmod", "mv", "rm", "sha256sum", "curl")
	home := t.TempDir()
	outFile := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("sh", "-c", InitScript(srv.URL, "linux", "amd64"))
	cmd.Env = []string{"PATH=" + bin, "HOME=" + home, "OUT=" + outFile, "DEVMESH_AGENT_TOKEN=tok"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "checksum mismatch") {
		t.Fatalf("mismatch accepted: %v: %s", err, out)
	}
	if _, err := os.Stat(outFile); err == nil {
		t.Error("the binary ran despite the mismatch")
	}
	left, _ := filepath.Glob(filepath.Join(home, ".cache", "devmesh", "*"))
	if len(left) != 0 {
		t.Errorf("files left behind: %q", left)
	}
}

// TestInitScriptPowerShell checks the Windows script's text: it is
// PowerShell, quotes the URL as a literal, downloads the .exe for the
// machine's architecture with its sum, and refuses a mismatch. It runs
// with pwsh where that is installed (a token-less run must fail cleanly).
func TestInitScriptPowerShell(t *testing.T) {
	url := "https://coord.example/it's"
	ps := InitScript(url+"/", "windows", "arm64")
	for _, want := range []string{
		"$env:DEVMESH_URL = 'https://coord.example/it''s'\n",
		`$url = "$env:DEVMESH_URL/bin/devmesh-windows-$arch.exe"`,
		`default { 'arm64' }`,
		`Invoke-WebRequest -UseBasicParsing -Uri "$url.sha256"`,
		`Get-FileHash -Algorithm SHA256`,
		`if ($got -ne $want) {`,
		"& $bin agent\nexit $LASTEXITCODE\n",
	} {
		if !strings.Contains(ps, want) {
			t.Errorf("PowerShell script lacks %q:\n%s", want, ps)
		}
	}
	if strings.Contains(ps, "#!/bin/sh") || strings.Contains(ps, "s3cret") {
		t.Error("not a PowerShell script")
	}
	if got := powerShellQuote("a'b\u2019c"); got != "'a''b\u2019\u2019c'" {
		t.Errorf("powerShellQuote = %q", got)
	}
	pwsh, err := exec.LookPath("pwsh")
	if err != nil {
		t.Log("pwsh not installed: the script's text was checked, not run")
		return
	}
	cmd := exec.Command(pwsh, "-NoProfile", "-NonInteractive", "-Command", ps)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DEVMESH_AGENT_TOKEN is not set") {
		t.Errorf("pwsh without a token: %v: %s", err, out)
	}
}
