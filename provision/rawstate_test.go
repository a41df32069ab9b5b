package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	tfjson "github.com/hashicorp/terraform-json"
)

// rawStateTemplate has what a state file's addresses are made of: data
// sources, count and for_each instances, nested modules, and the
// devmesh provider's resources in a child module.
const rawStateTemplate = header + `
data "devmesh_workspace" "me" {}

resource "devmesh_agent" "main" {
  env = { A = "b" }
}

resource "terraform_data" "counted" {
  count = 2
  input = "c${count.index}"
}

resource "terraform_data" "keyed" {
  for_each = toset(["x", "a b"])
  input    = each.key
}

module "child" {
  source = "./child"
}
`

const rawStateChild = header + `
resource "devmesh_agent" "second" {
  name = "second"
}

resource "devmesh_metadata" "m" {
  resource_id = devmesh_agent.second.id
  item {
    key       = "k"
    value     = "v"
    sensitive = true
  }
}

module "grandchild" {
  source = "./grandchild"
}
`

const rawStateGrandchild = `
resource "terraform_data" "deep" {
  input = "d"
}
`

// TestParseStateFileMatchesShow checks that reading terraform's state file
// directly gives what `terraform show -json` gives (which Build ran after
// every apply, for 150-250 ms): the same resources, addresses, providers
// and attribute values, and so the same agents, metadata and resources.
func TestParseStateFileMatchesShow(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Options{})
	archive := packFiles(t, map[string]string{"main.tf": rawStateTemplate, "child/main.tf": rawStateChild,
		"child/grandchild/main.tf": rawStateGrandchild})
	ws := Workspace{ID: "6c1f3f5e-0d2c-4f57-9d5b-2d1b7f0c9a11", Name: "dev", Owner: "alice", AccessURL: "http://127.0.0.1:7777/"}
	var logs logRecorder
	res, err := r.Build(context.Background(), BuildRequest{Archive: archive, Transition: TransitionStart, Workspace: ws, Log: logs.log})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, logs.text())
	}
	if len(res.Agents) != 2 || len(res.Metadata) != 1 || len(res.Resources) != 5 {
		t.Fatalf("build read %d agents, %d metadata, %d resources; want 2, 1, 5", len(res.Agents), len(res.Metadata), len(res.Resources))
	}

	// terraform show on the same state, in a module directory of its own.
	w, err := r.newWorkdir(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer w.remove()
	path := filepath.Join(w.module, stateFile)
	if err := os.WriteFile(path, res.State, 0o600); err != nil {
		t.Fatal(err)
	}
	sink := newLogSink(logs.log)
	tf, _, err := r.terraform(w, r.env(w, nil), sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.initModule(context.Background(), tf, sink); err != nil {
		t.Fatal(err)
	}
	shown, err := r.showState(context.Background(), w, sink, path)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseStateFile(res.State)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(flatten(shown), flatten(parsed)); diff != "" {
		t.Errorf("resources (-terraform show +parsed):\n%s", diff)
	}
	a1, m1, r1, err1 := readState(shown)
	a2, m2, r2, err2 := readState(parsed)
	if diff := cmp.Diff([]any{a1, m1, r1, err1 == nil}, []any{a2, m2, r2, err2 == nil}); diff != "" {
		t.Errorf("readState (-terraform show +parsed):\n%s", diff)
	}
}

type flatResource struct {
	Module, Address, Mode, Type, Name, Provider string
	Index                                       any
	Values                                      map[string]any
}

// flatten lists a state's resources with their module, in order: all
// attributes of our provider's resources, the id of others.
func flatten(st *tfjson.State) []flatResource {
	var out []flatResource
	var walk func(m *tfjson.StateModule)
	walk = func(m *tfjson.StateModule) {
		for _, r := range m.Resources {
			values := r.AttributeValues
			if !ours(r) {
				// Dynamic-typed attributes differ (see parseStateFile);
				// readState reads only the id of other providers' resources.
				values = map[string]any{"id": values["id"]}
			}
			out = append(out, flatResource{m.Address, r.Address, string(r.Mode), r.Type, r.Name, r.ProviderName, r.Index, values})
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(st.Values.RootModule)
	return out
}

func TestParseStateFileRefusesOtherFormats(t *testing.T) {
	for _, data := range []string{`{"version": 3, "modules": []}`, `not json`,
		`{"version": 4, "resources": [{"mode": "managed", "type": "t", "name": "n", "provider": "weird", "instances": [{}]}]}`} {
		if _, err := parseStateFile([]byte(data)); !errors.Is(err, errStateFormat) {
			t.Errorf("parseStateFile(%s) = %v, want errStateFormat", data, err)
		}
	}
}
