package builds

import (
	"encoding/json"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
	"github.com/devmesh/devmesh/provision"
)

// applyResult sets what a successful build changes about its workspace:
// a start registers the agents in the new state (with their token hashes)
// and its metadata; a stop removes every agent, so their tokens stop
// working, and keeps the metadata of what survives the stop; a delete
// removes the agents (the workspace itself goes after the build is
// recorded).
func (q *Queue) applyResult(o *store.BuildOutcome, b store.Build, res provision.BuildResult, logs *buildLog) {
	o.SetAgents, o.Agents = true, []store.Agent{}
	switch provision.Transition(b.Transition) {
	case provision.TransitionStart:
		for _, a := range res.Agents {
			if a.Token == "" || a.ID == "" {
				logs.printf(stageFinish, provision.LevelWarn, "devmesh: agent %s has no id or token in the state; not registered", a.Address)
				continue
			}
			o.Agents = append(o.Agents, storeAgent(a, b.WorkspaceID))
		}
		if len(o.Agents) == 0 {
			logs.printf(stageFinish, provision.LevelWarn, "devmesh: the template declares no devmesh_agent: nothing will connect to this workspace")
		}
		fallthrough
	case provision.TransitionStop:
		o.SetMetadata, o.Metadata = true, storeMetadata(res)
	}
}

func storeAgent(a provision.Agent, workspaceID int64) store.Agent {
	env := "{}"
	if len(a.Env) > 0 {
		b, _ := json.Marshal(a.Env) // a map of strings always marshals
		env = string(b)
	}
	return store.Agent{
		UUID:          a.ID,
		WorkspaceID:   workspaceID,
		Name:          a.Name,
		TokenHash:     secret.Hash(a.Token),
		OS:            a.OS,
		Arch:          a.Arch,
		Dir:           a.Dir,
		Env:           env,
		StartupScript: a.StartupScript,
	}
}

// storeMetadata flattens the build's metadata, naming each item's
// resource by its terraform address when the state has it.
func storeMetadata(res provision.BuildResult) []store.MetadataItem {
	addr := map[string]string{}
	for _, r := range res.Resources {
		if r.ID != "" {
			addr[r.ID] = r.Address
		}
	}
	for _, a := range res.Agents {
		addr[a.ID] = a.Address
	}
	out := []store.MetadataItem{}
	for _, m := range res.Metadata {
		resource := m.ResourceID
		if a, ok := addr[m.ResourceID]; ok {
			resource = a
		}
		for _, it := range m.Items {
			out = append(out, store.MetadataItem{Resource: resource, Key: it.Key, Value: it.Value, Sensitive: it.Sensitive})
		}
	}
	return out
}
