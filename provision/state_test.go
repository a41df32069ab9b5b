package provision

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/devmesh/devmesh/provision/tfprovider"
)

func agentRes(addr, name, token string) *tfjson.StateResource {
	return &tfjson.StateResource{Address: addr, Mode: tfjson.ManagedResourceMode, Type: "devmesh_agent", Name: name,
		ProviderName: tfprovider.Address, AttributeValues: map[string]any{"id": "id-" + name, "name": name, "token": token,
			"os": "linux", "arch": "amd64", "env": map[string]any{"A": "b"}, "dir": nil, "startup_script": nil}}
}

func TestReadState(t *testing.T) {
	st := &tfjson.State{Values: &tfjson.StateValues{RootModule: &tfjson.StateModule{
		Resources: []*tfjson.StateResource{
			agentRes("devmesh_agent.main", "main", "t1"),
			{Address: "data.devmesh_workspace.me", Mode: tfjson.DataResourceMode, Type: "devmesh_workspace", ProviderName: tfprovider.Address},
			{Address: "terraform_data.vm", Mode: tfjson.ManagedResourceMode, Type: "terraform_data", Name: "vm",
				ProviderName: "terraform.io/builtin/terraform", AttributeValues: map[string]any{"id": "vm-1"}},
			// Same type name from another provider is not ours.
			{Address: "devmesh_agent.fake", Mode: tfjson.ManagedResourceMode, Type: "devmesh_agent", Name: "fake",
				ProviderName: "registry.terraform.io/someone/devmesh", AttributeValues: map[string]any{"id": "x"}},
		},
		ChildModules: []*tfjson.StateModule{{Address: "module.m", Resources: []*tfjson.StateResource{
			agentRes("module.m.devmesh_agent.b", "second", "t2"),
			{Address: "module.m.devmesh_metadata.x", Mode: tfjson.ManagedResourceMode, Type: "devmesh_metadata",
				ProviderName: tfprovider.Address, AttributeValues: map[string]any{"id": "m1", "resource_id": "vm-1",
					"item": []any{map[string]any{"key": "k", "value": nil, "sensitive": nil}}}},
		}}},
	}}}
	agents, meta, res, err := readState(st)
	if err != nil {
		t.Fatal(err)
	}
	wantAgents := []Agent{
		{Address: "devmesh_agent.main", ID: "id-main", Name: "main", Token: "t1", OS: "linux", Arch: "amd64", Env: map[string]string{"A": "b"}},
		{Address: "module.m.devmesh_agent.b", ID: "id-second", Name: "second", Token: "t2", OS: "linux", Arch: "amd64", Env: map[string]string{"A": "b"}},
	}
	if diff := cmp.Diff(wantAgents, agents); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	wantMeta := []Metadata{{Address: "module.m.devmesh_metadata.x", ID: "m1", ResourceID: "vm-1", Items: []MetadataItem{{Key: "k"}}}}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	wantRes := []Resource{{Address: "terraform_data.vm", Type: "terraform_data", Name: "vm", ID: "vm-1"},
		{Address: "devmesh_agent.fake", Type: "devmesh_agent", Name: "fake", ID: "x"}}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}

	st.Values.RootModule.Resources = append(st.Values.RootModule.Resources, agentRes("devmesh_agent.again", "main", "t3"))
	if _, _, _, err := readState(st); !errors.Is(err, ErrDuplicateAgent) {
		t.Errorf("duplicate names: %v", err)
	}
	if a, m, r, err := readState(&tfjson.State{}); a != nil || m != nil || r != nil || err != nil {
		t.Errorf("empty state: %v %v %v %v", a, m, r, err)
	}
}
