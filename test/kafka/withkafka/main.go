// Command withkafka starts Apache Kafka from Maven Central (internal/apachekafka) and runs a
// command against it with KAFKA_BROKERS set, stopping the broker afterwards; without a
// command it keeps the broker running until interrupted. `make test-kafka` and `make kafka`
// use it.
//
// With --listener sasl-ssl or mtls the cluster also has secured listeners (made by the
// harness: certificates, a SCRAM user) and the command gets the environment variables that
// point every binary and test environment at that listener (KAFKA_TLS, KAFKA_SASL_*, ...).
//
//	go run ./test/kafka/withkafka [--nodes 1|3] [--version V] [--port P] [--dir D] [--listener plaintext|sasl-ssl|mtls] [-- command args...]
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/apachekafka"
)

func main() {
	fs := flag.NewFlagSet("withkafka", flag.ExitOnError)
	var opts apachekafka.Options
	fs.IntVar(&opts.Nodes, "nodes", 1, "combined broker+controller nodes: 1 or 3")
	fs.StringVar(&opts.Version, "version", "", "Kafka version (default $KAFKA_VERSION, else "+apachekafka.DefaultVersion+")")
	fs.StringVar(&opts.Dir, "dir", "", "directory for config, data and logs; kept, and reused on the next run (default: a temporary one, removed)")
	port := fs.Int("port", 0, "client port of a single node (default: a free port)")
	controllerPort := fs.Int("controller-port", 0, "controller port of a single node (default: a free port)")
	listener := fs.String("listener", string(apachekafka.ListenerPlaintext), "listener the command is pointed at: plaintext, sasl-ssl (SCRAM-SHA-512) or mtls")
	_ = fs.Parse(os.Args[1:])
	if apachekafka.Listener(*listener) != apachekafka.ListenerPlaintext {
		opts.Secure = &apachekafka.Secure{Users: map[string]string{"ordersys": randomPassword()}}
	}
	if *port != 0 {
		opts.Ports = []int{*port}
	}
	if *controllerPort != 0 {
		opts.ControllerPorts = []int{*controllerPort}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := apachekafka.RunWith(ctx, opts, apachekafka.Listener(*listener), fs.Args(), os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	stop()
	os.Exit(code)
}

// randomPassword is the SCRAM user's password, new for every cluster.
func randomPassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
