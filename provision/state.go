package provision

import (
	"errors"
	"fmt"
	"slices"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/devmesh/devmesh/provision/tfprovider"
)

// ErrDuplicateAgent is returned by a build whose state has two agents of
// the same name.
var ErrDuplicateAgent = errors.New("two devmesh agents have the same name")

// Agent is a devmesh_agent as a build left it.
type Agent struct {
	Address       string // terraform address, e.g. devmesh_agent.main
	ID            string
	Name          string
	Token         string // secret: store hashed, never log
	OS            string
	Arch          string
	Dir           string
	StartupScript string
	Env           map[string]string
}

// Metadata is a devmesh_metadata: items shown beside another resource.
type Metadata struct {
	Address    string
	ID         string
	ResourceID string // id of the resource described
	Items      []MetadataItem
}

// MetadataItem is one key/value item of a Metadata.
type MetadataItem struct {
	Key       string
	Value     string
	Sensitive bool // hide the value from non-admins
}

// Resource is a managed resource in the state, other than devmesh's own.
type Resource struct {
	Address string
	Type    string
	Name    string
	ID      string // its "id" attribute, "" if none
}

// readState extracts agents, metadata and other resources from a state,
// root module first, then child modules. It is pure.
func readState(st *tfjson.State) ([]Agent, []Metadata, []Resource, error) {
	var agents []Agent
	var meta []Metadata
	var res []Resource
	if st == nil || st.Values == nil {
		return nil, nil, nil, nil
	}
	var walk func(m *tfjson.StateModule)
	walk = func(m *tfjson.StateModule) {
		if m == nil {
			return
		}
		for _, r := range m.Resources {
			if r.Mode != tfjson.ManagedResourceMode {
				continue
			}
			v := attrs(r.AttributeValues)
			switch {
			case ours(r) && r.Type == "devmesh_agent":
				agents = append(agents, Agent{
					Address: r.Address, ID: v.str("id"), Name: v.str("name"), Token: v.str("token"),
					OS: v.str("os"), Arch: v.str("arch"), Dir: v.str("dir"),
					StartupScript: v.str("startup_script"), Env: v.strMap("env"),
				})
			case ours(r) && r.Type == "devmesh_metadata":
				meta = append(meta, Metadata{Address: r.Address, ID: v.str("id"),
					ResourceID: v.str("resource_id"), Items: v.items("item")})
			default:
				res = append(res, Resource{Address: r.Address, Type: r.Type, Name: r.Name, ID: v.str("id")})
			}
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(st.Values.RootModule)
	names := map[string]string{}
	for _, a := range agents {
		if prev, ok := names[a.Name]; ok {
			return agents, meta, res, fmt.Errorf("%w: %s and %s are both %q", ErrDuplicateAgent, prev, a.Address, a.Name)
		}
		names[a.Name] = a.Address
	}
	return agents, meta, res, nil
}

// ours reports whether r belongs to the devmesh provider.
func ours(r *tfjson.StateResource) bool {
	return r.ProviderName == tfprovider.Address
}

// attrs reads attribute values decoded from JSON; missing or mistyped
// values read as zero values.
type attrs map[string]any

func (a attrs) str(k string) string {
	s, _ := a[k].(string)
	return s
}

func (a attrs) strMap(k string) map[string]string {
	m, _ := a[k].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for key, v := range m {
		out[key], _ = v.(string)
	}
	return out
}

func (a attrs) items(k string) []MetadataItem {
	list, _ := a[k].([]any)
	var out []MetadataItem
	for _, it := range list {
		m, _ := it.(map[string]any)
		sens, _ := m["sensitive"].(bool)
		out = append(out, MetadataItem{Key: attrs(m).str("key"), Value: attrs(m).str("value"), Sensitive: sens})
	}
	return slices.Clip(out)
}
