package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/devmesh/devmesh/provision/param"
)

// ErrBackendConfigured is returned for a template whose root module sets a
// backend or a cloud block: devmesh keeps each workspace's state itself.
var ErrBackendConfigured = errors.New("template must not configure a terraform backend or cloud block")

// ErrEmptyTemplate is returned for a template with no .tf or .tf.json file
// at the root of its archive.
var ErrEmptyTemplate = errors.New("template has no .tf or .tf.json files at its root")

// Variable is an input variable declared by a template's root module.
type Variable struct {
	Name        string
	Type        string          // type constraint as terraform prints it ("string", "list(string)", "any" if none)
	Description string          // "" if none
	Default     json.RawMessage // the default as JSON; nil when Required
	Required    bool            // no default: a build must give a value
	Sensitive   bool

	// literal is true when terraform takes a -var value of this variable
	// literally (type string or no type), false when it parses it as HCL.
	literal bool
}

// moduleSchema picks the blocks of a root module that we read.
var moduleSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "terraform"},
		{Type: "data", LabelNames: []string{"type", "name"}},
		{Type: "resource", LabelNames: []string{"type", "name"}},
	},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
}

var terraformSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "backend", LabelNames: []string{"type"}},
		{Type: "cloud"},
	},
}

// Module is what devmesh reads out of a template's root module.
type Module struct {
	Variables  []Variable        // sorted by name
	Parameters []param.Parameter // devmesh_parameter data sources, in file order
	Agents     int               // devmesh_agent resources
}

// readModule parses the root module in dir (its *.tf and *.tf.json files,
// not override files) and returns its variables and parameters. It fails
// with ErrBackendConfigured if the module configures a backend, and with a
// *ParameterError for a bad devmesh_parameter declaration.
func readModule(dir string) (Module, error) {
	names, err := moduleFiles(dir)
	if err != nil {
		return Module{}, err
	}
	p := hclparse.NewParser()
	var vars []Variable
	params := parameterSet{seen: map[string]string{}}
	agents := 0
	for _, name := range names {
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return Module{}, fmt.Errorf("read template: %w", err)
		}
		var f *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(name, ".json") {
			f, diags = p.ParseJSON(src, name)
		} else {
			f, diags = p.ParseHCL(src, name)
		}
		if diags.HasErrors() {
			return Module{}, fmt.Errorf("read template: %w", diags)
		}
		content, _, diags := f.Body.PartialContent(moduleSchema)
		if diags.HasErrors() {
			return Module{}, fmt.Errorf("read template: %w", diags)
		}
		for _, b := range content.Blocks {
			switch b.Type {
			case "terraform":
				if err := checkNoBackend(b); err != nil {
					return Module{}, err
				}
			case "data":
				if err := params.add(b); err != nil {
					return Module{}, err
				}
			case "resource":
				if b.Labels[0] == "devmesh_agent" {
					agents++
				}
			case "variable":
				v, err := decodeVariable(b)
				if err != nil {
					return Module{}, err
				}
				vars = append(vars, v)
			}
		}
	}
	slices.SortFunc(vars, func(a, b Variable) int { return strings.Compare(a.Name, b.Name) })
	return Module{Variables: vars, Parameters: params.list, Agents: agents}, nil
}

// moduleFiles lists the configuration files terraform loads from dir,
// leaving out override files, which we do not merge.
func moduleFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".tf") || strings.HasSuffix(n, ".tf.json")) {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(n, ".json"), ".tf")
		if base == "override" || strings.HasSuffix(base, "_override") {
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, ErrEmptyTemplate
	}
	return names, nil
}

func checkNoBackend(b *hcl.Block) error {
	content, _, diags := b.Body.PartialContent(terraformSchema)
	if diags.HasErrors() {
		return fmt.Errorf("read template: %w", diags)
	}
	if len(content.Blocks) > 0 {
		blk := content.Blocks[0]
		return fmt.Errorf("%w (%s block at %s)", ErrBackendConfigured, blk.Type, blk.DefRange)
	}
	return nil
}

// decodeVariable reads one variable block. Expressions in it must be
// constants, as terraform itself requires.
func decodeVariable(b *hcl.Block) (Variable, error) {
	v := Variable{Name: b.Labels[0], Type: "any", literal: true}
	content, _, diags := b.Body.PartialContent(variableSchema)
	if diags.HasErrors() {
		return v, fmt.Errorf("variable %q: %w", v.Name, diags)
	}
	ty := cty.DynamicPseudoType
	var defaults *typeexpr.Defaults // of optional object attributes
	if attr, ok := content.Attributes["type"]; ok {
		t, d, diags := typeexpr.TypeConstraintWithDefaults(attr.Expr)
		if diags.HasErrors() {
			return v, fmt.Errorf("variable %q: %w", v.Name, diags)
		}
		ty, defaults, v.Type = t, d, typeexpr.TypeString(t)
		v.literal = t == cty.String
	}
	if attr, ok := content.Attributes["description"]; ok {
		if err := constValue(attr, cty.String, func(val cty.Value) { v.Description = val.AsString() }); err != nil {
			return v, fmt.Errorf("variable %q: %w", v.Name, err)
		}
	}
	if attr, ok := content.Attributes["sensitive"]; ok {
		if err := constValue(attr, cty.Bool, func(val cty.Value) { v.Sensitive = val.True() }); err != nil {
			return v, fmt.Errorf("variable %q: %w", v.Name, err)
		}
	}
	attr, ok := content.Attributes["default"]
	if !ok {
		v.Required = true
		return v, nil
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return v, fmt.Errorf("variable %q: default: %w", v.Name, diags)
	}
	if defaults != nil {
		val = defaults.Apply(val)
	}
	if val, err := convert.Convert(val, ty); err == nil { // else terraform reports it
		v.Default, err = marshalValue(val)
		if err != nil {
			return v, fmt.Errorf("variable %q: default: %w", v.Name, err)
		}
	}
	return v, nil
}

// constValue evaluates attr as a constant of type ty and hands a non-null
// result to set.
func constValue(attr *hcl.Attribute, ty cty.Type, set func(cty.Value)) error {
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return fmt.Errorf("%s: %w", attr.Name, diags)
	}
	val, err := convert.Convert(val, ty)
	if err != nil {
		return fmt.Errorf("%s: %w", attr.Name, err)
	}
	if !val.IsNull() && val.IsKnown() {
		set(val)
	}
	return nil
}

func marshalValue(val cty.Value) (json.RawMessage, error) {
	if val.IsNull() {
		return json.RawMessage("null"), nil
	}
	return ctyjson.SimpleJSONValue{Value: val}.MarshalJSON()
}

// varFile turns -var style values (a string per variable, taken literally
// for string variables and parsed as a literal for others, see
// parseLiteral) into the
// JSON of a .tfvars.json file. Values for variables the template does not
// declare are dropped, since a new template version may remove variables;
// their names are returned.
func varFile(decls []Variable, values map[string]string) (data []byte, dropped []string, err error) {
	byName := make(map[string]Variable, len(decls))
	for _, d := range decls {
		byName[d.Name] = d
	}
	out := make(map[string]json.RawMessage, len(values))
	for name, raw := range values {
		d, ok := byName[name]
		if !ok {
			dropped = append(dropped, name)
			continue
		}
		if d.literal {
			out[name], _ = json.Marshal(raw)
			continue
		}
		val, err := parseLiteral(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("variable %q: value is not a valid %s: %w", name, d.Type, err)
		}
		if out[name], err = marshalValue(val); err != nil {
			return nil, nil, fmt.Errorf("variable %q: %w", name, err)
		}
	}
	slices.Sort(dropped)
	data, err = json.Marshal(out)
	return data, dropped, err
}
