package platform

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Every setting comes from a flag or its environment variable; passwords only from the
// environment or a file, so `--help` and the start-up line never show one.
func TestSecurityFlagsAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("KAFKA_SASL_USERNAME", "alice")
	t.Setenv("KAFKA_SASL_PASSWORD", "env-secret-1")
	t.Setenv("SCHEMA_REGISTRY_USERNAME", "reg")
	t.Setenv("SCHEMA_REGISTRY_PASSWORD", "env-secret-2")
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if fs.Lookup("sasl-password") != nil || fs.Lookup("schema-registry-password") != nil {
		t.Fatal("a password has a flag")
	}
	if err := Parse(fs, []string{"--sasl-password-file", pwFile}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := cfg.Security
	if s.SASLMechanism != SASLScramSHA512 || s.SASLUser != "alice" || s.RegistryUser != "reg" {
		t.Fatalf("settings %+v", s)
	}
	if p, _ := s.saslPassword(); p != "from-file" {
		t.Fatalf("the password file should win over the environment, got %q", p)
	}
	if p, _ := s.registryPassword(); p != "env-secret-2" {
		t.Fatalf("registry password %q", p)
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("starting", slog.Any("config", cfg))
	for _, secret := range []string{"env-secret-1", "env-secret-2", "from-file"} {
		if strings.Contains(help.String(), secret) || strings.Contains(logged.String(), secret) {
			t.Errorf("secret %q shown:\n%s\n%s", secret, help.String(), logged.String())
		}
	}
	if !strings.Contains(logged.String(), `"sasl_password":"set"`) {
		t.Errorf("start-up line does not say the password is set: %s", logged.String())
	}
}

// Settings that cannot work are refused before any connection, each with its reason.
func TestSecurityRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		s    Security
		want string
	}{
		{"unknown mechanism", Security{SASLMechanism: "SCRAM-SHA-1", SASLUser: "a", SASLPassword: "b"}, `unknown SASL mechanism "SCRAM-SHA-1"`},
		{"lower-case mechanism", Security{SASLMechanism: "plain", SASLUser: "a", SASLPassword: "b"}, "unknown SASL mechanism"},
		{"mechanism without password", Security{SASLMechanism: SASLPlain, SASLUser: "a"}, "needs --sasl-username and a password"},
		{"user without mechanism", Security{SASLUser: "a"}, "no --sasl-mechanism"},
		{"missing password file", Security{SASLMechanism: SASLPlain, SASLUser: "a", SASLPasswordFile: filepath.Join(dir, "none")}, "read SASL password file"},
		{"certificate without key", Security{TLS: true, CertFile: notPEM}, "go together"},
		{"CA without TLS", Security{CAFile: notPEM}, "--tls is off"},
		{"CA file not PEM", Security{TLS: true, CAFile: notPEM}, "holds no PEM certificate"},
		{"client pair not PEM", Security{TLS: true, CertFile: notPEM, KeyFile: notPEM}, "client certificate"},
		{"registry user without password", Security{RegistryUser: "r"}, "basic auth needs both"},
		{"registry CA not PEM", Security{RegistryCAFile: notPEM}, "--schema-registry-ca-file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Check()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	if err := (Security{}).Check(); err != nil {
		t.Fatalf("plaintext refused: %v", err)
	}
}

// The same settings reach sarama (goka's consumers and topic manager) and franz-go.
func TestSecurityReachesEveryClient(t *testing.T) {
	s := Security{TLS: true, ServerName: "kafka.example", SASLMechanism: SASLScramSHA512, SASLUser: "alice", SASLPassword: "pw"}
	g := NewGoka(Config{Brokers: []string{"x:9092"}, ClientID: "c", Security: s})
	cfg := g.sarama()
	if !cfg.Net.TLS.Enable || cfg.Net.TLS.Config.ServerName != "kafka.example" || !cfg.Net.SASL.Enable ||
		cfg.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || cfg.Net.SASL.User != "alice" || cfg.Net.SASL.Password != "pw" ||
		cfg.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Fatalf("sarama config %+v", cfg.Net)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("sarama refuses the config: %v", err)
	}
	override := SaramaConfig("bench")
	g.Sarama = override
	if cfg := g.sarama(); !cfg.Net.SASL.Enable || override.Net.SASL.Enable {
		t.Fatal("an override config must get the security settings, on a copy")
	}
	base := len(ClientOptions(Config{}))
	if got := len(ClientOptions(Config{Security: s})); got != base+2 {
		t.Fatalf("franz-go options: %d, want %d (TLS and SASL)", got, base+2)
	}
}

// RFC 7677's SCRAM-SHA-256 example, byte for byte, then a server that does not know the
// password and one that changes our nonce.
func TestScramClientRFC7677(t *testing.T) {
	c := newScramClient(sha256Hash)
	c.nonce = func() (string, error) { return "rOprNGfwEbeRWgbNEkqO", nil }
	if err := c.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ challenge, want string }{
		{"", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"},
		{"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="},
		{"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", ""},
	}
	for i, s := range steps {
		got, err := c.Step(s.challenge)
		if err != nil || got != s.want {
			t.Fatalf("step %d: %q %v, want %q", i+1, got, err, s.want)
		}
	}
	if !c.Done() {
		t.Fatal("not done after the server's signature")
	}

	bad := []struct {
		name          string
		first, second string
		want          string
	}{
		{"forged signature", "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "signature does not match"},
		{"nonce not ours", "r=somethingelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "", "does not extend ours"},
		{"server error", "e=invalid-proof", "", "server refused"},
		{"bad iterations", "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "", "bad iteration count"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			c := newScramClient(sha256Hash)
			c.nonce = func() (string, error) { return "rOprNGfwEbeRWgbNEkqO", nil }
			if err := c.Begin("user", "pencil", ""); err != nil {
				t.Fatal(err)
			}
			_, _ = c.Step("")
			_, err := c.Step(b.first)
			if err == nil {
				_, err = c.Step(b.second)
			}
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("got %v, want %q", err, b.want)
			}
		})
	}
	if got := saslName("a=b,c"); got != "a=3Db=2Cc" {
		t.Fatalf("saslName: %q", got)
	}
}

// Each failure a secured cluster gives at connection becomes a sentence saying what to fix.
func TestExplainConnectionFailures(t *testing.T) {
	scram := Security{TLS: true, SASLMechanism: SASLScramSHA512, SASLUser: "alice"}
	cases := []struct {
		name      string
		s         Security
		err       error
		permanent bool
		want      string
	}{
		{"wrong password", scram, fmt.Errorf("sasl: %w", kerr.SaslAuthenticationFailed), true, `authentication of user "alice" failed: wrong user name or password`},
		{"mechanism not offered", scram, kerr.UnsupportedSaslMechanism, true, "does not offer SASL SCRAM-SHA-512"},
		{"unknown CA", scram, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true, "unknown authority: set --tls-ca-file"},
		{"wrong host", scram, x509.HostnameError{Certificate: &x509.Certificate{}, Host: "10.0.0.1"}, true, "not for the host dialled"},
		{"plaintext listener", scram, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true, "its listener is plaintext"},
		{"client certificate refused", scram, errors.New("remote error: tls: certificate required"), true, "rejects our client certificate"},
		{"TLS listener, plaintext client", Security{}, io.EOF, false, "may expect TLS (--tls) or SASL"},
		{"SASL listener, no SASL", Security{TLS: true}, io.EOF, false, "may expect SASL (--sasl-mechanism)"},
		{"nobody there", Security{}, context.DeadlineExceeded, false, "no broker answered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := permanent(c.err); got != c.permanent {
				t.Errorf("permanent = %v", got)
			}
			if got := explain(c.s, c.err); !strings.Contains(got, c.want) || strings.Contains(got, "\n") {
				t.Errorf("explain = %q, want one line with %q", got, c.want)
			}
		})
	}
}

// The schema registry is reached over TLS with a private CA and basic auth; without the
// password or the CA the codecs are not built, with a reason.
func TestRegistryWithBasicAuthAndPrivateCA(t *testing.T) {
	reg := srfake.NewRegistry(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("reg:reg-secret"))))
	srv := httptest.NewTLSServer(reg.Handler())
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "registry-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		s    Security
		want string // "" for success
	}{
		{"auth and CA", Security{RegistryUser: "reg", RegistryPassword: "reg-secret", RegistryCAFile: caFile}, ""},
		{"wrong password", Security{RegistryUser: "reg", RegistryPassword: "nope", RegistryCAFile: caFile}, "not authorized"},
		{"no auth", Security{RegistryCAFile: caFile}, "Missing Authorization"},
		{"no CA", Security{RegistryUser: "reg", RegistryPassword: "reg-secret"}, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			codecs, err := CodecsFor(ctx, Config{SchemaRegistryURL: srv.URL, Security: c.s})
			switch {
			case c.want == "" && (err != nil || codecs == nil):
				t.Fatalf("codecs: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}
