package provision

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Bounds on the variable values of one build request (see CheckValues).
// Values come from members, and values for non-string variables are
// parsed, so both their number and their size are capped, and parsing
// accepts only literals: evaluating HCL expressions (nested for
// expressions, function calls) can cost time and memory exponential in
// the length of the value.
const (
	// MaxVariableValues bounds how many values one request may give.
	MaxVariableValues = 100
	// MaxVariableValueBytes bounds the length of one value.
	MaxVariableValueBytes = 16 << 10
	// maxLiteralDepth bounds how deeply lists and objects nest in a value.
	maxLiteralDepth = 32
	// maxNumberExp bounds the binary exponent of a number in a value:
	// float64's range, with room. A number like 1e1000000000 is 12
	// bytes, but writing it out in full (as the var file must) takes a
	// gigabyte.
	maxNumberExp = 1100
)

// parseLiteral parses raw, the -var form of a value for a variable that
// terraform does not take literally, as a constant. raw must be JSON
// (read as JSON: its strings are taken literally, "${" included), or else
// an HCL expression made only of literals: numbers, true, false, null,
// quoted strings and heredocs without interpolation, and lists and
// objects of those. Function calls, for expressions, operators (but a
// leading minus on a number), references and "${...}" are refused before
// anything is evaluated, so parsing costs time linear in len(raw).
func parseLiteral(raw string) (cty.Value, error) {
	if len(raw) > MaxVariableValueBytes {
		return cty.NilVal, fmt.Errorf("%d bytes long, at most %d are allowed", len(raw), MaxVariableValueBytes)
	}
	val, err := parseLiteralSyntax(raw)
	if err != nil {
		return cty.NilVal, err
	}
	if err := checkNumbers(val); err != nil {
		return cty.NilVal, err
	}
	return val, nil
}

func parseLiteralSyntax(raw string) (cty.Value, error) {
	if json.Valid([]byte(raw)) {
		if jsonDepth(raw) > maxLiteralDepth {
			return cty.NilVal, fmt.Errorf("lists and objects nest more than %d deep", maxLiteralDepth)
		}
		ty, err := ctyjson.ImpliedType([]byte(raw))
		if err != nil {
			return cty.NilVal, err
		}
		return ctyjson.Unmarshal([]byte(raw), ty)
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "value", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, errors.New(diags[0].Summary)
	}
	if err := checkLiteralExpr(expr, 0); err != nil {
		return cty.NilVal, err
	}
	val, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, errors.New(diags[0].Summary)
	}
	return val, nil
}

// errNotLiteral says what a value may be.
var errNotLiteral = errors.New("only literal values are allowed: numbers, true, false, null, quoted strings, and lists and objects of them")

var errTemplate = fmt.Errorf("%w (no ${...} or %%{...} in strings; write $${ for a literal ${)", errNotLiteral)

// checkLiteralExpr accepts expr if it is made only of literals (see
// parseLiteral), without evaluating anything.
func checkLiteralExpr(expr hclsyntax.Expression, depth int) error {
	if depth > maxLiteralDepth {
		return fmt.Errorf("lists and objects nest more than %d deep", maxLiteralDepth)
	}
	switch e := expr.(type) {
	case *hclsyntax.LiteralValueExpr:
		return nil
	case *hclsyntax.TemplateExpr:
		for _, p := range e.Parts {
			if lit, ok := p.(*hclsyntax.LiteralValueExpr); !ok || lit.Val.Type() != cty.String {
				return errTemplate
			}
		}
		return nil
	case *hclsyntax.TemplateWrapExpr:
		return errTemplate
	case *hclsyntax.UnaryOpExpr:
		if lit, ok := e.Val.(*hclsyntax.LiteralValueExpr); ok && e.Op == hclsyntax.OpNegate && lit.Val.Type() == cty.Number {
			return nil
		}
	case *hclsyntax.TupleConsExpr:
		for _, el := range e.Exprs {
			if err := checkLiteralExpr(el, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *hclsyntax.ObjectConsExpr:
		for _, it := range e.Items {
			if err := checkObjectKey(it.KeyExpr); err != nil {
				return err
			}
			if err := checkLiteralExpr(it.ValueExpr, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *hclsyntax.ForExpr:
		return fmt.Errorf("%w (no for expressions)", errNotLiteral)
	case *hclsyntax.FunctionCallExpr:
		return fmt.Errorf("%w (no function calls)", errNotLiteral)
	case *hclsyntax.ScopeTraversalExpr, *hclsyntax.RelativeTraversalExpr, *hclsyntax.IndexExpr, *hclsyntax.SplatExpr:
		return fmt.Errorf("%w (no references)", errNotLiteral)
	}
	return errNotLiteral
}

// checkObjectKey accepts a bare name (a = 1) or a quoted string without
// interpolation ("a b" = 1) as an object key.
func checkObjectKey(expr hclsyntax.Expression) error {
	k, ok := expr.(*hclsyntax.ObjectConsKeyExpr)
	if !ok || k.ForceNonLiteral {
		return fmt.Errorf("%w (object keys must be names or quoted strings)", errNotLiteral)
	}
	if hcl.ExprAsKeyword(k.Wrapped) != "" {
		return nil
	}
	switch w := k.Wrapped.(type) {
	case *hclsyntax.TemplateExpr, *hclsyntax.TemplateWrapExpr, *hclsyntax.LiteralValueExpr:
		return checkLiteralExpr(w, 0)
	}
	return fmt.Errorf("%w (object keys must be names or quoted strings)", errNotLiteral)
}

// jsonDepth returns how deeply arrays and objects nest in the valid JSON
// text raw.
func jsonDepth(raw string) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// checkNumbers refuses numbers far outside float64's range, whose decimal
// form (in the var file, and in terraform's plan) would be huge.
func checkNumbers(val cty.Value) error {
	return cty.Walk(val, func(_ cty.Path, v cty.Value) (bool, error) {
		if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
			return true, nil
		}
		f := v.AsBigFloat()
		if f.IsInf() {
			return false, errors.New("number out of range")
		}
		if exp := f.MantExp(nil); f.Sign() != 0 && (exp > maxNumberExp || exp < -maxNumberExp) {
			return false, fmt.Errorf("number %s out of range", f.Text('g', 6))
		}
		return true, nil
	})
}
