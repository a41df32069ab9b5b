//go:build linux

package netlab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// labCA is a certificate authority of one lab, trusted by the processes
// the lab starts through SSL_CERT_FILE.
type labCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

// certFor returns the paths of a certificate for addr and its key,
// signed by the lab's CA (made, and added to the lab's environment, on
// first use).
func (l *Lab) certFor(addr netip.Addr) (certFile, keyFile string) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ca == nil {
		dir := l.t.TempDir()
		ca, der, err := newCA(dir)
		if err != nil {
			l.t.Fatal(err)
		}
		caFile := filepath.Join(dir, "ca.pem")
		if err := writePEM(caFile, "CERTIFICATE", der); err != nil {
			l.t.Fatal(err)
		}
		l.ca = ca
		l.env = append(l.env, "SSL_CERT_FILE="+caFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		l.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: addr.String()},
		IPAddresses:  []net.IP{addr.AsSlice()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, l.ca.cert, &key.PublicKey, l.ca.key)
	if err != nil {
		l.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		l.t.Fatal(err)
	}
	certFile = filepath.Join(l.ca.dir, addr.String()+".pem")
	keyFile = filepath.Join(l.ca.dir, addr.String()+"-key.pem")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		l.t.Fatal(err)
	}
	if err := writePEM(keyFile, "EC PRIVATE KEY", keyDER); err != nil {
		l.t.Fatal(err)
	}
	return certFile, keyFile
}

func newCA(dir string) (*labCA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netlab CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return &labCA{cert: cert, key: key, dir: dir}, der, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
