package tunnel

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/devmesh/devmesh/internal/bulkcopy"
)

// closeWriter is a connection that can send EOF and keep reading.
type closeWriter interface{ CloseWrite() error }

// Proxy bridges a local byte stream (r, w; for ProxyCommand, stdin and
// stdout) and conn. EOF on r half-closes conn; the proxy ends when conn
// has nothing more to say (EOF or error) or ctx ends, and then closes
// conn. Its error is nil after a clean EOF from conn.
func Proxy(ctx context.Context, conn net.Conn, r io.Reader, w io.Writer) error {
	defer conn.Close()
	up := make(chan error, 1)
	go func() {
		_, err := bulkcopy.Copy(conn, r)
		if cw, ok := conn.(closeWriter); ok && err == nil {
			cw.CloseWrite()
		}
		up <- err
	}()
	down := make(chan error, 1)
	go func() {
		_, err := bulkcopy.Copy(w, conn)
		down <- err
	}()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case err := <-up:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			up = nil // keep reading what conn still sends
		case err := <-down:
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return err
		}
	}
}
