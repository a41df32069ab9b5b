package provision

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devmesh/devmesh/provision/param"
)

func TestReadParameters(t *testing.T) {
	dir := writeModule(t, map[string]string{
		"main.tf": `
data "devmesh_workspace" "me" {}

data "devmesh_parameter" "region" {
  name         = "region"
  display_name = "Region"
  description  = "Where."
  default      = "eu"
  mutable      = true
  option {
    name  = "Europe"
    value = "eu"
  }
  option {
    name  = "US"
    value = "us"
  }
}

data "devmesh_parameter" "cpus" {
  name    = "cpus"
  type    = "number"
  default = 2
  validation {
    min = 1
    max = 8
  }
}
`,
		"tools.tf.json": `{"data": {"devmesh_parameter": {"tools": {"name": "tools", "type": "list(string)", "default": "[\"git\"]"}}}}`,
	})
	mod, err := readModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(s string) *string { return &s }
	one, eight := 1.0, 8.0
	want := []param.Parameter{
		{Name: "region", DisplayName: "Region", Description: "Where.", Type: "string", Default: ptr("eu"), Mutable: true,
			Options: []param.Option{{Name: "Europe", Value: "eu"}, {Name: "US", Value: "us"}}},
		{Name: "cpus", Type: "number", Default: ptr("2"), Validation: &param.Validation{Min: &one, Max: &eight}},
		{Name: "tools", Type: "list(string)", Default: ptr(`["git"]`)},
	}
	if diff := cmp.Diff(want, mod.Parameters); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
}

// TestParameterDeclarationErrors: a bad declaration is refused with the
// file and line of the block or attribute at fault.
func TestParameterDeclarationErrors(t *testing.T) {
	tests := []struct {
		name, src, pos, msg string
	}{
		{"not a constant", "variable \"r\" {}\n\ndata \"devmesh_parameter\" \"r\" {\n  name    = \"r\"\n  default = var.r\n}\n",
			"main.tf:5", "default must be a constant"},
		{"bad type", "data \"devmesh_parameter\" \"r\" {\n  name = \"r\"\n  type = \"map\"\n}\n", "main.tf:1", `invalid type "map"`},
		{"default not an option", "\n\ndata \"devmesh_parameter\" \"r\" {\n  name    = \"r\"\n  default = \"x\"\n  option {\n    name  = \"a\"\n    value = \"a\"\n  }\n}\n",
			"main.tf:3", "not one of the options"},
		{"duplicate name", "data \"devmesh_parameter\" \"a\" {\n  name = \"r\"\n}\ndata \"devmesh_parameter\" \"b\" {\n  name = \"r\"\n}\n",
			"main.tf:4", "already declared at main.tf:1"},
		{"two validations", "data \"devmesh_parameter\" \"r\" {\n  name = \"r\"\n  validation {}\n  validation {}\n}\n", "main.tf:4", "at most one validation"},
		{"unknown attribute", "data \"devmesh_parameter\" \"r\" {\n  name = \"r\"\n  colour = \"red\"\n}\n", "main.tf:3", "colour"},
		{"missing name", "data \"devmesh_parameter\" \"r\" {\n}\n", "main.tf:1", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readModule(writeModule(t, map[string]string{"main.tf": tt.src}))
			var pe *ParameterError
			if !errors.As(err, &pe) {
				t.Fatalf("readModule: %v, want a *ParameterError", err)
			}
			if pe.Pos != tt.pos || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("error %q at %s, want %q at %s", pe.Msg, pe.Pos, tt.msg, tt.pos)
			}
		})
	}
}
