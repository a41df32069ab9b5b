package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/devmesh/devmesh/provision/param"
)

// paramFlags are --param K=V (repeatable) and --param-file F.
type paramFlags struct {
	values []string
	file   string
}

func (p *paramFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&p.values, "param", nil, "a template parameter, K=V (repeatable); a list(string) value is a JSON array")
	f.StringVar(&p.file, "param-file", "", "a YAML or JSON file of template parameters (name: value)")
}

func (p *paramFlags) given() bool { return len(p.values) > 0 || p.file != "" }

// parse returns the values of the flags; --param wins over the file.
func (p *paramFlags) parse() (map[string]string, error) {
	out := map[string]string{}
	if p.file != "" {
		data, err := os.ReadFile(p.file)
		if err != nil {
			return nil, fmt.Errorf("--param-file: %w", err)
		}
		if out, err = parseParamFile(data); err != nil {
			return nil, fmt.Errorf("--param-file %s: %w", p.file, err)
		}
	}
	seen := map[string]bool{}
	for _, kv := range p.values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid --param %q: want NAME=VALUE", kv)
		}
		if seen[k] {
			return nil, fmt.Errorf("--param %s given twice", k)
		}
		seen[k] = true
		out[k] = v
	}
	return out, nil
}

// parseParamFile reads a YAML (or JSON, which is YAML) mapping of
// parameter names to values: strings, numbers, bools, or lists of strings
// (sent as a JSON array).
func parseParamFile(data []byte) (map[string]string, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, err := paramString(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

func paramString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		l := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("a list value holds only strings, not %v", e)
			}
			l = append(l, s)
		}
		b, err := json.Marshal(l)
		return string(b), err
	}
	return "", fmt.Errorf("want a string, number, bool or list of strings, not %T", v)
}

// errNoTerminal: a required parameter has no value and there is no
// terminal to ask on.
var errNoTerminal = errors.New("no terminal to ask on")

// stdinIsTerminal reports whether devmesh may prompt on cmd's stdin.
func stdinIsTerminal(cmd *cobra.Command) bool {
	in, ok := stdinFile(cmd)
	return ok && term.IsTerminal(int(in.Fd()))
}

// askParams asks, on out, for each required parameter in decls that has
// no value in values, reading answers from in, and adds them to values.
// Without a terminal (ask false) the first such parameter is an error
// that names it.
func askParams(in io.Reader, out io.Writer, ask bool, decls []param.Parameter, values map[string]string) error {
	r := bufio.NewReader(in)
	for _, p := range decls {
		if _, ok := values[p.Name]; ok || !p.Required() {
			continue
		}
		if !ask {
			return fmt.Errorf("parameter %q (%s) is required: give it with --param %s=VALUE or --param-file (%w)", p.Name, describeParam(p), p.Name, errNoTerminal)
		}
		v, err := askParam(r, out, p)
		if err != nil {
			return err
		}
		values[p.Name] = v
	}
	return nil
}

// describeParam is the type and the description of p.
func describeParam(p param.Parameter) string {
	s := p.Type
	if p.Description != "" {
		s += ": " + p.Description
	}
	return s
}

// askParam asks for p until the answer passes its checks.
func askParam(r *bufio.Reader, out io.Writer, p param.Parameter) (string, error) {
	fmt.Fprintf(out, "\n%s (%s)\n", p.Label(), describeParam(p))
	for i, o := range p.Options {
		line := fmt.Sprintf("  %d) %s = %s", i+1, o.Name, o.Value)
		if o.Description != "" {
			line += " - " + o.Description
		}
		fmt.Fprintln(out, line)
	}
	for {
		fmt.Fprintf(out, "%s: ", p.Name)
		line, rerr := r.ReadString('\n')
		if rerr != nil && line == "" {
			return "", fmt.Errorf("reading parameter %q: %w", p.Name, rerr)
		}
		v := strings.TrimSpace(line)
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= len(p.Options) && !slices.ContainsFunc(p.Options, func(o param.Option) bool { return o.Value == v }) {
			v = p.Options[n-1].Value // chosen by number
		}
		if err := param.CheckValue(p, v); err != nil {
			fmt.Fprintf(out, "  %v\n", err)
			if rerr != nil {
				return "", err
			}
			continue
		}
		return v, nil
	}
}
