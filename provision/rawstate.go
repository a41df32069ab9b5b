package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
)

// errStateFormat means a state file is not in the format parseStateFile
// reads; readResult then asks `terraform show -json` instead.
var errStateFormat = errors.New("provision: state file format not understood")

// rawState is terraform's state file, format version 4 (every terraform
// since 0.12 and OpenTofu write it): what readState needs of it.
type rawState struct {
	Version          int    `json:"version"`
	TerraformVersion string `json:"terraform_version"`
	Resources        []struct {
		Module    string `json:"module"` // "" for the root module
		Mode      string `json:"mode"`   // "managed" or "data"
		Type      string `json:"type"`
		Name      string `json:"name"`
		Provider  string `json:"provider"` // provider["registry/ns/name"], maybe with a module prefix or alias suffix
		Instances []struct {
			IndexKey   any            `json:"index_key"` // absent, a number (count) or a string (for_each)
			Attributes map[string]any `json:"attributes"`
		} `json:"instances"`
	} `json:"resources"`
}

// parseStateFile reads a state file into the form `terraform show -json`
// gives, without running terraform (which costs a process start, provider
// schema loading, and 150-250 ms a build). It returns errStateFormat for
// a state it does not know; callers then run `terraform show`.
//
// One difference remains: an attribute of dynamic type (such as
// terraform_data's input) keeps the state file's {"type", "value"}
// wrapping, which show removes with the provider's schema. readState
// reads every attribute of our provider's resources, which has none, and
// only the id of others.
func parseStateFile(data []byte) (*tfjson.State, error) {
	var raw rawState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // as terraform-json does
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", errStateFormat, err)
	}
	if raw.Version != 4 {
		return nil, fmt.Errorf("%w: version %d", errStateFormat, raw.Version)
	}
	root := &tfjson.StateModule{}
	modules := map[string]*tfjson.StateModule{"": root}
	for _, r := range raw.Resources {
		provider, err := providerSource(r.Provider)
		if err != nil {
			return nil, err
		}
		mode := tfjson.ManagedResourceMode
		prefix := ""
		switch r.Mode {
		case "managed":
		case "data":
			mode, prefix = tfjson.DataResourceMode, "data."
		default:
			return nil, fmt.Errorf("%w: resource mode %q", errStateFormat, r.Mode)
		}
		m := moduleFor(modules, r.Module)
		for _, in := range r.Instances {
			idx, err := indexSuffix(in.IndexKey)
			if err != nil {
				return nil, err
			}
			addr := prefix + r.Type + "." + r.Name + idx
			if r.Module != "" {
				addr = r.Module + "." + addr
			}
			m.Resources = append(m.Resources, &tfjson.StateResource{
				Address: addr, Mode: mode, Type: r.Type, Name: r.Name, Index: in.IndexKey,
				ProviderName: provider, AttributeValues: in.Attributes,
			})
		}
	}
	return &tfjson.State{TerraformVersion: raw.TerraformVersion, Values: &tfjson.StateValues{RootModule: root}}, nil
}

// moduleFor returns the module with that address, creating it and its
// parents (module.a.module.b is a child of module.a) as needed.
func moduleFor(modules map[string]*tfjson.StateModule, addr string) *tfjson.StateModule {
	if m, ok := modules[addr]; ok {
		return m
	}
	parent := ""
	if i := strings.LastIndex(addr, ".module."); i >= 0 {
		parent = addr[:i]
	}
	p := moduleFor(modules, parent)
	m := &tfjson.StateModule{Address: addr}
	p.ChildModules = append(p.ChildModules, m)
	modules[addr] = m
	return m
}

// providerSource extracts "registry/ns/name" from a state file's provider
// configuration address, e.g. module.m.provider["registry/ns/name"].alias.
func providerSource(s string) (string, error) {
	_, rest, ok := strings.Cut(s, `provider["`)
	if !ok {
		return "", fmt.Errorf("%w: provider %q", errStateFormat, s)
	}
	src, _, ok := strings.Cut(rest, `"]`)
	if !ok || src == "" {
		return "", fmt.Errorf("%w: provider %q", errStateFormat, s)
	}
	return src, nil
}

// indexSuffix is the address suffix of an instance key: "", [0] or
// ["key"].
func indexSuffix(key any) (string, error) {
	switch k := key.(type) {
	case nil:
		return "", nil
	case json.Number:
		return "[" + k.String() + "]", nil
	case string:
		return "[" + strconv.Quote(k) + "]", nil
	}
	return "", fmt.Errorf("%w: index key %v", errStateFormat, key)
}
