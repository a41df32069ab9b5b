package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/devmesh/devmesh/provision/param"
)

// Error codes of the template and build API.
const (
	// CodeBadTemplate: a pushed archive is unsafe or malformed, or
	// terraform rejected the template; the message holds the details
	// (terraform's diagnostics).
	CodeBadTemplate = "bad_template"
	// CodeBadVariable: a template variable is missing, unknown, or of the
	// wrong type; the message names it.
	CodeBadVariable = "bad_variable"
	// CodeBadParameter: a template parameter value is missing, unknown or
	// refused by the parameter's declaration; the message names it.
	CodeBadParameter = "bad_parameter"
	// CodeImmutableParameter: an update tried to change a parameter that
	// is not mutable.
	CodeImmutableParameter = "immutable_parameter"
	// CodeTemplateInUse: the template still has workspaces (archive,
	// delete).
	CodeTemplateInUse = "template_in_use"
	// CodeProvisioningDisabled: this coordinator runs no terraform.
	CodeProvisioningDisabled = "provisioning_disabled"
	// CodeBuildFinished: the build has already ended (cancel).
	CodeBuildFinished = "build_finished"
)

// TemplateArchiveType is the content type of template archives: an
// uncompressed tar stream (see provision.Pack).
const TemplateArchiveType = "application/x-tar"

// Template is a template and its active version.
type Template struct {
	Name          string    `json:"name"`
	ActiveVersion int       `json:"active_version"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"` // when the active version was pushed
	Archived      bool      `json:"archived,omitempty"`
}

// TemplateVariable is an input variable a template declares.
type TemplateVariable struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // as terraform prints it: string, number, list(string), any...
	Description string `json:"description,omitempty"`
	// Default is the default value as JSON; absent when Required.
	Default   json.RawMessage `json:"default,omitempty"`
	Required  bool            `json:"required"`
	Sensitive bool            `json:"sensitive"`
}

// TemplateVersion is one pushed version of a template.
type TemplateVersion struct {
	Template    string             `json:"template"`
	Version     int                `json:"version"`
	Active      bool               `json:"active"`
	Message     string             `json:"message,omitempty"`
	ArchiveHash string             `json:"archive_hash"` // hex SHA-256
	ArchiveSize int64              `json:"archive_size"`
	Variables   []TemplateVariable `json:"variables"`
	Parameters  []param.Parameter  `json:"parameters"`
	// Warnings are things a push noticed that are allowed but probably
	// not meant (a template without a devmesh_agent); only in the answer
	// to the push.
	Warnings  []string  `json:"warnings,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// PushTemplate uploads a template archive (provision.Pack) as a new
// version of the template called name, which becomes active. Creating a
// template needs the admin role; pushing to an existing one, the admin
// role or being its creator. The coordinator checks the archive and runs
// terraform's validation before storing anything: a bad template fails
// with CodeBadTemplate and terraform's diagnostics in the message.
func (c *Client) PushTemplate(ctx context.Context, name string, archive []byte, message string) (TemplateVersion, error) {
	path := "templates/" + url.PathEscape(name) + "/versions"
	if message != "" {
		path += "?message=" + url.QueryEscape(message)
	}
	// Validation runs terraform init, which may download providers on a
	// coordinator allowed to: give it longer than other calls.
	hc := *c.http
	if hc.Timeout != 0 && hc.Timeout < pushTimeout {
		hc.Timeout = pushTimeout
	}
	var out TemplateVersion
	resp, err := c.sendWith(ctx, &hc, http.MethodPost, path, TemplateArchiveType, bytes.NewReader(archive))
	if err != nil {
		return out, err
	}
	return out, decodeBody(resp, &out)
}

// pushTimeout bounds a template push, validation included.
const pushTimeout = 10 * time.Minute

// ListTemplates lists all templates.
func (c *Client) ListTemplates(ctx context.Context) ([]Template, error) {
	var out []Template
	return out, c.do(ctx, http.MethodGet, "templates", nil, &out)
}

// TemplateVersions lists a template's versions, oldest first.
func (c *Client) TemplateVersions(ctx context.Context, name string) ([]TemplateVersion, error) {
	var out []TemplateVersion
	return out, c.do(ctx, http.MethodGet, "templates/"+url.PathEscape(name)+"/versions", nil, &out)
}

// TemplateArchive downloads version of a template's archive (0: the
// active version). It needs the admin role or being the template's
// creator.
func (c *Client) TemplateArchive(ctx context.Context, name string, version int) ([]byte, error) {
	v := "active"
	if version > 0 {
		v = strconv.Itoa(version)
	}
	resp, err := c.send(ctx, http.MethodGet, "templates/"+url.PathEscape(name)+"/versions/"+v+"/archive", "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBody {
		return nil, fmt.Errorf("template archive larger than %d bytes", maxResponseBody)
	}
	return b, nil
}

// send is do for bodies and responses that are not JSON: it returns the
// response of a 2xx status for the caller to read and close.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	return c.sendWith(ctx, c.http, method, path, contentType, body)
}

func (c *Client) sendWith(ctx context.Context, hc *http.Client, method, path, contentType string, body io.Reader) (*http.Response, error) {
	u := c.base.JoinPath("api/v1")
	req, err := http.NewRequestWithContext(ctx, method, u.String()+"/"+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// decodeBody decodes a JSON response and closes it.
func decodeBody(resp *http.Response, out any) error {
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// ActivateTemplateVersion makes a version of a template the active one:
// new workspaces and `devmesh update` use it
// (POST /templates/{name}/versions/{version}/activate).
func (c *Client) ActivateTemplateVersion(ctx context.Context, name string, version int) (TemplateVersion, error) {
	var out TemplateVersion
	path := fmt.Sprintf("templates/%s/versions/%d/activate", url.PathEscape(name), version)
	return out, c.do(ctx, http.MethodPost, path, nil, &out)
}

// ArchiveTemplate archives a template that no workspace uses: it leaves
// the list and takes no new workspaces until its next push
// (POST /templates/{name}/archive).
func (c *Client) ArchiveTemplate(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "templates/"+url.PathEscape(name)+"/archive", nil, nil)
}

// DeleteTemplate deletes a template that no workspace uses, with all its
// versions (DELETE /templates/{name}).
func (c *Client) DeleteTemplate(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "templates/"+url.PathEscape(name), nil, nil)
}

// ActiveTemplateVersion returns the active version of a template.
func (c *Client) ActiveTemplateVersion(ctx context.Context, name string) (TemplateVersion, error) {
	list, err := c.TemplateVersions(ctx, name)
	if err != nil {
		return TemplateVersion{}, err
	}
	for _, v := range list {
		if v.Active {
			return v, nil
		}
	}
	return TemplateVersion{}, fmt.Errorf("template %q has no active version", name)
}
