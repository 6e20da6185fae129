package apachekafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// RunWith starts a cluster, runs argv with KAFKA_BROKERS (and KAFKA_VERSION) set to it, and
// stops the cluster when the command ends. Without argv it runs until ctx ends: a local broker
// for the services (`make kafka`). The command's exit code is returned; when it fails, the
// tail of every node's log is printed to errOut.
func RunWith(ctx context.Context, opts Options, argv []string, out, errOut io.Writer) (int, error) {
	cl, err := Start(ctx, opts)
	if err != nil {
		return 1, err
	}
	defer cl.Stop()
	brokers := strings.Join(cl.Bootstrap(), ",")
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
	cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+brokers, VersionEnv+"="+cl.Version())
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
