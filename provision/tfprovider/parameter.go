package tfprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/devmesh/devmesh/provision/param"
)

// parameterDataSource is devmesh_parameter: a value the workspace's owner
// chooses (at create, or at an update if it is mutable). devmesh reads the
// declaration out of the template when it is pushed; at build time the
// value comes from the provisioner (param.EnvValues).
type parameterDataSource struct{}

func newParameterDataSource() datasource.DataSource { return parameterDataSource{} }

type parameterModel struct {
	Name        types.String      `tfsdk:"name"`
	DisplayName types.String      `tfsdk:"display_name"`
	Description types.String      `tfsdk:"description"`
	Type        types.String      `tfsdk:"type"`
	Default     types.String      `tfsdk:"default"`
	Mutable     types.Bool        `tfsdk:"mutable"`
	Value       types.String      `tfsdk:"value"`
	Options     []optionModel     `tfsdk:"option"`
	Validation  []validationModel `tfsdk:"validation"`
}

type optionModel struct {
	Name        types.String `tfsdk:"name"`
	Value       types.String `tfsdk:"value"`
	Description types.String `tfsdk:"description"`
}

type validationModel struct {
	Regex     types.String  `tfsdk:"regex"`
	Min       types.Float64 `tfsdk:"min"`
	Max       types.Float64 `tfsdk:"max"`
	Monotonic types.String  `tfsdk:"monotonic"`
	Error     types.String  `tfsdk:"error"`
}

func (parameterDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_parameter"
}

func (parameterDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	opt := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Description: desc}
	}
	resp.Schema = schema.Schema{
		Description: "A template parameter: a value the workspace's owner chooses at create (and at `devmesh update`, if mutable). Its attributes must be constants: devmesh reads them when the template is pushed.",
		Attributes: map[string]schema.Attribute{
			"name":         schema.StringAttribute{Required: true, Description: "Parameter name: lowercase letters, digits and '_'. Users set it with --param NAME=VALUE."},
			"display_name": opt("Name shown to users. Default: name."),
			"description":  opt("What the value is for, shown when devmesh asks for it."),
			"type": schema.StringAttribute{Optional: true, Validators: []validator.String{oneOf(param.Types)},
				Description: "string (default), number, bool or list(string). value is always a string: use tonumber, tobool or jsondecode."},
			"default": opt("Value when none is given; without it the parameter is required. A list(string) default is a JSON array: jsonencode([\"a\"])."),
			"mutable": schema.BoolAttribute{Optional: true, Description: "Whether `devmesh update` may change the value. Default false."},
			"value":   schema.StringAttribute{Computed: true, Description: "The workspace's value (the default when devmesh gave none)."},
		},
		Blocks: map[string]schema.Block{
			"option": schema.ListNestedBlock{
				Description: "An allowed value; with options, only these are accepted.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"name":        schema.StringAttribute{Required: true, Description: "Label shown to users."},
					"value":       schema.StringAttribute{Required: true, Description: "The value."},
					"description": opt("What choosing it means."),
				}},
			},
			"validation": schema.ListNestedBlock{
				Description: "Constraints on the value (at most one block).",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"regex":     opt("A string value must match this (Go RE2 syntax)."),
					"min":       schema.Float64Attribute{Optional: true, Description: "Smallest number allowed."},
					"max":       schema.Float64Attribute{Optional: true, Description: "Largest number allowed."},
					"monotonic": opt("increasing or decreasing: how a mutable number may change at updates."),
					"error":     opt("Message shown when a value fails these checks."),
				}},
			},
		},
	}
}

func (parameterDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m parameterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p := m.declaration()
	if err := param.CheckDeclaration(p); err != nil {
		resp.Diagnostics.AddError("Invalid devmesh_parameter", fmt.Sprintf("parameter %q: %v", p.Name, err))
		return
	}
	value, err := parameterValue(p)
	if err != nil {
		resp.Diagnostics.AddError("No valid value for devmesh_parameter", err.Error())
		return
	}
	m.Value = types.StringValue(value)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// declaration converts the configuration into a param.Parameter.
func (m parameterModel) declaration() param.Parameter {
	p := param.Parameter{Name: m.Name.ValueString(), DisplayName: m.DisplayName.ValueString(),
		Description: m.Description.ValueString(), Type: param.TypeString, Mutable: m.Mutable.ValueBool()}
	if !m.Type.IsNull() {
		p.Type = m.Type.ValueString()
	}
	if !m.Default.IsNull() {
		d := m.Default.ValueString()
		p.Default = &d
	}
	for _, o := range m.Options {
		p.Options = append(p.Options, param.Option{Name: o.Name.ValueString(), Value: o.Value.ValueString(), Description: o.Description.ValueString()})
	}
	if len(m.Validation) > 0 {
		v := m.Validation[0]
		p.Validation = &param.Validation{Regex: v.Regex.ValueString(), Monotonic: v.Monotonic.ValueString(), Error: v.Error.ValueString()}
		if !v.Min.IsNull() {
			f := v.Min.ValueFloat64()
			p.Validation.Min = &f
		}
		if !v.Max.IsNull() {
			f := v.Max.ValueFloat64()
			p.Validation.Max = &f
		}
	}
	return p
}

// parameterValue returns p's value from the provisioner's
// param.EnvValues, else p's default, checked against p.
func parameterValue(p param.Parameter) (string, error) {
	values := map[string]string{}
	if raw := os.Getenv(param.EnvValues); raw != "" {
		if err := json.Unmarshal([]byte(raw), &values); err != nil {
			return "", fmt.Errorf("%s is not a JSON object of strings: %v", param.EnvValues, err)
		}
	}
	v, ok := values[p.Name]
	if !ok {
		if p.Default == nil {
			return "", fmt.Errorf("parameter %q is required and has no value: devmesh passes values in %s (set it when running terraform by hand)", p.Name, param.EnvValues)
		}
		v = *p.Default
	}
	if err := param.CheckValue(p, v); err != nil {
		return "", err
	}
	return v, nil
}
