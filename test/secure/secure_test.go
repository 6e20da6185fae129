// Package secure runs the ecosystem against Apache Kafka over secured listeners: SASL_SSL with
// SCRAM-SHA-512 and mutual TLS, plus the failures users meet when a setting is wrong. It needs
// Apache Kafka from Maven (KAFKA_BACKEND=apache, as `make test-kafka` sets) and starts its own
// cluster with those listeners; certificates and SCRAM users are made by the harness
// (internal/apachekafka, Options.Secure).
package secure

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// The users' passwords: long and recognisable, so that a leak into any output is found.
const (
	alicePassword = "alice-Pw-7f3c9e1b2d"
	wrongPassword = "not-alices-Pw-0a9b8c7d"
)

var secrets = []string{alicePassword, wrongPassword}

var (
	clusterOnce sync.Once
	cluster     *apachekafka.Cluster
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	os.Exit(code)
}

// secured returns the package's cluster, started on first use.
func secured(t *testing.T) *apachekafka.Cluster {
	t.Helper()
	if !kafkatest.WantsApache() {
		t.Skipf("secured listeners need Apache Kafka: set %s=apache (make test-kafka does)", kafkatest.BackendEnv)
	}
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cluster, clusterErr = apachekafka.Start(ctx, apachekafka.Options{
			Secure: &apachekafka.Secure{Users: map[string]string{"alice": alicePassword}},
		})
	})
	if clusterErr != nil {
		t.Fatalf("start secured Kafka: %v", clusterErr)
	}
	return cluster
}

// noSecrets fails the test if any password appears in out.
func noSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s printed a password:\n%s", what, out)
		}
	}
}

var restAddr = regexp.MustCompile(`REST API:\s+http://(\S+)`)

// runEcosystem runs the ecosystem binary on the cluster with env (the deployment's
// environment variables), posts an order through its REST API and waits for VALIDATED, then
// stops it and checks its output for secrets.
func runEcosystem(t *testing.T, prefix string, env []string) {
	t.Helper()
	bin := kafkatest.BuildBinary(t, "./cmd/ecosystem")
	httpAddr := kafkatest.FreeAddr(t)
	p := kafkatest.StartBinary(t, bin, append(env, "TOPIC_PREFIX="+prefix, "LOG_LEVEL=info"),
		"--data-dir", t.TempDir(), "--http-addr", httpAddr)
	kafkatest.Eventually(t, 120*time.Second, "the ready banner", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("ecosystem exited: %s\n%s", p.ExitState(), p.Output())
		default:
		}
		return restAddr.MatchString(p.Output())
	})
	order := domain.Order{ID: prefix + "-1", CustomerID: 2, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}
	if got := ecotest.PostAndAwait(t, "http://"+httpAddr, order); got.State != domain.OrderValidated {
		t.Fatalf("order came back %+v", got)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(60 * time.Second); code != 0 {
		t.Fatalf("ecosystem exit %d after SIGTERM", code)
	}
	noSecrets(t, "the ecosystem", p.Output())
}

// kcatReads checks that kcat, with its own TLS and SASL implementation (librdkafka), reads the
// order from `orders` over the same listener.
func kcatReads(t *testing.T, topic, id string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", append(args, "-C", "-t", topic, "-e", "-q", "-f", "%k\n")...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), id) {
		t.Fatalf("kcat %v: %v\n%s", args, err, out)
	}
}

// The whole ecosystem — goka's sarama consumers and topic manager, the franz-go producers,
// admin and plain clients — over SASL_SSL with SCRAM-SHA-512 and a private CA, configured only
// by environment variables, as the compose file would; kcat reads the result.
func TestEcosystemOverSASLSSLWithScram512(t *testing.T) {
	c := secured(t)
	certs, addr := c.Certificates(), c.Nodes()[0].SecureAddrs().SASLSSL
	prefix := fmt.Sprintf("scram%d", time.Now().UnixNano()%1e6)
	runEcosystem(t, prefix, []string{
		"KAFKA_BROKERS=" + addr, "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + certs.CAFile,
		"KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "KAFKA_SASL_USERNAME=alice", "KAFKA_SASL_PASSWORD=" + alicePassword,
		// sarama writes too (the switch back), so its SCRAM client (platform/scram.go)
		// carries every kind of connection here; the mutual-TLS run keeps franz-go.
		"KAFKA_PRODUCER=sarama",
	})
	// kcat reads over the same listener with PLAIN: Debian's kcat links librdkafka 2.0.2,
	// whose SCRAM client Kafka 4 refuses (it repeats the client nonce; fixed in librdkafka
	// 2.6.1, confluentinc/librdkafka#4895), so SCRAM is shown by the services alone.
	kcatReads(t, platform.Names{Prefix: prefix}.Topic("orders"), prefix+"-1", "-b", addr, "-X", "security.protocol=SASL_SSL",
		"-X", "ssl.ca.location="+certs.CAFile, "-X", "sasl.mechanisms=PLAIN",
		"-X", "sasl.username=alice", "-X", "sasl.password="+alicePassword)
}

// The same over mutual TLS: no SASL, the client certificate is the identity.
func TestEcosystemOverMutualTLS(t *testing.T) {
	c := secured(t)
	certs, addr := c.Certificates(), c.Nodes()[0].SecureAddrs().MTLS
	prefix := fmt.Sprintf("mtls%d", time.Now().UnixNano()%1e6)
	runEcosystem(t, prefix, []string{
		"KAFKA_BROKERS=" + addr, "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + certs.CAFile,
		"KAFKA_TLS_CERT_FILE=" + certs.ClientCertFile, "KAFKA_TLS_KEY_FILE=" + certs.ClientKeyFile,
	})
	kcatReads(t, platform.Names{Prefix: prefix}.Topic("orders"), prefix+"-1", "-b", addr, "-X", "security.protocol=SSL",
		"-X", "ssl.ca.location="+certs.CAFile, "-X", "ssl.certificate.location="+certs.ClientCertFile,
		"-X", "ssl.key.location="+certs.ClientKeyFile)
}

// Each wrong setting ends a service at start, non-zero, with one line saying what is wrong,
// instead of a retry loop behind a readiness check that never turns green; no password shows.
func TestWrongSettingsFailAtStartInOneLine(t *testing.T) {
	c := secured(t)
	certs, node := c.Certificates(), c.Nodes()[0]
	sasl, mtls := node.SecureAddrs().SASLSSL, node.SecureAddrs().MTLS
	scram := func(password string) []string {
		return []string{"KAFKA_BROKERS=" + sasl, "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + certs.CAFile,
			"KAFKA_SASL_MECHANISM=SCRAM-SHA-512", "KAFKA_SASL_USERNAME=alice", "KAFKA_SASL_PASSWORD=" + password}
	}
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"wrong password", scram(wrongPassword), `SASL SCRAM-SHA-512 authentication of user "alice" failed: wrong user name or password`},
		{"unknown mechanism", append(scram(alicePassword), "KAFKA_SASL_MECHANISM=SCRAM-SHA-1"), `unknown SASL mechanism "SCRAM-SHA-1"`},
		{"the broker's certificate from an unknown CA", append(scram(alicePassword), "KAFKA_TLS_CA_FILE="), "signed by an unknown authority"},
		{"no client certificate for a mutual-TLS listener", []string{"KAFKA_BROKERS=" + mtls, "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + certs.CAFile},
			"rejects our client certificate"},
		{"plaintext to a TLS listener", []string{"KAFKA_BROKERS=" + sasl}, "listener speaks TLS: set --tls"},
		{"TLS to a plaintext listener", []string{"KAFKA_BROKERS=" + node.Addr(), "KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=" + certs.CAFile},
			"listener is plaintext: turn --tls off"},
	}
	bin := kafkatest.BuildBinary(t, "./cmd/details")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			p := kafkatest.StartBinary(t, bin, append(tc.env, "STATE_DIR="+t.TempDir(), "ADMIN_ADDR="+kafkatest.FreeAddr(t)))
			code := p.Wait(60 * time.Second)
			out := p.Output()
			if code <= 0 {
				t.Fatalf("exit %d (%s) after %s, want a non-zero exit:\n%s", code, p.ExitState(), time.Since(start), out)
			}
			var errorLines []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(line, "error: ") {
					errorLines = append(errorLines, line)
				}
			}
			if len(errorLines) != 1 || !strings.Contains(errorLines[0], tc.want) {
				t.Fatalf("want one error line with %q, got:\n%s", tc.want, out)
			}
			t.Logf("exit %d after %s: %s", code, time.Since(start).Round(100*time.Millisecond), errorLines[0])
			noSecrets(t, "details", out)
		})
	}
}
