package provision

import (
	"errors"
	"strings"
	"testing"
	"time"

	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// nestedFor is a value of nested for expressions: n levels over a list of
// ten make 10^n elements. Evaluated as HCL, n=6 (217 bytes) took 7 s of
// CPU; n=7 (253 bytes) 88 s.
func nestedFor(n int) string {
	s := "0"
	for i := range n {
		s = "[for x" + string(rune('a'+i)) + " in [0,0,0,0,0,0,0,0,0,0] : " + s + "]"
	}
	return s
}

// within fails the test if f does not return within d. A late f is left
// to finish on its own.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		t.Logf("%s took %v", what, time.Since(start))
	case <-time.After(d):
		t.Fatalf("%s still running after %v", what, d)
	}
}

// TestVariableValueNestedForRejectedQuickly is the regression test for
// values evaluated as HCL expressions: a short value of nested for
// expressions grew exponentially (22 s of CPU and 1 GB for 310 bytes).
func TestVariableValueNestedForRejectedQuickly(t *testing.T) {
	decls := []Variable{{Name: "sizes", Type: "list(any)"}, {Name: "n", Type: "number"}}
	for _, name := range []string{"sizes", "n"} {
		var err error
		within(t, time.Second, "CheckValues", func() {
			err = CheckValues(decls, map[string]string{name: nestedFor(6)})
		})
		var ve *VariableError
		if !errors.As(err, &ve) || ve.Name != name || !errors.Is(err, ErrVariableType) || !strings.Contains(err.Error(), "no for expressions") {
			t.Errorf("CheckValues(%s = nested for): %v, want a type error naming %q", name, err, name)
		}
		within(t, time.Second, "varFile", func() {
			_, _, err = varFile(decls, map[string]string{name: nestedFor(6)})
		})
		if err == nil || !strings.Contains(err.Error(), `variable "`+name+`"`) {
			t.Errorf("varFile(%s = nested for): %v", name, err)
		}
	}
}

func TestParseLiteral(t *testing.T) {
	accepted := []struct{ raw, json string }{
		{`1`, `1`},
		{`-2.5`, `-2.5`},
		{`1e300`, "1" + strings.Repeat("0", 300)},
		{`1e-1000000000`, `0`}, // underflows to zero
		{`true`, `true`},
		{`null`, `null`},
		{`"a b"`, `"a b"`},
		{`"a $${x} %%{y}"`, `"a $${x} %%{y}"`},       // JSON
		{`{a = "$${x} %%{y}"}`, `{"a":"${x} %{y}"}`}, // HCL
		{`["a", "b"]`, `["a","b"]`},
		{`[1, -1, [true]]`, `[1,-1,[true]]`},
		{`{a = 1, "b c" = [2]}`, `{"a":1,"b c":[2]}`},
		{`{"a": 1}`, `{"a":1}`},
		{`{true = 1, null = 2}`, `{"null":2,"true":1}`},
		{"<<EOT\nhello\nEOT\n", `"hello\n"`},
		{`["${x}"]`, `["${x}"]`}, // JSON: a string, taken literally
		{`[]`, `[]`},
		{`{}`, `{}`},
		{strings.Repeat("[", maxLiteralDepth) + strings.Repeat("]", maxLiteralDepth), strings.Repeat("[", maxLiteralDepth) + strings.Repeat("]", maxLiteralDepth)},
		{`"` + strings.Repeat("x", MaxVariableValueBytes-2) + `"`, `"` + strings.Repeat("x", MaxVariableValueBytes-2) + `"`},
	}
	for _, tt := range accepted {
		val, err := parseLiteral(tt.raw)
		if err != nil {
			t.Errorf("parseLiteral(%.40q): %v", tt.raw, err)
			continue
		}
		got, err := ctyjson.SimpleJSONValue{Value: val}.MarshalJSON()
		if err != nil || string(got) != tt.json {
			t.Errorf("parseLiteral(%.40q) = %.60s (%v), want %.60s", tt.raw, got, err, tt.json)
		}
	}
	rejected := []struct{ raw, want string }{
		{nestedFor(1), "no for expressions"},
		{`{for k in ["a"] : k => 1}`, "no for expressions"},
		{`[for x in [1] : x]`, "no for expressions"},
		{`upper("a")`, "no function calls"},
		{`[length([1])]`, "no function calls"},
		{`var.x`, "no references"},
		{`[local.x]`, "no references"},
		{`x`, "no references"},
		{`{a = "a${1}"}`, "no ${...}"},
		{`{a = "${x}"}`, "no ${...}"},
		{`{a = "%{if true}a%{endif}"}`, "no ${...}"},
		{`{"${x}" = 1}`, "no ${...}"},
		{`{"a${x}" = 1}`, "no ${...}"},
		{`{(k) = 1}`, "object keys"},
		{`{a.b = 1}`, "object keys"},
		{`1 + 1`, "only literal values"},
		{`-(1)`, "only literal values"},
		{`!true`, "only literal values"},
		{`true ? 1 : 2`, "only literal values"},
		{`(1)`, "only literal values"},
		{`[1][0]`, "only literal values"},
		{`1e1000000000`, "out of range"},
		{`[1e400]`, "out of range"},
		{`{a = -1e-400}`, "out of range"},
		{strings.Repeat("[", maxLiteralDepth+1) + strings.Repeat("]", maxLiteralDepth+1), "nest more than"},
		{strings.Repeat("[", maxLiteralDepth+1) + "1," + strings.Repeat("]", maxLiteralDepth+1), "nest more than"},
		{`"` + strings.Repeat("x", MaxVariableValueBytes-1) + `"`, "at most"},
		{`[1,`, "Missing"},
		{``, "Missing expression"},
	}
	for _, tt := range rejected {
		if _, err := parseLiteral(tt.raw); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseLiteral(%.40q): %v, want an error with %q", tt.raw, err, tt.want)
		}
	}
}

func TestCheckValuesBounds(t *testing.T) {
	decls := []Variable{{Name: "s", Type: "string", literal: true}}
	long := strings.Repeat("x", MaxVariableValueBytes+1)
	err := CheckValues(decls, map[string]string{"s": long})
	var ve *VariableError
	if !errors.As(err, &ve) || ve.Name != "s" || !errors.Is(err, ErrVariableSize) {
		t.Errorf("string value over the limit: %v", err)
	}
	if err := CheckValues(decls, map[string]string{"s": long[1:]}); err != nil {
		t.Errorf("string value at the limit: %v", err)
	}
	many := map[string]string{}
	for i := range MaxVariableValues + 1 {
		many[strings.Repeat("v", i+1)] = "x"
	}
	if err := CheckValues(decls, many); !errors.Is(err, ErrTooManyValues) {
		t.Errorf("%d values: %v", len(many), err)
	}
}

// FuzzParseLiteral checks that parseLiteral never panics, is quick, and
// that what it accepts can be written to a var file.
func FuzzParseLiteral(f *testing.F) {
	for _, s := range []string{`1`, `-1`, `"a"`, `[1, "b", true, null]`, `{a = 1, "b" = [2]}`, `{"a": {"b": [1e3]}}`,
		"<<EOT\nx\nEOT\n", `"a${b}"`, nestedFor(2), `upper("x")`, `[[[[[[1]]]]]]`, `1e999`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		start := time.Now()
		val, err := parseLiteral(raw)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("parseLiteral(%q) took %v", raw, d)
		}
		if err != nil {
			return
		}
		if _, err := marshalValue(val); err != nil {
			t.Fatalf("parseLiteral(%q) accepted a value it cannot write: %v", raw, err)
		}
	})
}
