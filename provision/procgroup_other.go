//go:build !unix

package provision

func killProcessGroup(string) {}
