// Command withkafka starts Apache Kafka from Maven Central (internal/apachekafka) and runs a
// command against it with KAFKA_BROKERS set, stopping the broker afterwards; without a
// command it keeps the broker running until interrupted. `make test-kafka` and `make kafka`
// use it.
//
//	go run ./test/kafka/withkafka [--nodes 1|3] [--version V] [--port P] [--dir D] [-- command args...]
package main

import (
	"context"
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
	_ = fs.Parse(os.Args[1:])
	if *port != 0 {
		opts.Ports = []int{*port}
	}
	if *controllerPort != 0 {
		opts.ControllerPorts = []int{*controllerPort}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := apachekafka.RunWith(ctx, opts, fs.Args(), os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	stop()
	os.Exit(code)
}
