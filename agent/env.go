package agent

import (
	"slices"
	"strings"

	"github.com/devmesh/devmesh/coordinator/client"
)

// envToken is the variable `devmesh agent` reads the token from.
const envToken = "DEVMESH_AGENT_TOKEN"

// sessionEnv is what the agent adds to the environment of SSH sessions
// and the startup script: the manifest's variables, then DEVMESH_*
// describing the workspace. It never holds the agent token.
func sessionEnv(m client.AgentManifest) []string {
	names := make([]string, 0, len(m.Env))
	for k := range m.Env {
		if validEnvName(k) && k != envToken {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	out := make([]string, 0, len(names)+3)
	for _, k := range names {
		out = append(out, k+"="+m.Env[k])
	}
	return append(out,
		"DEVMESH_WORKSPACE="+m.WorkspaceName,
		"DEVMESH_WORKSPACE_OWNER="+m.Owner,
		"DEVMESH_AGENT="+m.AgentName,
	)
}

// scriptEnv is the startup script's environment: the agent's own (base),
// without the agent token, then sessionEnv (later entries win).
func scriptEnv(base []string, m client.AgentManifest, token string) []string {
	out := make([]string, 0, len(base)+len(m.Env)+3)
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		if k == envToken || (token != "" && strings.Contains(v, token)) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, sessionEnv(m)...)
}

func validEnvName(k string) bool {
	return k != "" && !strings.ContainsAny(k, "=\x00")
}
