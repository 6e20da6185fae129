package apachekafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/ordersys/ecosystem/internal/platform"
)

// RunWith starts a cluster, runs argv with KAFKA_BROKERS (and KAFKA_VERSION) set to it, and
// stops the cluster when the command ends. Without argv it runs until ctx ends: a local broker
// for the services (`make kafka`). listener picks the listener the command is pointed at (see
// ClientEnv; the secured ones need opts.Secure). The command's exit code is returned; when it
// fails, the tail of every node's log is printed to errOut.
func RunWith(ctx context.Context, opts Options, listener Listener, argv []string, out, errOut io.Writer) (int, error) {
	cl, err := Start(ctx, opts)
	if err != nil {
		return 1, err
	}
	defer cl.Stop()
	env, err := cl.ClientEnv(listener)
	if err != nil {
		return 1, err
	}
	brokers := strings.TrimPrefix(env[0], "KAFKA_BROKERS=")
	fmt.Fprintf(out, "Apache Kafka %s running (reported by the broker: %s), %d node(s) at %s\n",
		cl.Version(), cl.Node(1).RunningVersion(), len(cl.Nodes()), brokers)
	for _, n := range cl.Nodes() {
		fmt.Fprintf(out, "  node %d: %s, log %s\n", n.ID, n.Addr(), n.LogPath())
	}
	if len(argv) == 0 {
		fmt.Fprintf(out, "Run the services against it, e.g.\n  go run ./cmd/ecosystem --brokers %s\nCtrl-C stops the broker.\n", brokers)
		<-ctx.Done()
		return 0, nil
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), env...), VersionEnv+"="+cl.Version())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, out, errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		fmt.Fprintf(errOut, "%s failed (%v); the broker's log ends:\n%s", argv[0], err, cl.LogTail(60))
		return exit.ExitCode(), nil
	default:
		return 1, fmt.Errorf("apachekafka: run %s: %w", argv[0], err)
	}
}

// Listener names a client listener of the cluster.
type Listener string

// The listeners ClientEnv can point clients at.
const (
	ListenerPlaintext Listener = "plaintext"
	ListenerSASLSSL   Listener = "sasl-ssl" // SCRAM-SHA-512 as the first of Secure.Users
	ListenerMTLS      Listener = "mtls"
)

// ClientEnv are the environment variables that point the project's binaries and test
// environments (internal/platform/kafkatest) at the cluster through listener, KAFKA_BROKERS
// first. Every security variable is set, empty where unused, so nothing inherited leaks in.
func (c *Cluster) ClientEnv(listener Listener) ([]string, error) {
	var sec platform.Security
	var addrs []string
	switch listener {
	case "", ListenerPlaintext:
		addrs = c.Bootstrap()
	case ListenerSASLSSL, ListenerMTLS:
		if c.opts.Secure == nil {
			return nil, fmt.Errorf("apachekafka: listener %s needs Options.Secure", listener)
		}
		sec.TLS, sec.CAFile = true, c.certs.CAFile
		for _, n := range c.nodes {
			if listener == ListenerMTLS {
				addrs = append(addrs, n.SecureAddrs().MTLS)
			} else {
				addrs = append(addrs, n.SecureAddrs().SASLSSL)
			}
		}
		if listener == ListenerMTLS {
			sec.CertFile, sec.KeyFile = c.certs.ClientCertFile, c.certs.ClientKeyFile
			break
		}
		users := slices.Sorted(maps.Keys(c.opts.Secure.Users))
		if len(users) == 0 {
			return nil, errors.New("apachekafka: listener sasl-ssl needs a user in Options.Secure.Users")
		}
		sec.SASLMechanism, sec.SASLUser, sec.SASLPassword = platform.SASLScramSHA512, users[0], c.opts.Secure.Users[users[0]]
	default:
		return nil, fmt.Errorf("apachekafka: unknown listener %q: want %s, %s or %s", listener, ListenerPlaintext, ListenerSASLSSL, ListenerMTLS)
	}
	return append([]string{"KAFKA_BROKERS=" + strings.Join(addrs, ",")}, sec.Environ()...), nil
}
