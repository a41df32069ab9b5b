package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Build statuses.
const (
	BuildPending   = "pending"
	BuildRunning   = "running"
	BuildSucceeded = "succeeded"
	BuildFailed    = "failed"
	BuildCanceling = "canceling"
	BuildCanceled  = "canceled"
)

// Build transitions.
const (
	TransitionStart  = "start"
	TransitionStop   = "stop"
	TransitionDelete = "delete"
)

// Build is one terraform run of a workspace.
type Build struct {
	Workspace       string `json:"workspace"`
	Number          int    `json:"number"`
	Transition      string `json:"transition"`
	Status          string `json:"status"`
	Reason          string `json:"reason,omitempty"` // why it failed or who canceled it
	TemplateVersion int    `json:"template_version"`
	Initiator       string `json:"initiator,omitempty"`
	// InitiatedBy is set when the workspace's schedule queued the build:
	// InitiatedByAutostart or InitiatedByAutostop (Initiator is empty).
	InitiatedBy string    `json:"initiated_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
}

// Finished reports whether the build has ended.
func (b Build) Finished() bool {
	return b.Status == BuildSucceeded || b.Status == BuildFailed || b.Status == BuildCanceled
}

// BuildLog is one line of a build's output. Stage is setup, init, apply,
// destroy (terraform's) or finish (devmesh's summary).
type BuildLog struct {
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"`
	Stage  string    `json:"stage"`
	Level  string    `json:"level"` // info, warn, error, debug
	Output string    `json:"output"`
}

// BuildLogs is a page of a build's log with the build as it was when the
// page was read: when Build is finished, no line follows the last one.
type BuildLogs struct {
	Build Build      `json:"build"`
	Logs  []BuildLog `json:"logs"`
}

// CreateBuildRequest queues a build.
type CreateBuildRequest struct {
	Transition string `json:"transition"` // TransitionStart, TransitionStop or TransitionDelete
}

func buildPath(workspace string, number int) string {
	n := "latest"
	if number > 0 {
		n = strconv.Itoa(number)
	}
	return "workspaces/" + url.PathEscape(workspace) + "/builds/" + n
}

// CreateBuild queues a build of the caller's workspace.
func (c *Client) CreateBuild(ctx context.Context, workspace, transition string) (Build, error) {
	var out Build
	return out, c.do(ctx, http.MethodPost, "workspaces/"+url.PathEscape(workspace)+"/builds", CreateBuildRequest{Transition: transition}, &out)
}

// ListBuilds lists a workspace's builds, oldest first.
func (c *Client) ListBuilds(ctx context.Context, workspace string) ([]Build, error) {
	var out []Build
	return out, c.do(ctx, http.MethodGet, "workspaces/"+url.PathEscape(workspace)+"/builds", nil, &out)
}

// Build returns build number of a workspace (0: the latest).
func (c *Client) Build(ctx context.Context, workspace string, number int) (Build, error) {
	var out Build
	return out, c.do(ctx, http.MethodGet, buildPath(workspace, number), nil, &out)
}

// CancelBuild cancels a queued or running build (0: the latest). It fails
// with CodeBuildFinished when the build has already ended.
func (c *Client) CancelBuild(ctx context.Context, workspace string, number int) (Build, error) {
	var out Build
	return out, c.do(ctx, http.MethodPost, buildPath(workspace, number)+"/cancel", nil, &out)
}

// BuildLogs returns the lines of a build's log after the line with ID
// after (at most 1000). With follow, the server waits up to about 25
// seconds for a new line or the build's end before answering.
func (c *Client) BuildLogs(ctx context.Context, workspace string, number int, after int64, follow bool) (BuildLogs, error) {
	path := fmt.Sprintf("%s/logs?after=%d", buildPath(workspace, number), after)
	if follow {
		path += "&follow=true"
	}
	var out BuildLogs
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// FollowBuild calls fn with each line of a build's log, from the line
// after `after`, until the build has finished, and returns the finished
// build. number 0 means the latest build at the time of the first call.
// A delete build whose workspace disappears while it is followed has
// succeeded (the workspace is removed right after); FollowBuild then
// returns it with status BuildSucceeded.
func (c *Client) FollowBuild(ctx context.Context, workspace string, number int, after int64, fn func(BuildLog)) (Build, error) {
	var last Build
	for {
		page, err := c.BuildLogs(ctx, workspace, number, after, true)
		if ErrorCode(err) == CodeNotFound && last.Transition == TransitionDelete {
			last.Status = BuildSucceeded
			return last, nil
		}
		if err != nil {
			return last, err
		}
		last, number = page.Build, page.Build.Number
		for _, l := range page.Logs {
			fn(l)
			after = l.ID
		}
		if last.Finished() && len(page.Logs) == 0 {
			return last, nil
		}
	}
}
