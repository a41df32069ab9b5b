package tunnel

import (
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestCiphersOrder(t *testing.T) {
	aead := []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305}
	supported := ssh.SupportedAlgorithms().Ciphers
	for _, hw := range []bool{true, false} {
		got := ciphers(hw)
		want := ssh.CipherChaCha20Poly1305
		if hw {
			want = ssh.CipherAES128GCM
		}
		if got[0] != want {
			t.Errorf("with AES hardware %v: %v first, want %s", hw, got[0], want)
		}
		if len(got) != len(aead) {
			t.Errorf("with AES hardware %v: %v, want the three AEAD ciphers", hw, got)
		}
		for _, c := range got {
			if !slices.Contains(aead, c) || !slices.Contains(supported, c) {
				t.Errorf("with AES hardware %v: %s is not a supported AEAD cipher", hw, c)
			}
		}
	}
}
