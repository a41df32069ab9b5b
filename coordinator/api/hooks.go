package api

import (
	"net/http"

	"github.com/devmesh/devmesh/coordinator/store"
)

// Hooks for handlers that live outside this package (coordinator/webterm)
// but authenticate and answer errors exactly like the API.

// UserHandler is a handler for an authenticated user; a returned error is
// answered like the API's (see NewError), anything else as a 500.
type UserHandler func(w http.ResponseWriter, r *http.Request, u store.User) error

// AgentHandler is a handler for an authenticated agent.
type AgentHandler func(w http.ResponseWriter, r *http.Request, ag store.Agent, ws store.Workspace) error

// UserAuthed wraps h with the API's user authentication (and, for cookie
// sessions, its CSRF check).
func (a *API) UserAuthed(h UserHandler) http.Handler {
	return a.authed(func(w http.ResponseWriter, r *http.Request, c caller) error { return h(w, r, c.user) })
}

// AgentAuthed wraps h with the agent-token authentication of the agent
// API.
func (a *API) AgentAuthed(h AgentHandler) http.Handler {
	return a.agentAuthed(func(w http.ResponseWriter, r *http.Request, c agentCaller) error {
		return h(w, r, c.agent, c.workspace)
	})
}

// NewError is an error answered with status and a JSON body of the code
// and message (the message is shown to users: no internal detail).
func NewError(status int, code, message string) error {
	return newError(status, code, "%s", message)
}

// WriteJSON writes v as the API writes its responses.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// DecodeJSON reads one JSON value as the API reads request bodies
// (bounded, unknown fields refused); its error is an API error.
func DecodeJSON(w http.ResponseWriter, r *http.Request, into any) error {
	return decodeJSON(w, r, into)
}
