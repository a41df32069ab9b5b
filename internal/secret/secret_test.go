package secret

import (
	"strings"
	"testing"
)

func TestNewIsRandomAndPrefixed(t *testing.T) {
	a, idA := New("dmt")
	b, _ := New("dmt")
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(a, "dmt_") || len(a) < 50 || !strings.HasPrefix(a, "dmt_"+idA) {
		t.Fatalf("bad secret %q (id %q)", a, idA)
	}
	if Hash(a) == Hash(b) || Hash(a) != Hash(a) || strings.Contains(Hash(a), a) {
		t.Fatal("hash is not a stable one-way digest")
	}
}
