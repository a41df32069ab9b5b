package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Errors about variable values, each wrapped in a *VariableError.
var (
	ErrVariableMissing = errors.New("missing value for a required variable")
	ErrVariableUnknown = errors.New("the template declares no such variable")
	ErrVariableType    = errors.New("value does not fit the variable's type")
	ErrVariableSize    = errors.New("variable value too long")
)

// ErrTooManyValues is returned by CheckValues for a request with more than
// MaxVariableValues values.
var ErrTooManyValues = fmt.Errorf("too many variable values: at most %d", MaxVariableValues)

// VariableError says what is wrong with the value of one variable.
type VariableError struct {
	Name   string
	Reason string // for humans
	Err    error  // one of the ErrVariable* sentinels
}

func (e *VariableError) Error() string { return fmt.Sprintf("variable %q: %s", e.Name, e.Reason) }

func (e *VariableError) Unwrap() error { return e.Err }

// CheckValues checks values, in the -var form a build takes (see
// BuildRequest.Variables), against the variables a template declares:
// every required variable has a value, every value is for a declared
// variable, and each value parses as the variable's type. There may be at
// most MaxVariableValues values of at most MaxVariableValueBytes each, and
// values of non-string variables must be literals (see parseLiteral).
// Values of object types (whose optional attributes the stored type
// string does not record) are only checked to be literals; terraform
// checks the rest when the build runs. The first problem, by variable name, is returned as
// a *VariableError.
func CheckValues(decls []Variable, values map[string]string) error {
	if len(values) > MaxVariableValues {
		return ErrTooManyValues
	}
	byName := make(map[string]Variable, len(decls))
	for _, d := range decls {
		byName[d.Name] = d
	}
	names := make([]string, 0, len(values)+len(decls))
	for n := range values {
		names = append(names, n)
	}
	for _, d := range decls {
		if _, ok := values[d.Name]; !ok {
			names = append(names, d.Name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		d, declared := byName[name]
		raw, given := values[name]
		switch {
		case !declared:
			return &VariableError{Name: name, Reason: "the template declares no such variable", Err: ErrVariableUnknown}
		case !given && d.Required:
			return &VariableError{Name: name, Reason: fmt.Sprintf("required (type %s) but no value given", d.Type), Err: ErrVariableMissing}
		case len(raw) > MaxVariableValueBytes:
			return &VariableError{Name: name, Reason: fmt.Sprintf("value is %d bytes long, at most %d are allowed", len(raw), MaxVariableValueBytes), Err: ErrVariableSize}
		case given && !d.literal:
			if err := checkValue(d, raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkValue parses raw as a literal (see parseLiteral) and converts it to
// d's type.
func checkValue(d Variable, raw string) error {
	bad := func(why string) error {
		return &VariableError{Name: d.Name, Reason: fmt.Sprintf("value %s is not a valid %s: %s", quoteShort(raw), d.Type, why), Err: ErrVariableType}
	}
	val, err := parseLiteral(raw)
	if err != nil {
		return bad(err.Error())
	}
	tyExpr, diags := hclsyntax.ParseExpression([]byte(d.Type), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return nil // a type we cannot read back; terraform checks it
	}
	ty, diags := typeexpr.TypeConstraint(tyExpr)
	if diags.HasErrors() || hasObject(ty) {
		return nil
	}
	if _, err := convert.Convert(val, ty); err != nil {
		return bad(err.Error())
	}
	return nil
}

// quoteShort quotes s for an error message, cut to its first 64 bytes.
func quoteShort(s string) string {
	const n = 64
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:n]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// hasObject reports whether ty is or contains an object type.
func hasObject(ty cty.Type) bool {
	switch {
	case ty.IsObjectType():
		return true
	case ty.IsCollectionType():
		return hasObject(ty.ElementType())
	case ty.IsTupleType():
		return slices.ContainsFunc(ty.TupleElementTypes(), hasObject)
	}
	return false
}

// variableJSON is the JSON form of a Variable (see MarshalJSON).
type variableJSON struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Description string          `json:"description,omitempty"`
	Default     json.RawMessage `json:"default,omitempty"`
	Required    bool            `json:"required,omitempty"`
	Sensitive   bool            `json:"sensitive,omitempty"`
	Literal     bool            `json:"literal,omitempty"`
}

// MarshalJSON encodes v, including whether terraform takes its -var values
// literally, so that a stored Variable can be checked with CheckValues
// after UnmarshalJSON.
func (v Variable) MarshalJSON() ([]byte, error) {
	return json.Marshal(variableJSON{Name: v.Name, Type: v.Type, Description: v.Description, Default: v.Default,
		Required: v.Required, Sensitive: v.Sensitive, Literal: v.literal})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (v *Variable) UnmarshalJSON(b []byte) error {
	var j variableJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = Variable{Name: j.Name, Type: j.Type, Description: j.Description, Default: j.Default,
		Required: j.Required, Sensitive: j.Sensitive, literal: j.Literal}
	return nil
}
