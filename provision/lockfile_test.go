package provision

import (
	"os"
	"path/filepath"
	"testing"
)

const authorsLock = `# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.devmesh.local/devmesh/devmesh" {
  version = "0.0.9"
  hashes = [
    "h1:bogus=",
  ]
}

provider "registry.terraform.io/kreuzwerker/docker" {
  version     = "3.0.2"
  constraints = "~> 3.0"
  hashes = [
    "h1:docker=",
  ]
}
`

func TestPinProvider(t *testing.T) {
	entry := "provider \"registry.devmesh.local/devmesh/devmesh\" {\n  version = \"0.1.0\"\n}\n"
	path := filepath.Join(t.TempDir(), lockFileName)
	if err := os.WriteFile(path, []byte(authorsLock), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pinProvider(path, entry); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := `# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.


provider "registry.terraform.io/kreuzwerker/docker" {
  version     = "3.0.2"
  constraints = "~> 3.0"
  hashes = [
    "h1:docker=",
  ]
}
` + entry
	if string(got) != want {
		t.Errorf("lock file:\n%s\nwant:\n%s", got, want)
	}

	// No lock file: just ours.
	path = filepath.Join(t.TempDir(), lockFileName)
	if err := pinProvider(path, entry); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != entry {
		t.Errorf("new lock file: %q", got)
	}
}
