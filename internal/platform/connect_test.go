package platform

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testCA is a CA with a server certificate for 127.0.0.1, for brokers on loopback.
type testCA struct {
	caFile string
	server tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{caFile: caFile, server: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}
}

// saslBroker is an embedded broker on TLS with SASL users alice/pw for every mechanism.
func saslBroker(t *testing.T, ca testCA, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser(SASLPlain, "alice", "pw"), kfake.Superuser(SASLScramSHA256, "alice", "pw"), kfake.Superuser(SASLScramSHA512, "alice", "pw"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.server}})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// sarama (goka's consumers and topic manager) reaches a TLS+SASL broker with every mechanism
// through Goka's configuration: its SCRAM client is ours (scram.go).
func TestSaramaConnectsWithEveryMechanism(t *testing.T) {
	ca := newTestCA(t)
	addr := saslBroker(t, ca).ListenAddrs()[0]
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			s := Security{TLS: true, CAFile: ca.caFile, SASLMechanism: mech, SASLUser: "alice", SASLPassword: "pw"}
			cl, err := sarama.NewClient([]string{addr}, NewGoka(Config{Brokers: []string{addr}, ClientID: "t", Security: s}).sarama())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.RefreshMetadata(); err != nil {
				t.Fatal(err)
			}
			if err := CheckCluster(context.Background(), Config{Brokers: []string{addr}, ClientID: "t", Security: s}); err != nil {
				t.Fatalf("franz-go: %v", err)
			}
		})
	}
}

// A refused password on one bootstrap broker is reported at once even when another is down
// (a client's Ping reports only the last seed it tried), and a listener that drops us for
// want of SASL gets that hint, not the deadline's.
func TestCheckClusterReportsTheRefusalThatMatters(t *testing.T) {
	defer func(d time.Duration) { checkTimeout = d }(checkTimeout)
	checkTimeout = 3 * time.Second
	ca := newTestCA(t)
	refusing := saslBroker(t, ca)
	// kfake accepts any SCRAM proof; Kafka answers a wrong one with error 58, as here.
	refusing.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		refusing.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		return resp, nil, true
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	scram := Security{TLS: true, CAFile: ca.caFile, SASLMechanism: SASLScramSHA512, SASLUser: "alice", SASLPassword: "wrong"}
	plainListener := saslBroker(t, ca).ListenAddrs()[0]
	cases := []struct {
		name    string
		brokers []string
		s       Security
		want    string
		within  time.Duration
	}{
		{"wrong password, second seed down", []string{refusing.ListenAddrs()[0], down}, scram, "wrong user name or password", time.Second},
		{"wrong password, first seed down", []string{down, refusing.ListenAddrs()[0]}, scram, "wrong user name or password", time.Second},
		{"TLS without SASL to a SASL listener", []string{plainListener}, Security{TLS: true, CAFile: ca.caFile}, "may expect SASL", checkTimeout + time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := CheckCluster(context.Background(), Config{Brokers: c.brokers, ClientID: "t", Security: c.s})
			if err == nil || !strings.Contains(err.Error(), c.want) || time.Since(start) > c.within {
				t.Fatalf("after %v: %v, want %q within %v", time.Since(start).Round(time.Millisecond), err, c.want, c.within)
			}
		})
	}
}

// A parent (the benchmark) hands its settings to a child as flags, never a password.
func TestSecurityArgsReachAChild(t *testing.T) {
	s := Security{TLS: true, CAFile: "/ca", CertFile: "/c", KeyFile: "/k", ServerName: "kafka", SASLMechanism: SASLScramSHA512,
		SASLUser: "alice", SASLPassword: "from-env", SASLPasswordFile: "/pw", RegistryUser: "r", RegistryPasswordFile: "/rpw", RegistryCAFile: "/rca"}
	args := s.Args()
	if strings.Contains(strings.Join(args, " "), "from-env") {
		t.Fatalf("a password in the arguments: %v", args)
	}
	var child Security
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	child.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := s
	want.SASLPassword = child.SASLPassword // the environment's, not the parent's
	if !reflect.DeepEqual(child, want) {
		t.Fatalf("child got %+v\nwant %+v", child, want)
	}
	if !s.Configured() || (Security{RegistryUser: "r"}).Configured() {
		t.Fatal("Configured is about Kafka's TLS and SASL only")
	}
}

// Environ names every variable the flags read, so a harness that sets it leaves nothing
// inherited in place; read back, it gives the same settings, passwords included.
func TestSecurityEnvironRoundTrip(t *testing.T) {
	s := Security{TLS: true, CAFile: "/ca", CertFile: "/c", KeyFile: "/k", ServerName: "kafka", SASLMechanism: SASLScramSHA512,
		SASLUser: "alice", SASLPassword: "pw", SASLPasswordFile: "/pw", RegistryUser: "r", RegistryPassword: "rpw",
		RegistryPasswordFile: "/rpw", RegistryCAFile: "/rca"}
	for _, kv := range s.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	var back Security
	fs := flag.NewFlagSet("back", flag.ContinueOnError)
	back.RegisterFlags(fs)
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("read back %+v\nwant %+v", back, s)
	}
	for _, kv := range (Security{}).Environ() {
		if name, value, _ := strings.Cut(kv, "="); value != "" || name == "" {
			t.Fatalf("zero settings give %q", kv)
		}
	}
}
