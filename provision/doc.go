// Package provision runs terraform for devmesh: it packs, checks and
// extracts template archives, validates templates, and builds workspaces
// (terraform apply or destroy through terraform-exec), streaming the logs
// and reading the agents out of the new state with terraform-json. It
// knows nothing of HTTP or the database: callers hand it bytes and get
// bytes back.
package provision
