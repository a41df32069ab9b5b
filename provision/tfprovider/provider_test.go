package tfprovider_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/devmesh/devmesh/provision/tfprovider"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// The test binary serves the provider when terraform starts it through the
// mirror, as the devmesh binary does.
func TestMain(m *testing.M) {
	tfprovidertest.ServeIfPlugin()
	os.Exit(m.Run())
}

const header = `
terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}
`

// newTerraform writes config into a fresh module directory, installs the
// mirror, and returns terraform initialized there with env (plus PATH,
// HOME and the CLI configuration) as its whole environment.
func newTerraform(t *testing.T, config string, env map[string]string) *tfexec.Terraform {
	t.Helper()
	tfPath, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH; these tests run real terraform")
	}
	mirror := t.TempDir()
	if err := tfprovider.InstallMirror(mirror, tfprovidertest.Binary(t), tfprovider.Version); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(header+config), 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := tfexec.NewTerraform(dir, tfPath)
	if err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		"PATH":               os.Getenv("PATH"),
		"HOME":               t.TempDir(),
		"TF_CLI_CONFIG_FILE": tfprovider.CLIConfigFile(mirror),
		"CHECKPOINT_DISABLE": "1",
	}
	for k, v := range env {
		full[k] = v
	}
	if err := tf.SetEnv(full); err != nil {
		t.Fatal(err)
	}
	if err := tf.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tf
}

// applyOutputs applies and returns the outputs, JSON-decoded.
func applyOutputs(t *testing.T, tf *tfexec.Terraform, opts ...tfexec.ApplyOption) map[string]any {
	t.Helper()
	ctx := context.Background()
	if err := tf.Apply(ctx, opts...); err != nil {
		t.Fatal(err)
	}
	outs, err := tf.Output(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	for k, o := range outs {
		var v any
		if err := json.Unmarshal(o.Value, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	return m
}

const agentConfig = `
variable "foo" {
  default = "bar"
}

resource "devmesh_agent" "main" {
  env = { FOO = var.foo }
}

output "agent" {
  value     = devmesh_agent.main
  sensitive = true
}
`

func TestAgentResource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tf := newTerraform(t, agentConfig, map[string]string{"DEVMESH_URL": "https://devmesh.example.com/"})
	agent := applyOutputs(t, tf)["agent"].(map[string]any)

	token, _ := agent["token"].(string)
	if b, err := hex.DecodeString(token); err != nil || len(b) != 32 {
		t.Errorf("token %q is not 32 random bytes in hex", token)
	}
	if ok, _ := regexp.MatchString(`^[0-9a-f-]{36}$`, agent["id"].(string)); !ok {
		t.Errorf("id %q is not a UUID", agent["id"])
	}
	want := map[string]any{"name": "main", "os": runtime.GOOS, "arch": runtime.GOARCH}
	for k, v := range want {
		if agent[k] != v {
			t.Errorf("%s = %v, want %v", k, agent[k], v)
		}
	}
	script, _ := agent["init_script"].(string)
	if script != tfprovider.InitScript("https://devmesh.example.com", runtime.GOOS, runtime.GOARCH) {
		t.Errorf("init_script:\n%s", script)
	}
	if strings.Contains(script, token) {
		t.Error("init_script holds the token")
	}

	// The token is sensitive in terraform's eyes.
	st, err := tf.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sens map[string]any
	json.Unmarshal(st.Values.RootModule.Resources[0].SensitiveValues, &sens)
	if sens["token"] != true || sens["init_script"] == true {
		t.Errorf("sensitive values: %v", sens)
	}

	// Nothing changes on a second plan: init_script is computed at plan
	// time and id and token are kept.
	if changes, err := tf.Plan(ctx); err != nil || changes {
		t.Errorf("second plan: changes %v, err %v", changes, err)
	}

	// An update in place keeps id and token.
	agent2 := applyOutputs(t, tf, tfexec.Var("foo=baz"))["agent"].(map[string]any)
	if agent2["token"] != token || agent2["id"] != agent["id"] {
		t.Error("update rotated id or token")
	}
	if env := agent2["env"].(map[string]any); env["FOO"] != "baz" {
		t.Errorf("env after update: %v", env)
	}
}

func TestProviderURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  string
		env     map[string]string
		wantErr string // substring of the apply error; "" for success
		wantURL string
	}{
		{name: "from env", env: map[string]string{"DEVMESH_URL": "http://10.0.0.1:8080"}, wantURL: "http://10.0.0.1:8080"},
		{name: "provider block wins", config: `provider "devmesh" {
  url = "https://coord.example.com"
}`, env: map[string]string{"DEVMESH_URL": "http://10.0.0.1:8080"}, wantURL: "https://coord.example.com"},
		{name: "missing", wantErr: "No devmesh coordinator URL"},
		{name: "not http", config: `provider "devmesh" {
  url = "ftp://coord.example.com"
}`, wantErr: "is not an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tf := newTerraform(t, tt.config+`
resource "devmesh_agent" "main" {}
data "devmesh_workspace" "me" {}
output "script" {
  value = devmesh_agent.main.init_script
}
output "url" {
  value = data.devmesh_workspace.me.access_url
}
`, tt.env)
			err := tf.Apply(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("apply: %v, want %q", err, tt.wantErr)
				}
				return
			}
			outs := applyOutputs(t, tf)
			if outs["url"] != tt.wantURL || !strings.Contains(outs["script"].(string), "DEVMESH_URL='"+tt.wantURL+"'") {
				t.Errorf("url %v, script:\n%v", outs["url"], outs["script"])
			}
		})
	}
}

const workspaceConfig = `
data "devmesh_workspace" "me" {}
output "ws" {
  value = data.devmesh_workspace.me
}
`

func TestWorkspaceDataSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want map[string]any
	}{
		{name: "start", env: map[string]string{
			"DEVMESH_URL": "http://127.0.0.1:3000", "DEVMESH_WORKSPACE_ID": "id-1", "DEVMESH_WORKSPACE_NAME": "dev",
			"DEVMESH_WORKSPACE_OWNER": "alice", "DEVMESH_WORKSPACE_TRANSITION": "start",
		}, want: map[string]any{"id": "id-1", "name": "dev", "owner": "alice", "transition": "start", "start_count": 1.0, "access_url": "http://127.0.0.1:3000"}},
		{name: "stop", env: map[string]string{"DEVMESH_WORKSPACE_TRANSITION": "stop"},
			want: map[string]any{"transition": "stop", "start_count": 0.0}},
		{name: "delete", env: map[string]string{"DEVMESH_WORKSPACE_TRANSITION": "delete"},
			want: map[string]any{"transition": "delete", "start_count": 0.0}},
		{name: "by hand", env: nil, want: map[string]any{
			"id": "00000000-0000-0000-0000-000000000000", "name": "default", "owner": "default",
			"transition": "start", "start_count": 1.0, "access_url": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws := applyOutputs(t, newTerraform(t, workspaceConfig, tt.env))["ws"].(map[string]any)
			for k, v := range tt.want {
				if ws[k] != v {
					t.Errorf("%s = %#v, want %#v", k, ws[k], v)
				}
			}
		})
	}
	t.Run("bad transition", func(t *testing.T) {
		t.Parallel()
		tf := newTerraform(t, workspaceConfig, map[string]string{"DEVMESH_WORKSPACE_TRANSITION": "restart"})
		if err := tf.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "Invalid workspace transition") {
			t.Fatalf("apply: %v", err)
		}
	})
}

func TestMetadataResource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	config := `
variable "v" {
  default = "1"
}
resource "terraform_data" "vm" {}
resource "devmesh_metadata" "vm" {
  resource_id = terraform_data.vm.id
  item {
    key   = "cpus"
    value = var.v
  }
  item {
    key       = "password"
    value     = "hunter2"
    sensitive = true
  }
  item {
    key = "empty"
  }
}
output "meta" {
  value = devmesh_metadata.vm
}
output "vm" {
  value = terraform_data.vm.id
}
`
	tf := newTerraform(t, config, nil)
	outs := applyOutputs(t, tf)
	meta := outs["meta"].(map[string]any)
	if meta["resource_id"] != outs["vm"] || meta["id"] == "" {
		t.Errorf("metadata: %v", meta)
	}
	b, _ := json.Marshal(meta["item"])
	want := `[{"key":"cpus","sensitive":null,"value":"1"},{"key":"password","sensitive":true,"value":"hunter2"},{"key":"empty","sensitive":null,"value":null}]`
	if string(b) != want {
		t.Errorf("items:\n%s\nwant\n%s", b, want)
	}
	if changes, err := tf.Plan(ctx); err != nil || changes {
		t.Errorf("second plan: changes %v, err %v", changes, err)
	}
	meta2 := applyOutputs(t, tf, tfexec.Var("v=2"))["meta"].(map[string]any)
	if meta2["id"] != meta["id"] {
		t.Error("updating an item replaced the metadata")
	}
}

// TestAgentTokenRotation: with DEVMESH_ROTATE_AGENT_TOKENS=1 an existing
// agent gets a new token and keeps its id; without it nothing changes.
func TestAgentTokenRotation(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DEVMESH_URL": "http://127.0.0.1:1"}
	tf := newTerraform(t, agentConfig, env)
	first := applyOutputs(t, tf)["agent"].(map[string]any)

	mirror := t.TempDir() // the same provider, as newTerraform installed it
	if err := tfprovider.InstallMirror(mirror, tfprovidertest.Binary(t), tfprovider.Version); err != nil {
		t.Fatal(err)
	}
	rotate := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": t.TempDir(), "CHECKPOINT_DISABLE": "1",
		"TF_CLI_CONFIG_FILE": tfprovider.CLIConfigFile(mirror), "DEVMESH_URL": "http://127.0.0.1:1",
		tfprovider.EnvRotateAgentTokens: "1",
	}
	if err := tf.SetEnv(rotate); err != nil {
		t.Fatal(err)
	}
	second := applyOutputs(t, tf)["agent"].(map[string]any)
	if second["token"] == first["token"] || second["id"] != first["id"] {
		t.Errorf("rotation: token changed %v, id kept %v", second["token"] != first["token"], second["id"] == first["id"])
	}
	delete(rotate, tfprovider.EnvRotateAgentTokens)
	if err := tf.SetEnv(rotate); err != nil {
		t.Fatal(err)
	}
	if changes, err := tf.Plan(context.Background()); err != nil || changes {
		t.Errorf("plan without rotation: changes %v, err %v", changes, err)
	}
}
