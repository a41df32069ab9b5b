package tunnel

import (
	"runtime"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// Ciphers are the SSH ciphers devmesh's clients offer (devmesh ssh, and
// OpenSSH through config-ssh's block), best first: AES-GCM first where
// this CPU has AES and carry-less multiply instructions, ChaCha20-Poly1305
// first where it does not. Only AEAD ciphers are offered; agents support
// all three.
//
// The order matters most for OpenSSH, which by default prefers
// ChaCha20-Poly1305: golang.org/x/crypto/ssh, which the agent's server
// uses, has no assembly for ChaCha20 on amd64, so there it costs the
// agent about ten times the CPU of AES-GCM per byte (0.72 against 7.3
// GB/s on one core of the benchmark machine).
func Ciphers() []string { return ciphers(hasAESGCMHardware()) }

func ciphers(aesHardware bool) []string {
	if aesHardware {
		return []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305}
	}
	return []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128GCM, ssh.CipherAES256GCM}
}

// hasAESGCMHardware reports whether Go's (and OpenSSL's) AES-GCM is
// hardware-accelerated here, by the test crypto/tls uses to order its
// cipher suites.
func hasAESGCMHardware() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	}
	return false
}
