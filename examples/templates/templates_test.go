// Package templates holds devmesh's example templates; its tests check
// them.
package templates

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

func TestMain(m *testing.M) {
	tfprovidertest.ServeIfPlugin()
	os.Exit(m.Run())
}

// templates lists the example template directories.
func templates(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) < 5 {
		t.Fatalf("example templates: %v", dirs)
	}
	return dirs
}

// TestFormatted: every example passes `terraform fmt -check`.
func TestFormatted(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH")
	}
	for _, dir := range templates(t) {
		cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", dir)
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("terraform fmt -check %s: %v\n%s", dir, err, out)
		}
	}
}

// TestDocumented: every example has a README.
func TestDocumented(t *testing.T) {
	for _, dir := range templates(t) {
		b, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil || !strings.HasPrefix(string(b), "# "+dir+" template") {
			t.Errorf("%s/README.md: %v", dir, err)
		}
	}
}

// TestValidate pushes the examples that need only the devmesh provider
// through the validation a push runs (terraform init and validate). The
// others need providers that cannot be downloaded here.
func TestValidate(t *testing.T) {
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("needs terraform: %v", err)
	}
	r, err := provision.New(provision.Options{WorkRoot: t.TempDir(), DevmeshBinary: tfprovidertest.Binary(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"local", "netns"} {
		archive, err := provision.Pack(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		mod, err := r.Validate(context.Background(), archive)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for _, v := range mod.Variables {
			if v.Required {
				t.Errorf("%s: variable %s is required; examples should work without any", dir, v.Name)
			}
		}
	}
}
