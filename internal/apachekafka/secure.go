package apachekafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Secure adds two client listeners to every node beside PLAINTEXT (which stays for the
// brokers' own traffic and for tools that need it): SASL_SSL, offering SCRAM-SHA-512,
// SCRAM-SHA-256 and PLAIN to Users, and SSL that requires a client certificate signed by the
// cluster's CA (mutual TLS). The certificates are made when the cluster is prepared (a CA, a
// server certificate for 127.0.0.1 and localhost, a client certificate), in PEM files the
// Cluster names.
type Secure struct {
	// Users maps user names to passwords. SCRAM credentials (both hashes) are created when
	// the storage is formatted, as an operator would; PLAIN users are listed in the JAAS line.
	Users map[string]string
}

// Certificates are the PEM files a secured cluster was made with.
type Certificates struct {
	CAFile         string // the CA that signed the server and client certificates
	ServerFile     string // server key and certificate chain (Kafka's PEM keystore)
	ClientCertFile string // a client certificate for mutual TLS, CN=ordersys-client
	ClientKeyFile  string
}

// SecureAddrs are a node's secured client listeners.
type SecureAddrs struct {
	SASLSSL string // host:port of the SASL_SSL listener
	MTLS    string // host:port of the SSL listener requiring client certificates
}

// makeCertificates writes a CA, a server certificate and a client certificate under dir.
func makeCertificates(dir string) (Certificates, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Certificates{}, fmt.Errorf("apachekafka: make certificate directory: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificates{}, fmt.Errorf("apachekafka: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ordersys test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Certificates{}, fmt.Errorf("apachekafka: CA certificate: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP, names []string) ([]byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: names,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		// Kafka's PEM keystore wants PKCS#8.
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
	}
	serverCert, serverKey, err := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	if err != nil {
		return Certificates{}, fmt.Errorf("apachekafka: server certificate: %w", err)
	}
	clientCert, clientKey, err := leaf(3, "ordersys-client", x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return Certificates{}, fmt.Errorf("apachekafka: client certificate: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certs := Certificates{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerFile:     filepath.Join(dir, "server.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	for path, data := range map[string][]byte{
		certs.CAFile:         caPEM,
		certs.ServerFile:     append(append(serverKey, serverCert...), caPEM...),
		certs.ClientCertFile: clientCert,
		certs.ClientKeyFile:  clientKey,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return Certificates{}, fmt.Errorf("apachekafka: write %s: %w", path, err)
		}
	}
	return certs, nil
}

// secureProperties are the listener settings a secured node adds to its server.properties.
func (n *Node) secureProperties() map[string]string {
	c := n.cluster
	var plainUsers []string
	for _, name := range slices.Sorted(maps.Keys(c.opts.Secure.Users)) {
		plainUsers = append(plainUsers, fmt.Sprintf("user_%s=%s", name, strconv.Quote(c.opts.Secure.Users[name])))
	}
	scram := "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	return map[string]string{
		"listeners": fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,SSL://127.0.0.1:%d",
			n.Port, n.ControllerPort, n.SASLSSLPort, n.MTLSPort),
		"advertised.listeners": fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,SSL://127.0.0.1:%d",
			n.Port, n.SASLSSLPort, n.MTLSPort),
		"listener.security.protocol.map":                        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
		"sasl.enabled.mechanisms":                               "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
		"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
		"listener.name.sasl_ssl.plain.sasl.jaas.config":         "org.apache.kafka.common.security.plain.PlainLoginModule required " + strings.Join(plainUsers, " ") + ";",
		"ssl.keystore.type":                                     "PEM",
		"ssl.keystore.location":                                 c.certs.ServerFile,
		"ssl.truststore.type":                                   "PEM",
		"ssl.truststore.location":                               c.certs.CAFile,
		"listener.name.ssl.ssl.client.auth":                     "required",
		"listener.name.sasl_ssl.ssl.client.auth":                "none",
	}
}

// scramFormatArgs are StorageTool's --add-scram arguments for every user, both hashes.
func (c *Cluster) scramFormatArgs() []string {
	if c.opts.Secure == nil {
		return nil
	}
	var args []string
	for _, name := range slices.Sorted(maps.Keys(c.opts.Secure.Users)) {
		for _, mech := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256"} {
			args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", mech, name, strconv.Quote(c.opts.Secure.Users[name])))
		}
	}
	return args
}

// Certificates are the files of a secured cluster; zero without Options.Secure.
func (c *Cluster) Certificates() Certificates { return c.certs }

// SecureAddrs are the node's secured listeners; zero without Options.Secure.
func (n *Node) SecureAddrs() SecureAddrs {
	if n.cluster.opts.Secure == nil {
		return SecureAddrs{}
	}
	return SecureAddrs{
		SASLSSL: net.JoinHostPort("127.0.0.1", strconv.Itoa(n.SASLSSLPort)),
		MTLS:    net.JoinHostPort("127.0.0.1", strconv.Itoa(n.MTLSPort)),
	}
}
