package coordinator

import (
	"context"
	"crypto/tls"
	"fmt"

	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/relay"
	"github.com/devmesh/devmesh/coordinator/store"
)

type serverKeys struct {
	noise key.MachinePrivate
	derp  key.NodePrivate
}

// loadKeys returns the Noise machine key and the DERP node key, creating
// them on first start. They never change afterwards: clients cache them.
func loadKeys(ctx context.Context, st *store.Store) (serverKeys, error) {
	var k serverKeys
	noise, err := st.GetOrCreateSecret(ctx, "noise_machine_key", func() (string, error) {
		b, err := key.NewMachine().MarshalText()
		return string(b), err
	})
	if err != nil {
		return k, fmt.Errorf("noise key: %w", err)
	}
	if err := k.noise.UnmarshalText([]byte(noise)); err != nil {
		return k, fmt.Errorf("noise key: %w", err)
	}
	derp, err := st.GetOrCreateSecret(ctx, "derp_node_key", func() (string, error) {
		b, err := key.NewNode().MarshalText()
		return string(b), err
	})
	if err != nil {
		return k, fmt.Errorf("derp key: %w", err)
	}
	if err := k.derp.UnmarshalText([]byte(derp)); err != nil {
		return k, fmt.Errorf("derp key: %w", err)
	}
	return k, nil
}

// loadCert returns the TLS certificate for the listener and, for a
// self-signed one, the DERP map pin. A configured certificate is used as
// is; otherwise one is generated once and kept in the store.
func (s *Server) loadCert(ctx context.Context, host string) (tls.Certificate, string, error) {
	if s.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("load TLS certificate: %w", err)
		}
		return cert, "", nil
	}
	var keyPEM string
	certPEM, err := s.store.GetOrCreateSecret(ctx, "relay_tls_cert", func() (string, error) {
		c, k, err := relay.SelfSignedCert([]string{host, "127.0.0.1", "localhost"})
		if err != nil {
			return "", err
		}
		keyPEM = string(k)
		return string(c), nil
	})
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("relay certificate: %w", err)
	}
	if keyPEM != "" {
		if _, err := s.store.GetOrCreateSecret(ctx, "relay_tls_key", func() (string, error) { return keyPEM, nil }); err != nil {
			return tls.Certificate{}, "", err
		}
	}
	keyPEM, err = s.store.GetOrCreateSecret(ctx, "relay_tls_key", func() (string, error) {
		return "", fmt.Errorf("relay certificate key missing from the store")
	})
	if err != nil {
		return tls.Certificate{}, "", err
	}
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("relay certificate: %w", err)
	}
	pin, err := relay.CertPin(cert)
	return cert, pin, err
}
