package tfprovider

import (
	"context"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// metadataResource attaches key/value items to another resource of the
// template, for display by devmesh. It exists only in the state.
type metadataResource struct{}

func newMetadataResource() resource.Resource { return metadataResource{} }

type metadataModel struct {
	ID         types.String        `tfsdk:"id"`
	ResourceID types.String        `tfsdk:"resource_id"`
	Items      []metadataItemModel `tfsdk:"item"`
}

type metadataItemModel struct {
	Key       types.String `tfsdk:"key"`
	Value     types.String `tfsdk:"value"`
	Sensitive types.Bool   `tfsdk:"sensitive"`
}

func (metadataResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_metadata"
}

func (metadataResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Key/value items devmesh shows beside a resource of the workspace.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Description: "ID of this metadata (a UUID).",
			},
			"resource_id": schema.StringAttribute{
				Required: true, PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Description: "The id of the resource the items describe, e.g. devmesh_agent.main.id.",
			},
		},
		Blocks: map[string]schema.Block{
			"item": schema.ListNestedBlock{
				Description: "One item. Items with sensitive = true are hidden from users other than admins.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"key":       schema.StringAttribute{Required: true, Description: "Label."},
						"value":     schema.StringAttribute{Optional: true, Description: "Value; empty if null."},
						"sensitive": schema.BoolAttribute{Optional: true, Description: "Hide the value (default false)."},
					},
				},
			},
		},
	}
}

func (metadataResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m metadataModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m.ID = types.StringValue(uuid.NewString())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (metadataResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {
	// Lives only in the state; the response starts as a copy of it.
}

func (metadataResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state metadataModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (metadataResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}
