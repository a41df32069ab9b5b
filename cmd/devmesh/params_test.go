package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devmesh/devmesh/provision/param"
)

func TestParseParamFile(t *testing.T) {
	got, err := parseParamFile([]byte("region: eu\ncpus: 4\nratio: 0.5\ngpu: false\ntools: [git, go]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"region": "eu", "cpus": "4", "ratio": "0.5", "gpu": "false", "tools": `["git","go"]`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("YAML (-want +got):\n%s", diff)
	}
	if got, err = parseParamFile([]byte(`{"region": "us", "cpus": 2}`)); err != nil || got["region"] != "us" || got["cpus"] != "2" {
		t.Errorf("JSON: %v, %v", got, err)
	}
	if _, err := parseParamFile([]byte("nested: {a: 1}\n")); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("a map value: %v", err)
	}
	// --param wins over the file.
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte("region: eu\n"), 0o600)
	pf := paramFlags{values: []string{"region=us"}, file: f}
	if got, err := pf.parse(); err != nil || got["region"] != "us" {
		t.Errorf("flags over file: %v, %v", got, err)
	}
}

func TestAskParams(t *testing.T) {
	decls := []param.Parameter{
		{Name: "region", Description: "Where it runs.", Type: param.TypeString,
			Options: []param.Option{{Name: "Europe", Value: "eu"}, {Name: "US", Value: "us"}}},
		{Name: "cpus", Type: param.TypeNumber, Default: ptr("2")},
		{Name: "disk", Type: param.TypeNumber},
	}
	// On a terminal: asked for the required ones, options shown, a bad
	// answer asked again, an option chosen by its number.
	var out bytes.Buffer
	values := map[string]string{}
	if err := askParams(strings.NewReader("mars\n2\nlots\n30\n"), &out, true, decls, values); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"region": "us", "disk": "30"}, values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Where it runs.", "1) Europe = eu", `"mars" is not one of the options`, `"lots" is not a number`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("prompt lacks %q:\n%s", want, out.String())
		}
	}
	// Without a terminal: an error naming the first missing one.
	err := askParams(strings.NewReader(""), &out, false, decls, map[string]string{"region": "eu"})
	if err == nil || !strings.Contains(err.Error(), `parameter "disk" (number) is required: give it with --param disk=VALUE`) {
		t.Errorf("no terminal: %v", err)
	}
	// Input ends: an error, not a loop.
	if err := askParams(strings.NewReader("mars"), &out, true, decls, map[string]string{}); err == nil {
		t.Error("EOF after a bad answer: no error")
	}
}

func ptr[T any](v T) *T { return &v }

func TestDeleteConfirmation(t *testing.T) {
	var out bytes.Buffer
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, "n\n": false, "\n": false, "sure\n": false} {
		got, err := askYesNo(strings.NewReader(in), &out, "Delete? ")
		if err != nil || got != want {
			t.Errorf("answer %q: %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := askYesNo(strings.NewReader(""), &out, "Delete? "); err == nil {
		t.Error("no answer (EOF): no error")
	}
}
