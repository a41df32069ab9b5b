package tunnel

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPortInUse: a busy local port fails ListenForwards with a
// PortInUseError that names a free port, as the user would type it.
func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	spec, err := ParseForwardSpec("tcp", busy.Addr().String()+":80")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ListenForwards(ForwardOptions{Specs: []ForwardSpec{spec}})
	var pe *PortInUseError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EADDRINUSE) || pe.Free == 0 || pe.Free == spec.Listen.Port() {
		t.Fatalf("ListenForwards on a busy port: %v", err)
	}
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(pe.Free))); err != nil {
		t.Errorf("the suggested port %d is not free: %v", pe.Free, err)
	} else {
		ln.Close()
	}
	if want := "is free: --tcp " + itoa(pe.Free) + ":80 "; !strings.Contains(err.Error(), want) {
		t.Errorf("%q lacks %q", err, want)
	}
	for in, want := range map[string]string{"0.0.0.0:8080:80": "0.0.0.0:9:80", "[::1]:8080:80": "[::1]:9:80", "8080:80": "9:80"} {
		s, _ := ParseForwardSpec("tcp", in)
		if got := (&PortInUseError{Spec: s}).spec(9); got != want {
			t.Errorf("spec of %s: %q, want %q", in, got, want)
		}
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
