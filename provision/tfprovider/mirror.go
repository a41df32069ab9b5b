package tfprovider

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"golang.org/x/mod/sumdb/dirhash"
)

// A mirror directory, as InstallMirror lays it out:
//
//	DIR/terraform.rc
//	    CLI configuration; point TF_CLI_CONFIG_FILE at it
//	DIR/plugins/registry.devmesh.local/devmesh/devmesh/VERSION/OS_ARCH/terraform-provider-devmesh_vVERSION
//	    sh script: exec DEVMESH_BINARY terraform-provider "$@"
//
// The plugins tree is a filesystem mirror in terraform's "unpacked" layout.
// The plugin is a two-line sh script rather than a copy of the binary, so
// installing it is cheap and always runs the current binary, and the
// binary needs no plugin detection of its own: terraform starts the script,
// the script execs `devmesh terraform-provider`, which calls Serve.
const (
	cliConfigName = "terraform.rc"
	pluginsDir    = "plugins"
)

var semverRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// Mirror describes a provider installation for terraform.
type Mirror struct {
	// Dir is where the mirror is written; created if missing.
	Dir string
	// DevmeshBinary is the absolute path of the devmesh executable (or of
	// any executable that serves the provider when run with Subcommand).
	DevmeshBinary string
	// Version is the provider version to install as (X.Y.Z); default Version.
	Version string
	// ExtraMirrors are more filesystem mirror directories (for example made
	// with `terraform providers mirror`) to install other providers from.
	ExtraMirrors []string
	// AllowDownload lets terraform download providers other than devmesh
	// from their registries. Off by default: nothing is fetched.
	AllowDownload bool
}

// InstallMirror writes a mirror for the devmesh provider into dir that runs
// devmeshBinary, as version, with no other provider source. See Mirror.
func InstallMirror(dir, devmeshBinary, version string) error {
	return Mirror{Dir: dir, DevmeshBinary: devmeshBinary, Version: version}.Install()
}

// CLIConfigFile returns the path of the CLI configuration in the mirror
// dir, for TF_CLI_CONFIG_FILE.
func CLIConfigFile(dir string) string { return filepath.Join(dir, cliConfigName) }

// Install writes the mirror.
func (m Mirror) Install() error {
	if m.Version == "" {
		m.Version = Version
	}
	switch {
	case !semverRE.MatchString(m.Version):
		return fmt.Errorf("install provider mirror: version %q is not X.Y.Z", m.Version)
	case !filepath.IsAbs(m.DevmeshBinary) || !filepath.IsAbs(m.Dir):
		return errors.New("install provider mirror: dir and devmesh binary must be absolute paths")
	}
	if _, err := os.Stat(m.DevmeshBinary); err != nil {
		return fmt.Errorf("install provider mirror: %w", err)
	}
	plugins := filepath.Join(m.Dir, pluginsDir)
	pkg := m.packageDir()
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		return fmt.Errorf("install provider mirror: %w", err)
	}
	script := "#!/bin/sh\nexec " + shellQuote(m.DevmeshBinary) + " " + Subcommand + " \"$@\"\n"
	exe := filepath.Join(pkg, "terraform-provider-devmesh_v"+m.Version)
	if err := writeFileAtomic(exe, []byte(script), 0o755); err != nil {
		return fmt.Errorf("install provider mirror: %w", err)
	}
	if err := writeFileAtomic(CLIConfigFile(m.Dir), []byte(m.cliConfig(plugins)), 0o644); err != nil {
		return fmt.Errorf("install provider mirror: %w", err)
	}
	return nil
}

// packageDir is the mirror's unpacked provider package for this platform.
func (m Mirror) packageDir() string {
	v := m.Version
	if v == "" {
		v = Version
	}
	return filepath.Join(m.Dir, pluginsDir, filepath.FromSlash(Address), v, runtime.GOOS+"_"+runtime.GOARCH)
}

// LockFileEntry returns the block for the devmesh provider in a
// .terraform.lock.hcl, with the hash of the installed package. Writing it
// into a template's lock file before `terraform init` replaces whatever
// the author's machine recorded for devmesh and spares terraform a warning
// about locally computed checksums.
func (m Mirror) LockFileEntry() (string, error) {
	v := m.Version
	if v == "" {
		v = Version
	}
	h, err := dirhash.HashDir(m.packageDir(), "", dirhash.Hash1)
	if err != nil {
		return "", fmt.Errorf("hash provider package: %w", err)
	}
	return fmt.Sprintf("provider %s {\n  version = %s\n  hashes = [\n    %s,\n  ]\n}\n",
		hclString(Address), hclString(v), hclString(h)), nil
}

// cliConfig returns terraform CLI configuration that installs devmesh only
// from the mirror at plugins, other providers only from ExtraMirrors (and
// their registries if AllowDownload), and disables version checks.
func (m Mirror) cliConfig(plugins string) string {
	var b strings.Builder
	b.WriteString("# Written by devmesh (provision/tfprovider.InstallMirror).\n")
	b.WriteString("disable_checkpoint = true\n\nprovider_installation {\n")
	fmt.Fprintf(&b, "  filesystem_mirror {\n    path    = %s\n    include = [%s]\n  }\n", hclString(plugins), hclString(Address))
	for _, dir := range m.ExtraMirrors {
		fmt.Fprintf(&b, "  filesystem_mirror {\n    path    = %s\n    exclude = [%s]\n  }\n", hclString(dir), hclString(Address))
	}
	if m.AllowDownload {
		fmt.Fprintf(&b, "  direct {\n    exclude = [%s]\n  }\n", hclString(Address))
	}
	b.WriteString("}\n")
	return b.String()
}

// hclString quotes s as an HCL string literal with no interpolation.
func hclString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", "$${", "%{", "%%{")
	return `"` + r.Replace(s) + `"`
}

// writeFileAtomic writes data to a temporary file beside name and renames
// it into place, so a terraform that is reading the mirror concurrently
// never sees a half-written file.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
