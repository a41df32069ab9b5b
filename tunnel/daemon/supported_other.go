//go:build !linux && !darwin

package daemon

// supported: peerUID does not work here, so New refuses.
const supported = false

func lockState(string) (func(), error) { return nil, ErrUnsupported }
