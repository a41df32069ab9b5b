// Package loadgen puts a control-plane load on a TS2021 coordinator
// (devmesh's or tailscale's test control server) without any data plane:
// simulated nodes register, stream their maps, and report endpoint
// changes whose arrival at every peer is timed.
package loadgen
