package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TestCA is a throw-away certificate authority for tests. It is not for
// production: keys are written unencrypted and certificates last a day.
type TestCA struct {
	Dir    string
	CAFile string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
}

// NewTestCA creates a CA named name, writing name-ca.pem under dir.
func NewTestCA(dir, name string) (*TestCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &TestCA{Dir: dir, CAFile: filepath.Join(dir, name+"-ca.pem"), cert: cert, key: key, serial: 1}
	return ca, writePEM(ca.CAFile, "CERTIFICATE", der)
}

// Issue creates a certificate for name, valid as server and client, for the
// given IPs (and "localhost"), and returns its cert and key files.
func (ca *TestCA) Issue(name string, ips ...string) (certFile, keyFile string, err error) {
	return ca.IssueWith(name, IssueOptions{IPs: ips, DNSNames: []string{"localhost"}})
}

// IssuePeer creates a controller's Raft certificate: valid as server and
// client, naming its server ID as a DNS SAN and the given IPs.
func (ca *TestCA) IssuePeer(id string, ips ...string) (certFile, keyFile string, err error) {
	return ca.IssueWith(id, IssueOptions{IPs: ips, DNSNames: []string{id}})
}

// IssueOptions shapes a test certificate.
type IssueOptions struct {
	DNSNames []string
	IPs      []string
	// ClientOnly restricts the extended key usage to clientAuth, as an API
	// client's certificate is; otherwise serverAuth and clientAuth.
	ClientOnly bool
}

// IssueWith creates a certificate with common name name shaped by o and
// returns its cert and key files (name.pem, name-key.pem; key mode 0600).
func (ca *TestCA) IssueWith(name string, o IssueOptions) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	ca.serial++
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     o.DNSNames,
	}
	if o.ClientOnly {
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, ip := range o.IPs {
		p := net.ParseIP(ip)
		if p == nil {
			return "", "", fmt.Errorf("issue %s: bad IP %q", name, ip)
		}
		tpl.IPAddresses = append(tpl.IPAddresses, p)
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(ca.Dir, name+".pem")
	keyFile = filepath.Join(ca.Dir, name+"-key.pem")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	return certFile, keyFile, writePEM(keyFile, "EC PRIVATE KEY", kb)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
