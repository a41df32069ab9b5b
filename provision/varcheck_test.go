package provision

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckValues(t *testing.T) {
	dir := writeModule(t, map[string]string{"main.tf": `
variable "name" {
  type = string
}
variable "size" {
  type    = number
  default = 1
}
variable "tags" {
  type    = list(string)
  default = []
}
variable "opts" {
  type = object({
    cpu = optional(number, 2)
    mem = number
  })
  default = { mem = 1 }
}
variable "untyped" {
  default = "x"
}
variable "flag" {
  type    = bool
  default = false
}
`})
	mod, err := readModule(dir)
	decls := mod.Variables
	if err != nil {
		t.Fatal(err)
	}
	// Variables survive a round trip through their stored JSON form.
	b, err := json.Marshal(decls)
	if err != nil {
		t.Fatal(err)
	}
	var stored []Variable
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(decls, stored, cmp.AllowUnexported(Variable{})); diff != "" {
		t.Fatalf("JSON round trip (-want +got):\n%s", diff)
	}
	tests := []struct {
		name   string
		values map[string]string
		is     error  // nil: accepted
		want   string // substring of the error
	}{
		{name: "minimal", values: map[string]string{"name": "dev"}},
		{name: "all", values: map[string]string{"name": "x y", "size": "3", "tags": `["a", "b"]`, "opts": `{ mem = 2 }`, "untyped": "{not hcl", "flag": "true"}},
		{name: "number as string parses", values: map[string]string{"name": "a", "size": `"4"`}},
		{name: "missing", values: map[string]string{"size": "2"}, is: ErrVariableMissing, want: `variable "name": required (type string)`},
		{name: "unknown", values: map[string]string{"name": "a", "nmae": "b"}, is: ErrVariableUnknown, want: `"nmae"`},
		{name: "not a number", values: map[string]string{"name": "a", "size": "big"}, is: ErrVariableType, want: `variable "size": value "big" is not a valid number`},
		{name: "bad list", values: map[string]string{"name": "a", "tags": `["a", ["b"]]`}, is: ErrVariableType, want: `"tags"`},
		{name: "bad bool", values: map[string]string{"name": "a", "flag": "maybe"}, is: ErrVariableType, want: `"flag"`},
		{name: "syntax", values: map[string]string{"name": "a", "tags": `["a"`}, is: ErrVariableType, want: `"tags"`},
		{name: "object only parsed", values: map[string]string{"name": "a", "opts": `{ cpu = 1 }`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckValues(stored, tt.values)
			if tt.is == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var ve *VariableError
			if !errors.Is(err, tt.is) || !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %v containing %q", err, tt.is, tt.want)
			}
		})
	}
}
