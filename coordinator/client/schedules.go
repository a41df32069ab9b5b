package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// CodeBadSchedule refuses an invalid autostart spec or TTL; nothing
// was changed.
const CodeBadSchedule = "bad_schedule"

// Build initiators besides users (Build.InitiatedBy).
const (
	InitiatedByAutostart = "autostart"
	InitiatedByAutostop  = "autostop"
)

// WorkspaceSchedule is a workspace's autostart and autostop.
type WorkspaceSchedule struct {
	// Autostart is a cron spec ("CRON_TZ=Europe/Berlin 30 8 * * 1-5"),
	// "" for none.
	Autostart string `json:"autostart"`
	// TTLMs is the workspace's own TTL in milliseconds (0: none):
	// autostop this long after it started or was last in use.
	TTLMs int64 `json:"ttl_ms"`
	// EffectiveTTLMs is the TTL that applies: the workspace's, capped by
	// the template's maximum (which also applies when it has none).
	EffectiveTTLMs   int64 `json:"effective_ttl_ms"`
	TemplateMaxTTLMs int64 `json:"template_max_ttl_ms,omitempty"`
	// NextAutostart is the next autostart slot (zero: none).
	NextAutostart time.Time `json:"next_autostart,omitzero"`
	// AutostopAt is when the started workspace stops unless it is used
	// (zero: it is not started, or has no TTL).
	AutostopAt time.Time `json:"autostop_at,omitzero"`
	// LastActivity is when its agent last reported an open connection.
	LastActivity time.Time `json:"last_activity,omitzero"`
}

// UpdateScheduleRequest changes a workspace's schedule; a nil field stays
// as it is. Autostart "" and TTLMs 0 turn them off.
type UpdateScheduleRequest struct {
	Autostart *string `json:"autostart,omitempty"`
	TTLMs     *int64  `json:"ttl_ms,omitempty"`
}

// TemplateSchedule is a template's schedule policy: the TTL of new
// workspaces and the longest TTL a workspace may have (0: none).
type TemplateSchedule struct {
	DefaultTTLMs int64 `json:"default_ttl_ms"`
	MaxTTLMs     int64 `json:"max_ttl_ms"`
}

// WorkspaceSchedule returns a workspace's schedule
// (GET /workspaces/{name}/schedule).
func (c *Client) WorkspaceSchedule(ctx context.Context, name string) (WorkspaceSchedule, error) {
	var out WorkspaceSchedule
	return out, c.do(ctx, http.MethodGet, "workspaces/"+url.PathEscape(name)+"/schedule", nil, &out)
}

// UpdateWorkspaceSchedule changes a workspace's schedule and returns it
// (PUT /workspaces/{name}/schedule).
func (c *Client) UpdateWorkspaceSchedule(ctx context.Context, name string, req UpdateScheduleRequest) (WorkspaceSchedule, error) {
	var out WorkspaceSchedule
	return out, c.do(ctx, http.MethodPut, "workspaces/"+url.PathEscape(name)+"/schedule", req, &out)
}

// TemplateSchedule returns a template's schedule policy
// (GET /templates/{name}/schedule).
func (c *Client) TemplateSchedule(ctx context.Context, name string) (TemplateSchedule, error) {
	var out TemplateSchedule
	return out, c.do(ctx, http.MethodGet, "templates/"+url.PathEscape(name)+"/schedule", nil, &out)
}

// SetTemplateSchedule sets a template's schedule policy
// (PUT /templates/{name}/schedule).
func (c *Client) SetTemplateSchedule(ctx context.Context, name string, s TemplateSchedule) (TemplateSchedule, error) {
	var out TemplateSchedule
	return out, c.do(ctx, http.MethodPut, "templates/"+url.PathEscape(name)+"/schedule", s, &out)
}
