package webterm

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestRingKeepsTheTail(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 7, 64} {
		r := newRing(size)
		var all []byte
		rng := rand.New(rand.NewPCG(1, uint64(size)))
		for range 200 {
			p := make([]byte, rng.IntN(2*size+1))
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
			r.Write(p)
			all = append(all, p...)
			want := all[max(0, len(all)-size):]
			if got := r.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("size %d after %d bytes: got %q, want %q", size, len(all), got, want)
			}
		}
	}
}
