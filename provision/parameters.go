package provision

import (
	"fmt"
	"math"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/devmesh/devmesh/provision/param"
)

// ParameterError is a problem with a devmesh_parameter declaration, with
// where it is (file:line).
type ParameterError struct {
	Pos   string // "main.tf:12"
	Block string // "data.devmesh_parameter.region"
	Msg   string
}

func (e *ParameterError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Pos, e.Block, e.Msg) }

// parameterDataSource is the provider's data source type for parameters.
const parameterDataSource = "devmesh_parameter"

var parameterSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "name", Required: true}, {Name: "display_name"}, {Name: "description"},
		{Name: "type"}, {Name: "default"}, {Name: "mutable"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "option"}, {Type: "validation"}},
}

var optionSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "name", Required: true}, {Name: "value", Required: true}, {Name: "description"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "regex"}, {Name: "min"}, {Name: "max"}, {Name: "monotonic"}, {Name: "error"}},
}

// declContext is what a declaration's expressions may use: constants and
// jsonencode (for a list(string) default or option).
var declContext = &hcl.EvalContext{Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc}}

// paramDecoder reads one devmesh_parameter block, remembering the first
// problem.
type paramDecoder struct {
	block *hcl.Block
	err   *ParameterError
}

func (d *paramDecoder) fail(rng hcl.Range, format string, args ...any) {
	if d.err == nil {
		d.err = &ParameterError{Pos: fmt.Sprintf("%s:%d", rng.Filename, rng.Start.Line),
			Block: "data." + parameterDataSource + "." + d.block.Labels[1], Msg: fmt.Sprintf(format, args...)}
	}
}

// decodeParameter reads a devmesh_parameter block. Its attributes must be
// constants: devmesh reads them when the template is pushed.
func decodeParameter(b *hcl.Block) (param.Parameter, *ParameterError) {
	d := &paramDecoder{block: b}
	p := param.Parameter{Type: param.TypeString}
	content, diags := b.Body.Content(parameterSchema)
	if diags.HasErrors() {
		d.fail(diagRange(diags, b.DefRange), "%s", diags[0].Detail)
		return p, d.err
	}
	d.str(content.Attributes["name"], &p.Name)
	d.str(content.Attributes["display_name"], &p.DisplayName)
	d.str(content.Attributes["description"], &p.Description)
	d.str(content.Attributes["type"], &p.Type)
	if a := content.Attributes["default"]; a != nil {
		var s string
		if d.str(a, &s) {
			p.Default = &s
		}
	}
	if a := content.Attributes["mutable"]; a != nil {
		if v, ok := d.value(a, cty.Bool); ok {
			p.Mutable = v.True()
		}
	}
	for _, ob := range content.Blocks {
		switch ob.Type {
		case "option":
			p.Options = append(p.Options, d.option(ob))
		case "validation":
			if p.Validation != nil {
				d.fail(ob.DefRange, "at most one validation block")
			}
			p.Validation = d.validation(ob)
		}
	}
	if d.err == nil {
		if err := param.CheckDeclaration(p); err != nil {
			d.fail(b.DefRange, "%v", err)
		}
	}
	return p, d.err
}

// value evaluates a as a constant of type ty; ok is false for a null.
func (d *paramDecoder) value(a *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	v, diags := a.Expr.Value(declContext)
	if diags.HasErrors() {
		d.fail(a.Expr.Range(), "%s must be a constant (devmesh reads it when the template is pushed): %s", a.Name, diags[0].Summary)
		return cty.NilVal, false
	}
	v, err := convert.Convert(v, ty)
	if err != nil {
		d.fail(a.Expr.Range(), "%s: %v", a.Name, err)
		return cty.NilVal, false
	}
	return v, !v.IsNull() && v.IsKnown()
}

// str sets *dst from a string attribute a, if present and not null.
func (d *paramDecoder) str(a *hcl.Attribute, dst *string) bool {
	if a == nil {
		return false
	}
	v, ok := d.value(a, cty.String)
	if ok {
		*dst = v.AsString()
	}
	return ok
}

func (d *paramDecoder) num(a *hcl.Attribute) *float64 {
	if a == nil {
		return nil
	}
	v, ok := d.value(a, cty.Number)
	if !ok {
		return nil
	}
	f, _ := v.AsBigFloat().Float64()
	if math.IsInf(f, 0) {
		d.fail(a.Expr.Range(), "%s: out of range", a.Name)
		return nil
	}
	return &f
}

// diagRange is where the first diagnostic points, else fallback.
func diagRange(diags hcl.Diagnostics, fallback hcl.Range) hcl.Range {
	if diags[0].Subject != nil {
		return *diags[0].Subject
	}
	return fallback
}

func (d *paramDecoder) option(b *hcl.Block) param.Option {
	var o param.Option
	content, diags := b.Body.Content(optionSchema)
	if diags.HasErrors() {
		d.fail(diagRange(diags, b.DefRange), "option: %s", diags[0].Detail)
		return o
	}
	d.str(content.Attributes["name"], &o.Name)
	d.str(content.Attributes["value"], &o.Value)
	d.str(content.Attributes["description"], &o.Description)
	return o
}

func (d *paramDecoder) validation(b *hcl.Block) *param.Validation {
	var v param.Validation
	content, diags := b.Body.Content(validationSchema)
	if diags.HasErrors() {
		d.fail(diagRange(diags, b.DefRange), "validation: %s", diags[0].Detail)
		return &v
	}
	d.str(content.Attributes["regex"], &v.Regex)
	d.str(content.Attributes["monotonic"], &v.Monotonic)
	d.str(content.Attributes["error"], &v.Error)
	v.Min = d.num(content.Attributes["min"])
	v.Max = d.num(content.Attributes["max"])
	return &v
}

// parameterSet collects a module's parameters, refusing duplicate names.
type parameterSet struct {
	list []param.Parameter
	seen map[string]string // name -> where it was declared
}

// add reads b if it is a devmesh_parameter data source.
func (s *parameterSet) add(b *hcl.Block) error {
	if b.Labels[0] != parameterDataSource {
		return nil
	}
	p, perr := decodeParameter(b)
	if perr != nil {
		return perr
	}
	pos := fmt.Sprintf("%s:%d", b.DefRange.Filename, b.DefRange.Start.Line)
	if first, dup := s.seen[p.Name]; dup {
		return &ParameterError{Pos: pos, Block: "data." + parameterDataSource + "." + b.Labels[1],
			Msg: fmt.Sprintf("parameter name %q is already declared at %s", p.Name, first)}
	}
	if len(s.list) == param.MaxParameters {
		return &ParameterError{Pos: pos, Block: "data." + parameterDataSource + "." + b.Labels[1],
			Msg: fmt.Sprintf("a template may declare at most %d parameters", param.MaxParameters)}
	}
	s.seen[p.Name] = pos
	s.list = append(s.list, p)
	return nil
}
