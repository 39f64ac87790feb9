package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// errorf builds an error with the package's "tls: " prefix.
func errorf(format string, args ...any) error {
	return fmt.Errorf("tls: "+format, args...)
}

// readFile reads a PEM file and words a failure as "tls: PATH: cannot
// read: REASON", without repeating the path the os error already holds.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, errorf("%s: cannot read: %v", path, err)
	}
	return b, nil
}

// pemBlocks returns every PEM block in b.
func pemBlocks(b []byte) []*pem.Block {
	var out []*pem.Block
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		out = append(out, blk)
	}
}

// isKeyBlock reports whether a PEM block type names a private key.
func isKeyBlock(typ string) bool {
	return strings.HasSuffix(typ, "PRIVATE KEY")
}

// parseCerts parses every CERTIFICATE block of a PEM file, leaf first.
func parseCerts(path string, b []byte) ([]*x509.Certificate, [][]byte, error) {
	var certs []*x509.Certificate
	var ders [][]byte
	sawKey := false
	for _, blk := range pemBlocks(b) {
		if isKeyBlock(blk.Type) {
			sawKey = true
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, errorf("%s: certificate %d cannot be parsed: %v", path, len(certs)+1, err)
		}
		certs = append(certs, c)
		ders = append(ders, blk.Bytes)
	}
	if len(certs) == 0 {
		if sawKey {
			return nil, nil, errorf("%s: no certificate found in file (it holds a private key: are the certificate and key files swapped?)", path)
		}
		return nil, nil, errorf("%s: no certificate found in file", path)
	}
	return certs, ders, nil
}

// parseKey parses the first private key block of a PEM file.
func parseKey(path string, b []byte) (crypto.Signer, error) {
	sawCert := false
	for _, blk := range pemBlocks(b) {
		if blk.Type == "CERTIFICATE" {
			sawCert = true
			continue
		}
		if !isKeyBlock(blk.Type) {
			continue
		}
		if blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "" {
			return nil, errorf("%s: private key is encrypted; Weir needs an unencrypted key file", path)
		}
		var k any
		var err error
		switch blk.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		}
		if err != nil {
			return nil, errorf("%s: private key cannot be parsed: %v", path, err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, errorf("%s: private key of type %T is not supported (want RSA, ECDSA or Ed25519)", path, k)
		}
	}
	if sawCert {
		return nil, errorf("%s: no private key found in file (it holds a certificate: are the certificate and key files swapped?)", path)
	}
	return nil, errorf("%s: no private key found in file", path)
}

// publicKeyEqual compares two public keys of any supported type.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	ae, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ae.Equal(b)
}

// parseKeyPair parses a certificate file's and a key file's contents into
// a tls.Certificate, with errors that name the file at fault.
func parseKeyPair(certFile, keyFile string, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	certs, ders, err := parseCerts(certFile, certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyFile, keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(key.Public(), certs[0].PublicKey) {
		return nil, errorf("%s: private key does not match certificate %s", keyFile, certFile)
	}
	return &tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: certs[0]}, nil
}

// sumOf hashes the contents of a set of files, to tell a real change
// from a rewrite of the same bytes.
func sumOf(contents [][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range contents {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// parseCAPool builds a certificate pool from a PEM file's contents.
func parseCAPool(path string, b []byte) (*x509.CertPool, error) {
	certs, _, err := parseCerts(path, b)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// loadCAPool reads a PEM file of CA certificates into a pool.
func loadCAPool(path string) (*x509.CertPool, []byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	pool, err := parseCAPool(path, b)
	if err != nil {
		return nil, nil, err
	}
	return pool, b, nil
}
