package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

var restAddr = regexp.MustCompile(`REST API:\s+http://(\S+)`)
var kafkaAddr = regexp.MustCompile(`Kafka:\s+(\S+)`)

// startEcosystemBinary runs the ecosystem binary as a user would and waits for its banner.
func startEcosystemBinary(t *testing.T, bin, dataDir, httpAddr, brokerAddr string) (*kafkatest.Process, string, string) {
	t.Helper()
	p := kafkatest.StartBinary(t, bin, append([]string{"KAFKA_BROKERS="}, kafkatest.PlaintextEnv...), "--data-dir", dataDir, "--http-addr", httpAddr, "--broker-addr", brokerAddr)
	var rest, kafka string
	kafkatest.Eventually(t, 90*time.Second, "the ready banner", func() bool {
		out := p.Output()
		if m := restAddr.FindStringSubmatch(out); m != nil {
			rest = m[1]
		}
		if m := kafkaAddr.FindStringSubmatch(out); m != nil {
			kafka = m[1]
		}
		return rest != "" && kafka != ""
	})
	return p, rest, kafka
}

// The README's promise: the run command brings everything up with sample data, the curl
// sequence returns a VALIDATED order, Kafka tools can list the topics at the printed address,
// Ctrl-C stops cleanly and the order is still there after a restart.
func TestEcosystemBinaryWalkThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ecosystem binary")
	}
	bin := kafkatest.BuildBinary(t, "./cmd/ecosystem")
	dataDir, httpAddr, brokerAddr := t.TempDir(), kafkatest.FreeAddr(t), kafkatest.FreeAddr(t)
	p, rest, kafka := startEcosystemBinary(t, bin, dataDir, httpAddr, brokerAddr)
	if rest != httpAddr || kafka != brokerAddr {
		t.Fatalf("banner names %s and %s, configured %s and %s", rest, kafka, httpAddr, brokerAddr)
	}
	if !strings.Contains(p.Output(), "curl -i -X POST http://"+httpAddr+"/v1/orders") {
		t.Fatalf("banner lacks the curl example:\n%s", p.Output())
	}
	base := "http://" + rest
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz after the banner: %v %v", resp, err)
	}

	// The README's order, against the seeded stock and customers.
	readme := domain.Order{ID: "1", CustomerID: 2, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1.0}
	got := postAndAwait(t, base, readme)
	if got.State != domain.OrderValidated {
		t.Fatalf("README order came back %+v", got)
	}

	// Kafka tools connect to the printed address.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	cancel()
	cl.Close()
	if err != nil || !topics.Has("orders") || !topics.Has("warehouse-inventory") {
		t.Fatalf("topics at %s: %v %v", kafka, topics.Names(), err)
	}
	if kcat, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.Command(kcat, "-b", kafka, "-L", "-m", "10").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `topic "orders"`) {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
	}

	// Ctrl-C: a clean stop with status 0.
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(60 * time.Second); code != 0 {
		t.Fatalf("exit status %d after Ctrl-C", code)
	}

	// Restart on the same data directory: the order survived, and stock was not reseeded.
	_, rest, _ = startEcosystemBinary(t, bin, dataDir, httpAddr, brokerAddr)
	if again := getOrder(t, "http://"+rest+"/v1/orders/1?timeout=10000", http.StatusOK); again != got {
		t.Fatalf("after restart order 1 is %+v, want %+v", again, got)
	}
}
