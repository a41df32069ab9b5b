package tfprovider_test

import (
	"context"
	"strings"
	"testing"
)

const parameterConfig = `
data "devmesh_parameter" "region" {
  name        = "region"
  description = "Where the workspace runs."
  default     = "eu"
  option {
    name  = "Europe"
    value = "eu"
  }
  option {
    name  = "United States"
    value = "us"
  }
}

data "devmesh_parameter" "cpus" {
  name    = "cpus"
  type    = "number"
  mutable = true
  validation {
    min       = 1
    max       = 8
    monotonic = "increasing"
  }
}

output "region" { value = data.devmesh_parameter.region.value }
output "cpus" { value = tonumber(data.devmesh_parameter.cpus.value) }
`

// TestParameterDataSource: the value comes from DEVMESH_PARAMETERS (set by
// the provisioner), else the default; a required parameter without a value
// and a value the declaration refuses fail the apply.
func TestParameterDataSource(t *testing.T) {
	t.Parallel()
	t.Run("values from the environment", func(t *testing.T) {
		t.Parallel()
		tf := newTerraform(t, parameterConfig, map[string]string{"DEVMESH_PARAMETERS": `{"region":"us","cpus":"4"}`})
		out := applyOutputs(t, tf)
		if out["region"] != "us" || out["cpus"] != 4.0 {
			t.Fatalf("outputs = %v, want region us, cpus 4", out)
		}
	})
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		tf := newTerraform(t, parameterConfig, map[string]string{"DEVMESH_PARAMETERS": `{"cpus":"2"}`})
		if out := applyOutputs(t, tf); out["region"] != "eu" {
			t.Fatalf("region = %v, want the default eu", out["region"])
		}
	})
	for _, tt := range []struct{ name, env, want string }{
		{"required missing", `{"region":"us"}`, `parameter "cpus" is required and has no value`},
		{"not an option", `{"region":"mars","cpus":"2"}`, `is not one of the options`},
		{"above max", `{"cpus":"9"}`, `greater than the maximum`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tf := newTerraform(t, parameterConfig, map[string]string{"DEVMESH_PARAMETERS": tt.env})
			err := tf.Apply(context.Background())
			if err == nil || !strings.Contains(strings.Join(strings.Fields(err.Error()), " "), tt.want) {
				t.Fatalf("apply: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
