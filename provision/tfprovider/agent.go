package tfprovider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"runtime"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// agentNameRE: agent names end up in hostnames and URLs.
var agentNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Platforms the init script supports (a POSIX sh script, PowerShell on
// Windows).
var (
	agentOSes   = []string{"linux", "darwin", "freebsd", "windows"}
	agentArches = []string{"amd64", "arm64", "arm", "386"}
)

// tokenBytes is the number of random bytes in an agent token.
const tokenBytes = 32

type agentResource struct {
	cfg *config
}

func newAgentResource() resource.Resource { return &agentResource{} }

type agentModel struct {
	ID            types.String `tfsdk:"id"`
	Name          types.String `tfsdk:"name"`
	OS            types.String `tfsdk:"os"`
	Arch          types.String `tfsdk:"arch"`
	Env           types.Map    `tfsdk:"env"`
	StartupScript types.String `tfsdk:"startup_script"`
	Dir           types.String `tfsdk:"dir"`
	Token         types.String `tfsdk:"token"`
	InitScript    types.String `tfsdk:"init_script"`
}

func (r *agentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_agent"
}

func (r *agentResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "A devmesh agent: a `devmesh agent` process on a workspace host. Run its init_script there with DEVMESH_AGENT_TOKEN set to its token.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				Description: "Agent ID (a UUID), stable for the life of the resource.",
			},
			"name": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString("main"),
				Validators:  []validator.String{regexValidator{agentNameRE, "lowercase letters, digits and inner dashes, at most 32 characters"}},
				Description: "Agent name, unique within the workspace. Default \"main\".",
			},
			"os": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(runtime.GOOS),
				Validators:  []validator.String{oneOf(agentOSes)},
				Description: "Operating system of the host the agent runs on. Default: that of the provisioner host.",
			},
			"arch": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(runtime.GOARCH),
				Validators:  []validator.String{oneOf(agentArches)},
				Description: "CPU architecture (Go naming: amd64, arm64, ...). Default: that of the provisioner host.",
			},
			"env": schema.MapAttribute{
				Optional: true, ElementType: types.StringType,
				Description: "Environment variables for the agent's sessions and startup script.",
			},
			"startup_script": schema.StringAttribute{
				Optional:    true,
				Description: "Script the agent runs once it has connected.",
			},
			"dir": schema.StringAttribute{
				Optional:    true,
				Description: "Working directory for sessions. Default: the user's home.",
			},
			"token": schema.StringAttribute{
				Computed: true, Sensitive: true, PlanModifiers: keep,
				Description: "Secret the agent authenticates with. Generated at create, stable across updates unless the provisioner asks for rotation (a start after a stop). Pass it as DEVMESH_AGENT_TOKEN in the environment, never on a command line.",
			},
			"init_script": schema.StringAttribute{
				Computed:    true,
				Description: "sh script that starts `devmesh agent` (downloading devmesh from the coordinator if it is not on PATH). It holds no secret: it reads the token from DEVMESH_AGENT_TOKEN.",
			},
		},
	}
}

func (r *agentResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	cfg, err := providerConfig(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("devmesh provider not configured", err.Error())
		return
	}
	r.cfg = cfg
}

// url returns the coordinator URL, "" if unset.
func (r *agentResource) url() string {
	if r.cfg == nil {
		return ""
	}
	return r.cfg.url
}

// ModifyPlan computes init_script at plan time, so that it is known in the
// plan and does not show as changing on every update.
func (r *agentResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	var plan agentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if rotateTokens() && !req.State.Raw.IsNull() {
		// An update that mints a new token (see Update).
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("token"), types.StringUnknown())...)
	}
	if r.url() == "" {
		resp.Diagnostics.AddError("No devmesh coordinator URL",
			"devmesh_agent needs the coordinator URL: set url in the devmesh provider block, or DEVMESH_URL in terraform's environment (the devmesh provisioner sets it).")
		return
	}
	if plan.OS.IsUnknown() || plan.Arch.IsUnknown() {
		return // computed at apply
	}
	script := InitScript(r.url(), plan.OS.ValueString(), plan.Arch.ValueString())
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("init_script"), script)...)
}

func (r *agentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m agentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	token, err := newToken()
	if err != nil {
		resp.Diagnostics.AddError("Cannot generate agent token", err.Error())
		return
	}
	m.ID = types.StringValue(uuid.NewString())
	m.Token = types.StringValue(token)
	m.InitScript = types.StringValue(InitScript(r.url(), m.OS.ValueString(), m.Arch.ValueString()))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *agentResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {
	// Nothing lives outside the state, and the response starts as a copy
	// of the prior state: keep it.
}

func (r *agentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state agentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	if plan.Token.IsUnknown() { // ModifyPlan asked for rotation
		token, err := newToken()
		if err != nil {
			resp.Diagnostics.AddError("Cannot generate agent token", err.Error())
			return
		}
		plan.Token = types.StringValue(token)
	} else {
		plan.Token = state.Token // otherwise stable across updates
	}
	plan.InitScript = types.StringValue(InitScript(r.url(), plan.OS.ValueString(), plan.Arch.ValueString()))
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *agentResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
	// Nothing to clean up: removing it from the state revokes it, since the
	// coordinator reads the agents out of each build's new state.
}

// rotateTokens reports whether the provisioner asked for new agent tokens
// in this run (EnvRotateAgentTokens).
func rotateTokens() bool { return os.Getenv(EnvRotateAgentTokens) == "1" }

// newToken returns tokenBytes random bytes, hex-encoded.
func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
