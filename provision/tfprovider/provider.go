// Package tfprovider is devmesh's Terraform provider: the devmesh_agent and
// devmesh_metadata resources and the devmesh_workspace data source. The
// devmesh binary serves it itself (Serve, behind the hidden
// `devmesh terraform-provider` command); InstallMirror lays out a local
// plugin mirror and CLI configuration so `terraform init` finds it without
// any network access.
package tfprovider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

const (
	// Address is the provider's source address, for required_providers.
	// The hostname is never contacted: InstallMirror's CLI configuration
	// serves it from a filesystem mirror and forbids direct installation.
	Address = "registry.devmesh.local/devmesh/devmesh"

	// Version is the provider's version. It tracks the provider's schema,
	// not devmesh releases; bump it when the schema changes.
	Version = "0.1.0"

	// Subcommand is the devmesh subcommand that serves the provider: the
	// mirror's plugin executable runs `devmesh terraform-provider`.
	Subcommand = "terraform-provider"
)

// Environment variables the provisioner sets for terraform and so for the
// provider, which reads them.
const (
	EnvURL                 = "DEVMESH_URL"
	EnvWorkspaceID         = "DEVMESH_WORKSPACE_ID"
	EnvWorkspaceName       = "DEVMESH_WORKSPACE_NAME"
	EnvWorkspaceOwner      = "DEVMESH_WORKSPACE_OWNER"
	EnvWorkspaceTransition = "DEVMESH_WORKSPACE_TRANSITION"
	// EnvRotateAgentTokens, when "1", gives every existing devmesh_agent
	// a new token in this run (its id stays). The coordinator sets it for
	// a start that follows a stop, so that a stopped workspace's old
	// tokens never work again.
	EnvRotateAgentTokens = "DEVMESH_ROTATE_AGENT_TOKENS"
)

// go-plugin's handshake for Terraform providers: terraform sets this
// variable in the environment of every plugin it starts.
const (
	magicCookieKey   = "TF_PLUGIN_MAGIC_COOKIE"
	magicCookieValue = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
)

// ErrNotPlugin is returned by Serve when the process was not started by
// terraform as a plugin.
var ErrNotPlugin = errors.New("the devmesh Terraform provider is started by terraform, not by hand")

// StartedByTerraform reports whether this process was started by terraform
// as a provider plugin.
func StartedByTerraform() bool {
	return os.Getenv(magicCookieKey) == magicCookieValue
}

// config is what Configure hands to resources and data sources.
type config struct {
	url string // coordinator URL without a trailing slash; may be ""
}

type devmeshProvider struct{}

// New returns the provider, for providerserver or in-process tests.
func New() provider.Provider { return devmeshProvider{} }

func (devmeshProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "devmesh"
	resp.Version = Version
}

func (devmeshProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "devmesh workspaces: agents, workspace facts and resource metadata.",
		Attributes: map[string]schema.Attribute{
			"url": schema.StringAttribute{
				Optional:    true,
				Description: "Coordinator URL the agents connect to. Default: $DEVMESH_URL, set by the devmesh provisioner.",
			},
		},
	}
}

type providerModel struct {
	URL types.String `tfsdk:"url"`
}

func (devmeshProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	raw := os.Getenv(EnvURL)
	if !m.URL.IsNull() && !m.URL.IsUnknown() {
		raw = m.URL.ValueString()
	}
	u, err := normalizeURL(raw)
	if err != nil {
		resp.Diagnostics.AddError("Invalid devmesh coordinator URL", err.Error())
		return
	}
	c := &config{url: u}
	resp.ResourceData = c
	resp.DataSourceData = c
}

// normalizeURL checks that raw is empty or an absolute http(s) URL and
// strips trailing slashes.
func normalizeURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http or https URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must not have credentials, a query or a fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func (devmeshProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newAgentResource, newMetadataResource}
}

func (devmeshProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newWorkspaceDataSource, newParameterDataSource}
}

// providerConfig extracts the *config passed by Configure; nil before then.
func providerConfig(data any) (*config, error) {
	if data == nil {
		return nil, nil
	}
	c, ok := data.(*config)
	if !ok {
		return nil, fmt.Errorf("unexpected provider data %T", data)
	}
	return c, nil
}
