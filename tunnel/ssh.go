package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHPort is where agents serve SSH on their tailnet address.
const SSHPort = 22

// ErrHostKeyMismatch: the agent presented a host key other than the one
// the coordinator published for it.
var ErrHostKeyMismatch = errors.New("SSH host key mismatch")

// HostKeyError is a host key mismatch, with both fingerprints.
type HostKeyError struct {
	Target    Target
	Published string // SHA256 fingerprint of the key the coordinator published
	Presented string // of the key the server presented
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("%v for %s: the server presented %s, but the coordinator published %s for this agent; "+
		"refusing to connect (the agent's key changed without being published, or something is intercepting the connection)",
		ErrHostKeyMismatch, e.Target, e.Presented, e.Published)
}

func (e *HostKeyError) Unwrap() error { return ErrHostKeyMismatch }

// SSHOptions configures DialSSH.
type SSHOptions struct {
	// User is the SSH user name (the agent ignores it: sessions run as
	// the agent's OS user). Default "devmesh".
	User string
	// KeepAlive is the interval of keepalive requests; the connection is
	// closed after three go unanswered. Zero means 15s; negative disables.
	KeepAlive time.Duration
}

// DialSSH connects to ep's SSH server over n (a node or the daemon) and
// completes the SSH handshake, accepting only ep.HostKey (never trust on
// first use).
func DialSSH(ctx context.Context, n Tailnet, ep Endpoint, opts SSHOptions) (*ssh.Client, error) {
	if ep.HostKey == nil {
		return nil, &UnavailableError{Target: ep.Target, Status: statusNoHostKey, Now: time.Now()}
	}
	conn, err := Dial(ctx, n, "tcp", ep.Addr, SSHPort)
	if err != nil {
		return nil, fmt.Errorf("connect to %s over the tailnet: %w", ep.Target, err)
	}
	c, err := NewSSHClient(ctx, conn, ep, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewSSHClient runs the SSH handshake over conn, accepting only
// ep.HostKey, and returns the client (which owns conn from then on).
func NewSSHClient(ctx context.Context, conn net.Conn, ep Endpoint, opts SSHOptions) (*ssh.Client, error) {
	if opts.User == "" {
		opts.User = "devmesh"
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 15 * time.Second
	}
	cfg := &ssh.ClientConfig{
		User:              opts.User,
		HostKeyCallback:   fixedHostKey(ep),
		HostKeyAlgorithms: hostKeyAlgorithms(ep.HostKey),
	}
	cfg.Ciphers = Ciphers()
	// The handshake has no context of its own: bound it with a deadline
	// and by closing conn if ctx ends first.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(conn, conn.RemoteAddr().String(), cfg)
	canceled := !stop()
	if err != nil {
		if canceled {
			return nil, ctx.Err()
		}
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		return nil, fmt.Errorf("SSH handshake with %s: %w", ep.Target, err)
	}
	conn.SetDeadline(time.Time{})
	c := ssh.NewClient(sc, chans, reqs)
	if opts.KeepAlive > 0 {
		go keepAlive(c, opts.KeepAlive, 3)
	}
	return c, nil
}

// fixedHostKey accepts exactly ep.HostKey.
func fixedHostKey(ep Endpoint) ssh.HostKeyCallback {
	want := ep.HostKey.Marshal()
	return func(_ string, _ net.Addr, got ssh.PublicKey) error {
		if bytes.Equal(got.Marshal(), want) {
			return nil
		}
		return &HostKeyError{Target: ep.Target, Published: ssh.FingerprintSHA256(ep.HostKey), Presented: ssh.FingerprintSHA256(got)}
	}
}

// hostKeyAlgorithms asks the server for the kind of key we know, so a
// server with several host keys presents the published one.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}

// keepAlive sends keepalive requests every interval and closes c when
// max of them in a row went unanswered. It returns when c is closed.
func keepAlive(c *ssh.Client, interval time.Duration, max int) {
	closed := make(chan struct{})
	go func() {
		c.Wait()
		close(closed)
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-closed:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-closed:
			return
		case err := <-reply:
			if err != nil {
				c.Close()
				return
			}
			missed = 0
		case <-time.After(interval):
			if missed++; missed >= max {
				c.Close()
				return
			}
		}
	}
}
