package tfprovider

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Transitions a build can make; DEVMESH_WORKSPACE_TRANSITION holds one.
const (
	TransitionStart  = "start"
	TransitionStop   = "stop"
	TransitionDelete = "delete"
)

// Defaults when the provisioner has not set the variables, e.g. when an
// author runs `terraform plan` on a template by hand.
const (
	defaultWorkspaceID    = "00000000-0000-0000-0000-000000000000"
	defaultWorkspaceName  = "default"
	defaultWorkspaceOwner = "default"
)

type workspaceDataSource struct {
	cfg *config
}

func newWorkspaceDataSource() datasource.DataSource { return &workspaceDataSource{} }

type workspaceModel struct {
	ID         types.String `tfsdk:"id"`
	Name       types.String `tfsdk:"name"`
	Owner      types.String `tfsdk:"owner"`
	Transition types.String `tfsdk:"transition"`
	StartCount types.Int64  `tfsdk:"start_count"`
	AccessURL  types.String `tfsdk:"access_url"`
}

func (d *workspaceDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workspace"
}

func (d *workspaceDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Description: desc}
	}
	resp.Schema = schema.Schema{
		Description: "The workspace being built, as the devmesh provisioner describes it.",
		Attributes: map[string]schema.Attribute{
			"id":         computed("Workspace ID (a UUID)."),
			"name":       computed("Workspace name."),
			"owner":      computed("Username of the workspace's owner."),
			"transition": computed("What this build does: start, stop or delete."),
			"start_count": schema.Int64Attribute{
				Computed:    true,
				Description: "1 when the transition is start, else 0: use as count on resources that exist only while the workspace runs.",
			},
			"access_url": computed("Coordinator URL (the provider's url)."),
		},
	}
}

func (d *workspaceDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	cfg, err := providerConfig(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("devmesh provider not configured", err.Error())
		return
	}
	d.cfg = cfg
}

func (d *workspaceDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	transition := envOr(EnvWorkspaceTransition, TransitionStart)
	switch transition {
	case TransitionStart, TransitionStop, TransitionDelete:
	default:
		resp.Diagnostics.AddError("Invalid workspace transition",
			fmt.Sprintf("%s=%q: want start, stop or delete", EnvWorkspaceTransition, transition))
		return
	}
	var startCount int64
	if transition == TransitionStart {
		startCount = 1
	}
	m := workspaceModel{
		ID:         types.StringValue(envOr(EnvWorkspaceID, defaultWorkspaceID)),
		Name:       types.StringValue(envOr(EnvWorkspaceName, defaultWorkspaceName)),
		Owner:      types.StringValue(envOr(EnvWorkspaceOwner, defaultWorkspaceOwner)),
		Transition: types.StringValue(transition),
		StartCount: types.Int64Value(startCount),
		AccessURL:  types.StringValue(""),
	}
	if d.cfg != nil {
		m.AccessURL = types.StringValue(d.cfg.url)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
