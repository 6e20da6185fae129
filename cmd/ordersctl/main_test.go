package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// The built binary, as docker compose runs it: configured through the environment, with exit
// statuses that tell a one-shot container's success from its failure.
func TestBinary(t *testing.T) {
	bin := kafkatest.BuildBinary(t, "./cmd/ordersctl")
	env := kafkatest.New(t, kafkatest.Options{NoProvision: true})
	kafkaEnv := []string{"KAFKA_BROKERS=" + strings.Join(env.Brokers, ","), "TOPIC_PREFIX=" + env.Names.Prefix, "PARTITIONS=2"}
	cases := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string
	}{
		{"help lists the subcommands", nil, []string{"--help"}, 0,
			[]string{"provision", "inventory", "customers", "orders", "tail"}},
		{"provision from the environment", kafkaEnv, []string{"provision"}, 0,
			[]string{"created  " + env.Names.Prefix + "orders\n", "(2 partitions, replication 1)"}},
		{"provision again", kafkaEnv, []string{"provision"}, 0, []string{"existing " + env.Names.Prefix + "orders\n"}},
		{"seed stock", kafkaEnv, []string{"inventory"}, 0, []string{"JUMPERS=10 UNDERPANTS=20"}},
		{"bad flag is a usage error", kafkaEnv, []string{"inventory", "--socks", "1"}, 2, []string{"-socks"}},
		{"unreachable broker fails instead of hanging", []string{"KAFKA_BROKERS=127.0.0.1:1"},
			[]string{"customers", "--timeout", "1s"}, 1, []string{"customers:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := kafkatest.StartBinary(t, bin, c.env, c.args...)
			code := p.Wait(30 * time.Second)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, c.wantCode, p.Output())
			}
			for _, w := range c.want {
				if !strings.Contains(p.Output(), w) {
					t.Errorf("output lacks %q:\n%s", w, p.Output())
				}
			}
		})
	}
}
