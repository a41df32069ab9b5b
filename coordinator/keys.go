package coordinator

import (
	"context"
	"crypto/tls"
	"fmt"

	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/relay"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/certpin"
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
// is; otherwise one is generated once and kept in the store, and made
// anew (a new fingerprint: clients must pin it again) when it does not
// cover host, the access URL's host.
func (s *Server) loadCert(ctx context.Context, host string) (tls.Certificate, string, error) {
	if s.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("load TLS certificate: %w", err)
		}
		return cert, "", nil
	}
	hosts := []string{host, "127.0.0.1", "::1", "localhost"}
	cert, err := s.storedCert(ctx, hosts)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := cert.Leaf.VerifyHostname(host); err != nil {
		old := certpin.Fingerprint(cert.Certificate[0])
		c, k, err := relay.SelfSignedCert(hosts)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
		}
		if err := s.store.ReplaceSecrets(ctx, map[string]string{secretCert: string(c), secretKey: string(k)}); err != nil {
			return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
		}
		if cert, err = s.storedCert(ctx, hosts); err != nil {
			return tls.Certificate{}, "", err
		}
		s.log.Warn("the self-signed certificate did not cover the access URL's host: made a new one; clients that pinned the old one must log in again",
			"host", host, "old_fingerprint", old, "fingerprint", certpin.Fingerprint(cert.Certificate[0]))
	}
	pin, err := relay.CertPin(cert)
	return cert, pin, err
}

// The store's names for the self-signed certificate and its key.
const (
	secretCert = "relay_tls_cert"
	secretKey  = "relay_tls_key"
)

// storedCert returns the self-signed certificate kept in the store,
// creating one for hosts on first use.
func (s *Server) storedCert(ctx context.Context, hosts []string) (tls.Certificate, error) {
	var keyPEM string
	certPEM, err := s.store.GetOrCreateSecret(ctx, secretCert, func() (string, error) {
		c, k, err := relay.SelfSignedCert(hosts)
		if err != nil {
			return "", err
		}
		keyPEM = string(k)
		return string(c), nil
	})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay certificate: %w", err)
	}
	if keyPEM != "" {
		if _, err := s.store.GetOrCreateSecret(ctx, secretKey, func() (string, error) { return keyPEM, nil }); err != nil {
			return tls.Certificate{}, err
		}
	}
	keyPEM, err = s.store.GetOrCreateSecret(ctx, secretKey, func() (string, error) {
		return "", fmt.Errorf("relay certificate key missing from the store")
	})
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay certificate: %w", err)
	}
	return cert, nil
}
