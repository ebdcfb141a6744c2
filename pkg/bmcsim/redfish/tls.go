package redfish

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultLeafCacheSize bounds the leaf certificates a CA keeps: enough for a
// fleet of ten thousand BMCs with room to spare, at about 1.5 KiB a leaf
// (24 MiB when full). Past it the least recently used leaf is dropped and
// minted again on its BMC's next handshake, which costs one ECDSA signature.
const DefaultLeafCacheSize = 16384

// CA is a self-signed certificate authority that mints a leaf certificate per
// BMC address on demand, so one CA file lets a client verify thousands of
// simulated BMCs on different 127.x addresses without one giant SAN list.
// It is safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
	// leafKey is shared by every leaf: minting then costs a signature, not
	// a key generation. Each BMC still has its own certificate, which is
	// what a client verifies.
	leafKey *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]*list.Element // of *leafEntry, by cache key
	lru    list.List                // front is most recently used
	limit  int
}

type leafEntry struct {
	key  string
	cert *tls.Certificate
}

// NewCA generates a CA (ECDSA P-256, valid ten years from an hour ago).
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "bmcsim CA", Organization: []string{"bmcstream"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{
		cert:    cert,
		der:     der,
		key:     key,
		leafKey: leafKey,
		leaves:  map[string]*list.Element{},
		limit:   DefaultLeafCacheSize,
	}, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("draw certificate serial: %w", err)
	}
	return serial, nil
}

// Certificate returns the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA's certificate in PEM form, what a client's CA
// bundle holds.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// CertPool returns a pool holding only the CA, for clients in tests.
func (ca *CA) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// WritePEM writes the CA's certificate (never its key) to path, readable by
// everyone, so pollers can be pointed at it as their CA bundle.
func (ca *CA) WritePEM(path string) error {
	if err := os.WriteFile(path, ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("write CA certificate %s: %w", path, err)
	}
	return nil
}

// TLSConfig returns a server configuration that presents, on each
// connection, a leaf for the local address the client connected to (and
// for the SNI name when the client sent a DNS name). It offers only
// HTTP/1.1, as BMCs do and as the Handler's connection faults need.
func (ca *CA) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: ca.getCertificate,
	}
}

func (ca *CA) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	var ip net.IP
	if hello.Conn != nil {
		if a, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
			ip = a.IP
		}
	}
	host := hello.ServerName
	if net.ParseIP(host) != nil {
		host = "" // an IP literal is covered by the IP SAN
	}
	if ip == nil && host == "" {
		return nil, errors.New("mint certificate: no local address and no server name")
	}
	return ca.Leaf(ip, host)
}

// Leaf returns the (cached) leaf certificate for a BMC at ip, also valid
// for the DNS name host when host is not empty.
func (ca *CA) Leaf(ip net.IP, host string) (*tls.Certificate, error) {
	key := ip.String() + "|" + host
	ca.mu.Lock()
	if e, ok := ca.leaves[key]; ok {
		ca.lru.MoveToFront(e)
		cert := e.Value.(*leafEntry).cert
		ca.mu.Unlock()
		return cert, nil
	}
	ca.mu.Unlock()

	// Mint outside the lock: handshakes to other BMCs proceed meanwhile.
	// Two racing handshakes to one new address may both mint; the second
	// to finish is simply cached over the first.
	cert, err := ca.mint(ip, host)
	if err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if e, ok := ca.leaves[key]; ok {
		ca.lru.MoveToFront(e)
		return e.Value.(*leafEntry).cert, nil
	}
	ca.leaves[key] = ca.lru.PushFront(&leafEntry{key: key, cert: cert})
	for ca.lru.Len() > ca.limit {
		old := ca.lru.Back()
		ca.lru.Remove(old)
		delete(ca.leaves, old.Value.(*leafEntry).key)
	}
	return cert, nil
}

func (ca *CA) mint(ip net.IP, host string) (*tls.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	name := host
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
		name = ip.String()
	}
	if host != "" {
		tmpl.DNSNames = []string{host}
	}
	tmpl.Subject = pkix.Name{CommonName: name, Organization: []string{"bmcsim"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.leafKey.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate for %s: %w", name, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der},
		PrivateKey:  ca.leafKey,
		Leaf:        leaf,
	}, nil
}
