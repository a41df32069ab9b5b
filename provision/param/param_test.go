package param

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestCheckDeclaration(t *testing.T) {
	tests := []struct {
		name string
		p    Parameter
		want string // "" for valid
	}{
		{"plain string", Parameter{Name: "region", Type: TypeString}, ""},
		{"list with options", Parameter{Name: "tools", Type: TypeListString, Default: ptr(`["git"]`),
			Options: []Option{{Name: "Git", Value: "git"}, {Name: "Go", Value: "go"}}}, ""},
		{"bad name", Parameter{Name: "Region", Type: TypeString}, "invalid name"},
		{"bad type", Parameter{Name: "x", Type: "map(string)"}, "invalid type"},
		{"options on bool", Parameter{Name: "x", Type: TypeBool, Options: []Option{{Name: "y", Value: "true"}}}, "options do not apply"},
		{"duplicate option", Parameter{Name: "x", Type: TypeString, Options: []Option{{Name: "a", Value: "1"}, {Name: "b", Value: "1"}}}, "appears twice"},
		{"number option not a number", Parameter{Name: "x", Type: TypeNumber, Options: []Option{{Name: "a", Value: "one"}}}, "not a number"},
		{"regex on number", Parameter{Name: "x", Type: TypeNumber, Validation: &Validation{Regex: "^1$"}}, "regex applies only"},
		{"bad regex", Parameter{Name: "x", Type: TypeString, Validation: &Validation{Regex: "("}}, "validation regex"},
		{"min on string", Parameter{Name: "x", Type: TypeString, Validation: &Validation{Min: ptr(1.0)}}, "apply only to a number"},
		{"min above max", Parameter{Name: "x", Type: TypeNumber, Validation: &Validation{Min: ptr(3.0), Max: ptr(2.0)}}, "greater than max"},
		{"monotonic immutable", Parameter{Name: "x", Type: TypeNumber, Validation: &Validation{Monotonic: Increasing}}, "needs mutable"},
		{"bad monotonic", Parameter{Name: "x", Type: TypeNumber, Mutable: true, Validation: &Validation{Monotonic: "up"}}, "monotonic"},
		{"default not an option", Parameter{Name: "x", Type: TypeString, Default: ptr("c"), Options: []Option{{Name: "a", Value: "a"}}}, `default "c"`},
		{"default out of range", Parameter{Name: "x", Type: TypeNumber, Default: ptr("0"), Validation: &Validation{Min: ptr(1.0)}}, "less than the minimum"},
		{"bool default", Parameter{Name: "x", Type: TypeBool, Default: ptr("yes")}, "not a bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDeclaration(tt.p)
			if tt.want == "" && err != nil {
				t.Fatalf("CheckDeclaration: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CheckDeclaration: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckValue(t *testing.T) {
	re := Parameter{Name: "user", Type: TypeString, Validation: &Validation{Regex: "^[a-z]+$", Error: "lowercase letters only"}}
	tests := []struct {
		p     Parameter
		value string
		want  string
	}{
		{re, "alice", ""},
		{re, "Alice", "lowercase letters only"},
		{Parameter{Name: "n", Type: TypeNumber}, "1.5", ""},
		{Parameter{Name: "n", Type: TypeNumber}, "NaN", "not a number"},
		{Parameter{Name: "n", Type: TypeNumber}, "1+1", "not a number"},
		{Parameter{Name: "b", Type: TypeBool}, "true", ""},
		{Parameter{Name: "b", Type: TypeBool}, "1", "not a bool"},
		{Parameter{Name: "l", Type: TypeListString}, `["a","b"]`, ""},
		{Parameter{Name: "l", Type: TypeListString}, `a,b`, "not a list of strings"},
		{Parameter{Name: "l", Type: TypeListString, Options: []Option{{Name: "A", Value: "a"}}}, `["a","z"]`, `"z" is not one of the options`},
		{Parameter{Name: "s", Type: TypeString}, strings.Repeat("x", MaxValueBytes+1), "longer than"},
		{Parameter{Name: "s", Type: TypeString}, "${file(\"/etc/passwd\")}", ""}, // literal, never evaluated
	}
	for _, tt := range tests {
		err := CheckValue(tt.p, tt.value)
		if tt.want == "" && err != nil {
			t.Errorf("%s=%.20q: %v", tt.p.Name, tt.value, err)
		}
		if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s=%.20q: %v, want ErrInvalid containing %q", tt.p.Name, tt.value, err, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	decls := []Parameter{
		{Name: "region", Type: TypeString, Default: ptr("eu")},
		{Name: "disk", Type: TypeNumber, Mutable: true, Validation: &Validation{Monotonic: Increasing}},
		{Name: "image", Type: TypeString},
	}
	tests := []struct {
		name            string
		given, previous map[string]string
		want            map[string]string
		is              error
	}{
		{name: "create with defaults", given: map[string]string{"disk": "10", "image": "debian"},
			want: map[string]string{"region": "eu", "disk": "10", "image": "debian"}},
		{name: "create missing required", given: map[string]string{"disk": "10"}, is: ErrMissing},
		{name: "unknown", given: map[string]string{"disk": "10", "image": "x", "colour": "red"}, is: ErrUnknown},
		{name: "update carries values", previous: map[string]string{"region": "us", "disk": "10", "image": "debian", "gone": "x"},
			want: map[string]string{"region": "us", "disk": "10", "image": "debian"}},
		{name: "update mutable", given: map[string]string{"disk": "20"}, previous: map[string]string{"region": "us", "disk": "10", "image": "debian"},
			want: map[string]string{"region": "us", "disk": "20", "image": "debian"}},
		{name: "update immutable refused", given: map[string]string{"image": "ubuntu"}, previous: map[string]string{"region": "us", "disk": "10", "image": "debian"}, is: ErrImmutable},
		{name: "update immutable same value", given: map[string]string{"image": "debian"}, previous: map[string]string{"region": "us", "disk": "10", "image": "debian"},
			want: map[string]string{"region": "us", "disk": "10", "image": "debian"}},
		{name: "monotonic", given: map[string]string{"disk": "5"}, previous: map[string]string{"disk": "10", "image": "debian"}, is: ErrInvalid},
		{name: "new required parameter in a new version", previous: map[string]string{"disk": "10"}, is: ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(decls, tt.given, tt.previous)
			if tt.is != nil {
				var ve *ValueError
				if !errors.Is(err, tt.is) || !errors.As(err, &ve) {
					t.Fatalf("Resolve: %v, want %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}
