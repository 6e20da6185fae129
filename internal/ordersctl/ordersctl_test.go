package ordersctl_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ordersctl"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// run runs ordersctl in process and returns its exit status and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := ordersctl.Main(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// kafkaFlags point a command at env's broker and namespace.
func kafkaFlags(env *kafkatest.Env) []string {
	return []string{"--brokers", strings.Join(env.Brokers, ","), "--topic-prefix", env.Names.Prefix,
		"--partitions", "4", "--log-format", "text"}
}

var commands = []string{"provision", "inventory", "customers", "orders", "tail"}

func TestHelp(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"top level lists every command", []string{"--help"}, commands},
		{"help word", []string{"help"}, commands},
		{"provision", []string{"provision", "--help"}, []string{"ordersctl provision [flags]", "-brokers", "(env KAFKA_BROKERS)", "-partitions", "-timeout"}},
		{"inventory", []string{"inventory", "-h"}, []string{"-jumpers", "-underpants", "-stockings", "-topic-prefix", "(env TOPIC_PREFIX)"}},
		{"customers", []string{"help", "customers"}, []string{"Franz Kafka", "-schema-registry"}},
		{"orders", []string{"orders", "--help"}, []string{"-url", "-rate", "-count", "-read-timeout"}},
		{"tail", []string{"tail", "--help"}, []string{"ordersctl tail <topic> [flags]", "-from-beginning", "-max"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, c.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"inventory", "--socks", "3"}, "flag provided but not defined: -socks"},
		{"tail without a topic", []string{"tail"}, "tail takes 1 argument(s) <topic>"},
		{"tail with two topics", []string{"tail", "orders", "payments"}, "tail takes 1 argument(s)"},
		{"negative stock", []string{"inventory", "--jumpers", "-1", "--brokers", "127.0.0.1:1"}, "--jumpers -1 is not a stock count"},
		{"bad platform value", []string{"customers", "--partitions", "0"}, "partitions 0 < 1"},
		{"negative max", []string{"tail", "orders", "--max", "-2", "--brokers", "127.0.0.1:1"}, "--max -2 is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.args...)
			if code != ordersctl.ExitUsage || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, ordersctl.ExitUsage, c.want)
			}
		})
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{NoProvision: true})
	all := env.Names.AllTopics()
	cases := []struct {
		name     string
		created  int
		existing int
	}{
		{"first run creates every topic", len(all), 0},
		{"second run finds them all", 0, len(all)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"provision"}, kafkaFlags(env)...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := linesStarting(out, "created  "); got != c.created {
				t.Errorf("%d created, want %d:\n%s", got, c.created, out)
			}
			if got := linesStarting(out, "existing "); got != c.existing {
				t.Errorf("%d existing, want %d:\n%s", got, c.existing, out)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := env.Admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range all {
		if d, ok := details[spec.Name]; !ok || len(d.Partitions) != 4 {
			t.Errorf("topic %s: %+v", spec.Name, d)
		}
	}
	t.Run("another partition count is refused", func(t *testing.T) {
		args := append([]string{"provision"}, kafkaFlags(env)...)
		code, _, errOut := run(t, append(args, "--partitions", "2")...)
		if code != ordersctl.ExitFailure || !strings.Contains(errOut, "partition count other than 2") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func linesStarting(text, prefix string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// tailLines runs ordersctl tail and decodes its output.
func tailLines(t *testing.T, env *kafkatest.Env, topic string, max int) []map[string]any {
	t.Helper()
	args := append([]string{"tail", topic, "--from-beginning", "--max", itoa(max)}, kafkaFlags(env)...)
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("tail exit %d: %s", code, errOut)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("tail line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestInventoryAndCustomersReadBackWithTail(t *testing.T) {
	cases := []struct {
		name  string
		flags []string
		want  map[string]float64
	}{
		{"no product flag writes the reference defaults", nil, map[string]float64{"UNDERPANTS": 20, "JUMPERS": 10}},
		{"only the products given", []string{"--stockings", "5", "--jumpers", "0"}, map[string]float64{"STOCKINGS": 5, "JUMPERS": 0}},
	}
	for _, c := range cases {
		t.Run("inventory: "+c.name, func(t *testing.T) {
			env := kafkatest.New(t, kafkatest.Options{})
			code, out, errOut := run(t, append(append([]string{"inventory"}, c.flags...), kafkaFlags(env)...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "stock set on "+env.Names.Topic("warehouse-inventory")) {
				t.Errorf("output %q", out)
			}
			got := map[string]float64{}
			for _, l := range tailLines(t, env, "warehouse-inventory", len(c.want)) {
				got[l["key"].(string)] = l["value"].(float64)
			}
			if len(got) != len(c.want) {
				t.Fatalf("stock %v, want %v", got, c.want)
			}
			for p, n := range c.want {
				if got[p] != n {
					t.Fatalf("stock %v, want %v", got, c.want)
				}
			}
		})
	}

	t.Run("customers", func(t *testing.T) {
		env := kafkatest.New(t, kafkatest.Options{})
		code, out, errOut := run(t, append([]string{"customers"}, kafkaFlags(env)...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, "7 customers written") {
			t.Errorf("output %q", out)
		}
		lines := tailLines(t, env, "customers", 7)
		byID := map[float64]map[string]any{}
		for _, l := range lines {
			byID[l["key"].(float64)] = l["value"].(map[string]any)
		}
		if c := byID[15]; c["firstName"] != "Franz" || c["lastName"] != "Kafka" || c["level"] != "gold" {
			t.Fatalf("customer 15: %v", c)
		}
		for id := 0.0; id <= 5; id++ {
			if byID[id] == nil {
				t.Fatalf("customer %v missing: %v", id, byID)
			}
		}
	})
}

func TestEnvironmentConfiguresTheKafkaFlags(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	t.Setenv("KAFKA_BROKERS", strings.Join(env.Brokers, ","))
	t.Setenv("TOPIC_PREFIX", env.Names.Prefix)
	code, _, errOut := run(t, "inventory", "--underpants", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := env.Admin.ListEndOffsets(ctx, env.Names.Topic(string(platform.TopicWarehouseInventory)))
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 1 {
		t.Fatalf("%d stock records under the prefix from TOPIC_PREFIX, want 1", total)
	}
}

func TestOrdersExitStatus(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	cases := []struct {
		name     string
		mutate   func(*domain.Order)
		wantCode int
		wantOut  string
	}{
		{"all read back", func(*domain.Order) {}, 0, "posted 3, read back 3, mismatches 0, errors 0"},
		{"a mismatch fails the run", func(o *domain.Order) { o.Price = 2 }, ordersctl.ExitFailure, "posted 3, read back 3, mismatches 3, errors 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			posted := map[string]domain.Order{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					var o domain.Order
					_ = json.NewDecoder(r.Body).Decode(&o)
					mu.Lock()
					posted[o.ID] = o
					mu.Unlock()
					w.WriteHeader(http.StatusCreated)
					return
				}
				mu.Lock()
				o := posted[strings.TrimPrefix(r.URL.Path, "/v1/orders/")]
				mu.Unlock()
				c.mutate(&o)
				_ = json.NewEncoder(w).Encode(o)
			}))
			defer srv.Close()
			args := append([]string{"orders", "--url", srv.URL, "--rate", "100", "--count", "3"}, kafkaFlags(env)...)
			code, out, errOut := run(t, args...)
			if code != c.wantCode || !strings.Contains(out, c.wantOut) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, c.wantCode, c.wantOut)
			}
		})
	}
}

// --if-empty seeds once: a second run (a restarted deployment) leaves stock and customers as
// they are.
func TestIfEmptySeedsOnlyOnce(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	for i, want := range []string{"stock set on", "already holds records"} {
		code, out, errOut := run(t, append([]string{"inventory", "--if-empty", "--jumpers", fmt.Sprint(10 + i)}, kafkaFlags(env)...)...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("inventory run %d: exit %d, output %q %s", i, code, out, errOut)
		}
	}
	lines := tailLines(t, env, "warehouse-inventory", 1)
	if len(lines) != 1 || lines[0]["value"].(float64) != 10 {
		t.Fatalf("stock after two --if-empty runs: %v", lines)
	}
	for i, want := range []string{"customers written", "already holds records"} {
		code, out, errOut := run(t, append([]string{"customers", "--if-empty"}, kafkaFlags(env)...)...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("customers run %d: exit %d, output %q %s", i, code, out, errOut)
		}
	}
}

// Every command that talks to Kafka checks the connection first: plaintext to a TLS listener
// is one line at once, not a wait for --timeout.
func TestEveryCommandChecksTheConnection(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	cert := srv.TLS.Certificates[0]
	srv.Close()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	for _, args := range [][]string{
		{"provision", "--timeout", "30s"}, {"inventory", "--timeout", "30s"}, {"customers", "--timeout", "30s"},
		{"tail", "orders", "--max", "1"}, {"orders", "--url", "http://127.0.0.1:1", "--count", "1"},
	} {
		t.Run(args[0], func(t *testing.T) {
			start := time.Now()
			err := ordersctl.Run(context.Background(), append(args, "--brokers", addr), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "listener speaks TLS: set --tls") || time.Since(start) > 10*time.Second {
				t.Fatalf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
}
