package provision

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadModule(t *testing.T) {
	dir := writeModule(t, map[string]string{
		"a.tf": `
variable "region" {
  type        = string
  default     = "eu"
  description = "Where."
  validation {
    condition     = length(var.region) > 0
    error_message = "Empty."
  }
}
variable "count_" {
  type = number
}
variable "opts" {
  type = object({
    cpu  = optional(number, 2)
    name = string
  })
  default = { name = "x" }
}
variable "pass" {
  type      = string
  sensitive = true
}
`,
		"b.tf.json":          `{"variable": {"from_json": {"type": "bool", "default": true}}}`,
		"c_override.tf":      `variable "ignored" {}`,
		"notes.txt":          `variable "not_config" {}`,
		".hidden.tf":         `variable "hidden" {}`,
		"terraform.tfvars":   `region = "us"`,
		"main.tf":            "terraform {\n  required_version = \">= 1.5\"\n}\nlocals {\n  x = 1\n}\n",
		"bool_literal.tf":    "",
		"untyped_default.tf": `variable "untyped" { default = [1, 2] }`,
	})
	got, err := readModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Variable{
		{Name: "count_", Type: "number", Required: true},
		{Name: "from_json", Type: "bool", Default: []byte("true")},
		{Name: "opts", Type: "object({cpu=number,name=string})", Default: []byte(`{"cpu":2,"name":"x"}`)},
		{Name: "pass", Type: "string", Required: true, Sensitive: true, literal: true},
		{Name: "region", Type: "string", Default: []byte(`"eu"`), Description: "Where.", literal: true},
		{Name: "untyped", Type: "any", Default: []byte("[1,2]"), literal: true},
	}
	if diff := cmp.Diff(want, got.Variables, cmp.AllowUnexported(Variable{})); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
}

func TestReadModuleErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		is    error
		want  string
	}{
		{"backend", map[string]string{"main.tf": "terraform {\n  backend \"s3\" {}\n}\n"}, ErrBackendConfigured, "backend block at main.tf:2"},
		{"cloud", map[string]string{"x.tf": "terraform {\n  cloud {\n    organization = \"o\"\n  }\n}\n"}, ErrBackendConfigured, "cloud block at x.tf:2"},
		{"no config", map[string]string{"README.md": "# hi"}, ErrEmptyTemplate, ""},
		{"syntax", map[string]string{"main.tf": "variable \"x\" {\n"}, nil, "main.tf:1"},
		{"non-constant default", map[string]string{"main.tf": "variable \"x\" {\n  default = local.y\n}\n"}, nil, `variable "x": default`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readModule(writeModule(t, tt.files))
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("readModule: %v, want %v containing %q", err, tt.is, tt.want)
			}
		})
	}
}

func TestVarFile(t *testing.T) {
	decls := []Variable{
		{Name: "s", Type: "string", literal: true},
		{Name: "untyped", Type: "any", literal: true},
		{Name: "n", Type: "number"},
		{Name: "l", Type: "list(string)"},
		{Name: "m", Type: "map(number)"},
		{Name: "b", Type: "bool"},
	}
	data, dropped, err := varFile(decls, map[string]string{
		"s": `["not", "a", "list"] ${x}`, "untyped": "3", "n": "3.5", "l": `["a", "b"]`, "m": `{ a = 1 }`, "b": "true", "zz": "x", "aa": "y",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":true,"l":["a","b"],"m":{"a":1},"n":3.5,"s":"[\"not\", \"a\", \"list\"] ${x}","untyped":"3"}`
	if string(data) != want {
		t.Errorf("var file:\n%s\nwant:\n%s", data, want)
	}
	if diff := cmp.Diff([]string{"aa", "zz"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	for _, bad := range []map[string]string{{"n": "3 +"}, {"l": "[var.x]"}} {
		if _, _, err := varFile(decls, bad); err == nil {
			t.Errorf("varFile(%v): no error", bad)
		}
	}
}
