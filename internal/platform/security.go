package platform

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
)

// The SASL mechanisms the clients speak.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security is how every client reaches a secured cluster and schema registry: TLS (with a
// private CA, mutual TLS with a client certificate), SASL, and the registry's basic auth and
// CA. The zero value is plaintext without authentication. Passwords come only from the
// environment or a file, never a flag, so they appear in no process listing, `--help` or log.
type Security struct {
	TLS        bool
	CAFile     string // PEM; empty trusts the system's roots
	CertFile   string // PEM client certificate, for mutual TLS; needs KeyFile
	KeyFile    string
	ServerName string // overrides the name checked in the broker's certificate

	SASLMechanism    string // empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	SASLUser         string
	SASLPassword     string // from KAFKA_SASL_PASSWORD; SASLPasswordFile, when set, wins
	SASLPasswordFile string

	RegistryUser         string
	RegistryPassword     string // from SCHEMA_REGISTRY_PASSWORD; RegistryPasswordFile, when set, wins
	RegistryPasswordFile string
	RegistryCAFile       string // PEM; empty trusts the system's roots
}

// setting is one security setting: its flag (none for a password, which only the environment
// or a file gives), its environment variable, and the field it sets. RegisterFlags, Args and
// Environ all read this one list.
type setting struct {
	flag, env, usage string
	text             *string
	on               *bool
}

func (s *Security) settings() []setting {
	return []setting{
		{"tls", "KAFKA_TLS", "connect to Kafka over TLS", nil, &s.TLS},
		{"tls-ca-file", "KAFKA_TLS_CA_FILE", "PEM file of the CA that signed the brokers' certificates; empty trusts the system's roots", &s.CAFile, nil},
		{"tls-cert-file", "KAFKA_TLS_CERT_FILE", "PEM client certificate for mutual TLS (with --tls-key-file)", &s.CertFile, nil},
		{"tls-key-file", "KAFKA_TLS_KEY_FILE", "PEM private key of --tls-cert-file", &s.KeyFile, nil},
		{"tls-server-name", "KAFKA_TLS_SERVER_NAME", "name to verify in the brokers' certificates instead of the host dialled", &s.ServerName, nil},
		{"sasl-mechanism", "KAFKA_SASL_MECHANISM", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none", &s.SASLMechanism, nil},
		{"sasl-username", "KAFKA_SASL_USERNAME", "SASL user name (an API key on managed services)", &s.SASLUser, nil},
		{"sasl-password-file", "KAFKA_SASL_PASSWORD_FILE", "file holding the SASL password; or set KAFKA_SASL_PASSWORD", &s.SASLPasswordFile, nil},
		{"", "KAFKA_SASL_PASSWORD", "", &s.SASLPassword, nil},
		{"schema-registry-username", "SCHEMA_REGISTRY_USERNAME", "schema registry basic-auth user name", &s.RegistryUser, nil},
		{"schema-registry-password-file", "SCHEMA_REGISTRY_PASSWORD_FILE", "file holding the schema registry password; or set SCHEMA_REGISTRY_PASSWORD", &s.RegistryPasswordFile, nil},
		{"", "SCHEMA_REGISTRY_PASSWORD", "", &s.RegistryPassword, nil},
		{"schema-registry-ca-file", "SCHEMA_REGISTRY_CA_FILE", "PEM file of the CA that signed the schema registry's certificate", &s.RegistryCAFile, nil},
	}
}

// RegisterFlags binds the security settings to fs, each defaulting to its environment
// variable; passwords are read from the environment only (files have flags).
func (s *Security) RegisterFlags(fs *flag.FlagSet) {
	for _, st := range s.settings() {
		switch {
		case st.flag == "":
			if v, ok := envValue(st.env); ok {
				*st.text = v
			}
		case st.on != nil:
			BoolVar(fs, st.on, st.flag, st.env, *st.on, st.usage)
		default:
			StringVar(fs, st.text, st.flag, st.env, *st.text, st.usage)
		}
	}
}

// Args are the flags that give another process of ours these settings, for a parent that
// starts children (the benchmark). A password is never an argument: a password file is passed
// by name, a password from the environment reaches the child through the environment it
// inherits.
func (s Security) Args() []string {
	var args []string
	for _, st := range s.settings() {
		switch {
		case st.flag == "":
		case st.on != nil:
			if *st.on {
				args = append(args, "--"+st.flag)
			}
		case *st.text != "":
			args = append(args, "--"+st.flag, *st.text)
		}
	}
	return args
}

// Environ is every security variable as NAME=value, passwords included and unset ones empty
// (which every binary reads as unset), for a test harness that points a command at a cluster
// without letting anything it inherited leak in.
func (s Security) Environ() []string {
	var env []string
	for _, st := range s.settings() {
		v := ""
		switch {
		case st.on != nil:
			if *st.on {
				v = "true"
			}
		default:
			v = *st.text
		}
		env = append(env, st.env+"="+v)
	}
	return env
}

// Check reports settings that do not fit together or files that cannot be read; it is part
// of Config.Validate, so a binary refuses bad settings in one line before it connects.
func (s Security) Check() error {
	saslPassword, err := s.saslPassword()
	if err != nil {
		return err
	}
	registryPassword, err := s.registryPassword()
	if err != nil {
		return err
	}
	switch s.SASLMechanism {
	case "":
		if s.SASLUser != "" || saslPassword != "" {
			return errors.New("config: a SASL user name or password is set but no --sasl-mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.SASLUser == "" || saslPassword == "" {
			return fmt.Errorf("config: SASL %s needs --sasl-username and a password (KAFKA_SASL_PASSWORD or --sasl-password-file)", s.SASLMechanism)
		}
	default:
		return fmt.Errorf("config: unknown SASL mechanism %q: want %s, %s or %s", s.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return errors.New("config: --tls-cert-file and --tls-key-file go together")
	}
	if !s.TLS && (s.CAFile != "" || s.CertFile != "" || s.ServerName != "") {
		return errors.New("config: TLS files or a server name are set but --tls is off")
	}
	if (s.RegistryUser == "") != (registryPassword == "") {
		return errors.New("config: schema registry basic auth needs both a user name and a password (SCHEMA_REGISTRY_PASSWORD or --schema-registry-password-file)")
	}
	if _, err := s.tlsConfig(); err != nil {
		return err
	}
	if _, err := s.registryTLS(); err != nil {
		return err
	}
	return nil
}

// saslPassword is the SASL password: the file's content without its trailing line break when a
// file is named (as secrets are mounted), else the environment's value. Other whitespace is
// kept: it may be part of the password.
func (s Security) saslPassword() (string, error) {
	return secret(s.SASLPassword, s.SASLPasswordFile, "SASL password")
}

func (s Security) registryPassword() (string, error) {
	return secret(s.RegistryPassword, s.RegistryPasswordFile, "schema registry password")
}

func secret(value, file, what string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("config: read %s file: %w", what, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// tlsConfig is the TLS configuration of every Kafka connection, nil when TLS is off.
func (s Security) tlsConfig() (*tls.Config, error) {
	if !s.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.CAFile != "" {
		pool, err := certPool(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("config: --tls-ca-file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("config: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// registryTLS is the TLS configuration for the schema registry, nil without a CA file (the
// system's roots then apply to an https URL).
func (s Security) registryTLS() (*tls.Config, error) {
	if s.RegistryCAFile == "" {
		return nil, nil
	}
	pool, err := certPool(s.RegistryCAFile)
	if err != nil {
		return nil, fmt.Errorf("config: --schema-registry-ca-file: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// franzOptions are the TLS and SASL options of a franz-go client.
func (s Security) franzOptions() []kgo.Opt {
	var opts []kgo.Opt
	if cfg, err := s.tlsConfig(); err == nil && cfg != nil {
		// Validate checked the files; a client built from an unvalidated Config with bad
		// files fails its TLS handshakes instead, which says the same thing later.
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if m := s.franzMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func (s Security) franzMechanism() sasl.Mechanism {
	password, _ := s.saslPassword() // checked by Validate; unreadable, the broker refuses ""
	switch s.SASLMechanism {
	case SASLPlain:
		return plain.Auth{User: s.SASLUser, Pass: password}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: s.SASLUser, Pass: password}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: s.SASLUser, Pass: password}.AsSha512Mechanism()
	}
	return nil
}

// applySarama sets TLS and SASL on a sarama configuration (goka's consumers, its topic
// manager, and its producer when chosen).
func (s Security) applySarama(cfg *sarama.Config) {
	if tlsCfg, err := s.tlsConfig(); err == nil && tlsCfg != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tlsCfg
	}
	if s.SASLMechanism == "" {
		return
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Version = sarama.SASLHandshakeV1
	cfg.Net.SASL.User = s.SASLUser
	cfg.Net.SASL.Password, _ = s.saslPassword() // checked by Validate
	switch s.SASLMechanism {
	case SASLPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLScramSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newScramClient(sha256Hash) }
	case SASLScramSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newScramClient(sha512Hash) }
	}
}

// registryOptions are the schema registry client's auth and TLS options.
func (s Security) registryOptions() []sr.ClientOpt {
	var opts []sr.ClientOpt
	if s.RegistryUser != "" {
		password, _ := s.registryPassword() // checked by Validate
		opts = append(opts, sr.BasicAuth(s.RegistryUser, password))
	}
	if cfg, err := s.registryTLS(); err == nil && cfg != nil {
		// The default transport's proxy, timeouts and pooling, with the private CA.
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = cfg
		opts = append(opts, sr.HTTPClient(&http.Client{Transport: transport, Timeout: 30 * time.Second}))
	}
	return opts
}

// Configured reports whether any Kafka TLS or SASL setting is made.
func (s Security) Configured() bool {
	return s.TLS || s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != "" ||
		s.SASLMechanism != "" || s.SASLUser != "" || s.SASLPassword != "" || s.SASLPasswordFile != ""
}

// LogValue shows what is configured, never a secret: passwords appear as "set" or "".
func (s Security) LogValue() slog.Value {
	set := func(v string) string {
		if v == "" {
			return ""
		}
		return "set"
	}
	return slog.GroupValue(
		slog.Bool("tls", s.TLS),
		slog.String("tls_ca_file", s.CAFile),
		slog.String("tls_cert_file", s.CertFile),
		slog.String("tls_server_name", s.ServerName),
		slog.String("sasl_mechanism", s.SASLMechanism),
		slog.String("sasl_username", s.SASLUser),
		slog.String("sasl_password", set(s.SASLPassword+s.SASLPasswordFile)),
		slog.String("schema_registry_username", s.RegistryUser),
		slog.String("schema_registry_password", set(s.RegistryPassword+s.RegistryPasswordFile)),
	)
}
