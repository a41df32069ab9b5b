// Package param defines template parameters (the devmesh_parameter data
// source): their declaration, the checks a template push makes on it, and
// the checks every value goes through, at the coordinator before a build
// is queued and in the provider when terraform reads it. Values are
// strings taken literally, never evaluated: a number in decimal, a bool as
// "true" or "false", a list(string) as a JSON array of strings.
package param

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Types a parameter may have.
const (
	TypeString     = "string"
	TypeNumber     = "number"
	TypeBool       = "bool"
	TypeListString = "list(string)"
)

// Types lists the parameter types, for messages.
var Types = []string{TypeString, TypeNumber, TypeBool, TypeListString}

// Monotonic directions a number parameter may be held to across updates.
const (
	Increasing = "increasing"
	Decreasing = "decreasing"
)

// Bounds on parameters and their values.
const (
	MaxParameters  = 64
	MaxValueBytes  = 4096
	MaxOptions     = 64
	maxNameLen     = 64
	maxDescription = 2000
)

// EnvValues is the environment variable through which the provisioner
// hands a build's parameter values (a JSON object of name to value) to the
// provider. It is never a command-line argument.
const EnvValues = "DEVMESH_PARAMETERS"

// nameRE: parameter names are keys in files, flags and JSON.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Option is one allowed value of a parameter.
type Option struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

// Validation constrains a parameter's values: Regex for strings, Min, Max
// and Monotonic for numbers. Error, if set, replaces the generic message.
type Validation struct {
	Regex     string   `json:"regex,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	Monotonic string   `json:"monotonic,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Parameter is a template parameter as declared by a devmesh_parameter
// data source.
type Parameter struct {
	Name        string      `json:"name"`
	DisplayName string      `json:"display_name,omitempty"`
	Description string      `json:"description,omitempty"`
	Type        string      `json:"type"`
	Default     *string     `json:"default,omitempty"` // nil: required
	Options     []Option    `json:"options,omitempty"`
	Validation  *Validation `json:"validation,omitempty"`
	Mutable     bool        `json:"mutable,omitempty"`
}

// Required reports whether a value must be given (there is no default).
func (p Parameter) Required() bool { return p.Default == nil }

// Label is the display name, else the name.
func (p Parameter) Label() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Name
}

// Errors wrapped by ValueError.
var (
	ErrMissing   = errors.New("missing value for a required parameter")
	ErrUnknown   = errors.New("the template declares no such parameter")
	ErrInvalid   = errors.New("invalid parameter value")
	ErrImmutable = errors.New("parameter is not mutable")
)

// ValueError says what is wrong with the value of one parameter.
type ValueError struct {
	Name   string
	Reason string
	Err    error
}

func (e *ValueError) Error() string { return fmt.Sprintf("parameter %q: %s", e.Name, e.Reason) }

func (e *ValueError) Unwrap() error { return e.Err }

// CheckDeclaration checks that p is a consistent declaration: a valid name
// and type, options and validation that fit the type, and a default that
// passes its own checks. The error says what to fix.
func CheckDeclaration(p Parameter) error {
	switch {
	case !nameRE.MatchString(p.Name) || len(p.Name) > maxNameLen:
		return fmt.Errorf("invalid name %q: use lowercase letters, digits and '_', starting with a letter, at most %d characters", p.Name, maxNameLen)
	case !slices.Contains(Types, p.Type):
		return fmt.Errorf("invalid type %q: want one of %s", p.Type, strings.Join(Types, ", "))
	case len(p.Description) > maxDescription || len(p.DisplayName) > maxDescription:
		return fmt.Errorf("description or display_name longer than %d bytes", maxDescription)
	case len(p.Options) > MaxOptions:
		return fmt.Errorf("more than %d options", MaxOptions)
	case len(p.Options) > 0 && p.Type == TypeBool:
		return errors.New("options do not apply to a bool parameter")
	}
	seen := map[string]bool{}
	for _, o := range p.Options {
		if seen[o.Value] {
			return fmt.Errorf("option value %q appears twice", o.Value)
		}
		seen[o.Value] = true
		if err := checkType(p.Type, o.Value, p.Type == TypeListString); err != nil {
			return fmt.Errorf("option %q: %v", o.Name, err)
		}
	}
	if err := checkValidationDecl(p); err != nil {
		return err
	}
	if p.Default != nil {
		if err := CheckValue(p, *p.Default); err != nil {
			var ve *ValueError
			if errors.As(err, &ve) {
				return fmt.Errorf("default %q: %s", *p.Default, ve.Reason)
			}
			return err
		}
	}
	return nil
}

func checkValidationDecl(p Parameter) error {
	v := p.Validation
	if v == nil {
		return nil
	}
	if v.Regex != "" {
		if p.Type != TypeString {
			return fmt.Errorf("validation regex applies only to a string parameter, not %s", p.Type)
		}
		if _, err := regexp.Compile(v.Regex); err != nil {
			return fmt.Errorf("validation regex: %v", err)
		}
	}
	if (v.Min != nil || v.Max != nil || v.Monotonic != "") && p.Type != TypeNumber {
		return fmt.Errorf("validation min, max and monotonic apply only to a number parameter, not %s", p.Type)
	}
	if v.Min != nil && v.Max != nil && *v.Min > *v.Max {
		return fmt.Errorf("validation min %v is greater than max %v", *v.Min, *v.Max)
	}
	switch v.Monotonic {
	case "", Increasing, Decreasing:
	default:
		return fmt.Errorf("validation monotonic %q: want %q or %q", v.Monotonic, Increasing, Decreasing)
	}
	if v.Monotonic != "" && !p.Mutable {
		return errors.New("validation monotonic needs mutable = true (an immutable value never changes)")
	}
	return nil
}

// CheckValue checks value against p: size, type, options and validation.
// The error is a *ValueError.
func CheckValue(p Parameter, value string) error {
	bad := func(format string, args ...any) error {
		return &ValueError{Name: p.Name, Reason: fmt.Sprintf(format, args...), Err: ErrInvalid}
	}
	if len(value) > MaxValueBytes {
		return bad("value longer than %d bytes", MaxValueBytes)
	}
	if err := checkType(p.Type, value, false); err != nil {
		return bad("%v", err)
	}
	if len(p.Options) > 0 {
		if err := checkOptions(p, value); err != nil {
			return bad("%v", err)
		}
	}
	v := p.Validation
	if v == nil {
		return nil
	}
	custom := func(err error) error {
		if v.Error != "" {
			return bad("%s", v.Error)
		}
		return bad("%v", err)
	}
	if v.Regex != "" && p.Type == TypeString {
		re, err := regexp.Compile(v.Regex)
		if err != nil {
			return bad("the template's regex does not compile: %v", err)
		}
		if !re.MatchString(value) {
			return custom(fmt.Errorf("%q does not match %s", value, v.Regex))
		}
	}
	if p.Type == TypeNumber {
		n, _ := strconv.ParseFloat(value, 64)
		if v.Min != nil && n < *v.Min {
			return custom(fmt.Errorf("%s is less than the minimum %v", value, *v.Min))
		}
		if v.Max != nil && n > *v.Max {
			return custom(fmt.Errorf("%s is greater than the maximum %v", value, *v.Max))
		}
	}
	return nil
}

// checkType checks that value is a literal of type typ. optionOfList: value
// is one option of a list(string), a plain string.
func checkType(typ, value string, optionOfList bool) error {
	switch {
	case optionOfList || typ == TypeString:
		return nil
	case typ == TypeNumber:
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return fmt.Errorf("%q is not a number", value)
		}
	case typ == TypeBool:
		if value != "true" && value != "false" {
			return fmt.Errorf("%q is not a bool: want true or false", value)
		}
	case typ == TypeListString:
		if _, err := ParseList(value); err != nil {
			return err
		}
	}
	return nil
}

// ParseList parses a list(string) value: a JSON array of strings.
func ParseList(value string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(value), &l); err != nil || l == nil {
		return nil, fmt.Errorf("%q is not a list of strings: want a JSON array such as [\"a\",\"b\"]", value)
	}
	return l, nil
}

func checkOptions(p Parameter, value string) error {
	allowed := make([]string, 0, len(p.Options))
	for _, o := range p.Options {
		allowed = append(allowed, o.Value)
	}
	vals := []string{value}
	if p.Type == TypeListString {
		vals, _ = ParseList(value)
	}
	for _, v := range vals {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%q is not one of the options: %s", v, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Resolve returns the values a build runs with, one for every parameter
// in decls. given are the values the user gave; previous are the
// workspace's current values (nil when the workspace is being created).
// A parameter keeps its previous value unless given a new one, which
// only a mutable parameter accepts (and a monotonic one only in its
// direction); a parameter without one takes its default, and a required
// one without any value is an error naming it. Values for parameters the
// template no longer declares are dropped. The error is a *ValueError.
func Resolve(decls []Parameter, given, previous map[string]string) (map[string]string, error) {
	if len(given) > MaxParameters {
		return nil, &ValueError{Name: "", Reason: fmt.Sprintf("more than %d values", MaxParameters), Err: ErrInvalid}
	}
	byName := make(map[string]Parameter, len(decls))
	for _, d := range decls {
		byName[d.Name] = d
	}
	names := make([]string, 0, len(given))
	for n := range given {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, ok := byName[n]; !ok {
			return nil, &ValueError{Name: n, Reason: "the template declares no such parameter", Err: ErrUnknown}
		}
	}
	out := make(map[string]string, len(decls))
	for _, d := range decls {
		v, err := resolveOne(d, given, previous)
		if err != nil {
			return nil, err
		}
		out[d.Name] = v
	}
	return out, nil
}

func resolveOne(d Parameter, given, previous map[string]string) (string, error) {
	prev, hadPrev := previous[d.Name]
	v, isGiven := given[d.Name]
	switch {
	case isGiven:
		if err := CheckValue(d, v); err != nil {
			return "", err
		}
		if hadPrev && v != prev {
			if err := checkChange(d, prev, v); err != nil {
				return "", err
			}
		}
		return v, nil
	case hadPrev:
		if err := CheckValue(d, prev); err != nil {
			var ve *ValueError
			errors.As(err, &ve)
			return "", &ValueError{Name: d.Name, Err: ErrInvalid,
				Reason: fmt.Sprintf("the workspace's value no longer fits the template (%s): give a new value", ve.Reason)}
		}
		return prev, nil
	case d.Default != nil:
		return *d.Default, nil
	}
	msg := "required but no value given"
	if d.Description != "" {
		msg += " (" + d.Description + ")"
	}
	return "", &ValueError{Name: d.Name, Reason: msg, Err: ErrMissing}
}

// checkChange checks that d's value may change from prev to next.
func checkChange(d Parameter, prev, next string) error {
	if !d.Mutable {
		return &ValueError{Name: d.Name, Err: ErrImmutable,
			Reason: fmt.Sprintf("is immutable: it was %q when the workspace was created and cannot change (to %q); create a new workspace instead", prev, next)}
	}
	if d.Validation == nil || d.Validation.Monotonic == "" {
		return nil
	}
	p, perr := strconv.ParseFloat(prev, 64)
	n, _ := strconv.ParseFloat(next, 64)
	if perr != nil {
		return nil // the previous value was not a number: nothing to compare
	}
	if (d.Validation.Monotonic == Increasing && n < p) || (d.Validation.Monotonic == Decreasing && n > p) {
		return &ValueError{Name: d.Name, Err: ErrInvalid,
			Reason: fmt.Sprintf("is monotonic (%s): %s may not follow %s", d.Validation.Monotonic, next, prev)}
	}
	return nil
}
