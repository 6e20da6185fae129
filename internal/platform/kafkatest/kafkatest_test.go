package kafkatest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

func TestEnvGivesUniqueNamespacesOnOneBroker(t *testing.T) {
	a := kafkatest.New(t, kafkatest.Options{})
	b := kafkatest.New(t, kafkatest.Options{})
	if a.Names.Prefix == b.Names.Prefix {
		t.Fatalf("two envs share prefix %q", a.Names.Prefix)
	}
	a.Produce(t, a.Names.Topic("orders"), "k", []byte("v"))
	got := a.Consume(t, a.Names.Topic("orders"), 10*time.Second, kafkatest.CountOf(1))
	if string(got[0].Value) != "v" {
		t.Fatalf("read %q", got[0].Value)
	}
}

// Without Docker, forcing Testcontainers skips the test cleanly instead of failing. Run in a
// child process so the skip does not skip this test.
func TestTestcontainersBackendSkipsWithoutDocker(t *testing.T) {
	if os.Getenv("KAFKATEST_CHILD") == "1" {
		kafkatest.New(t, kafkatest.Options{})
		return
	}
	if os.Getenv("KAFKA_BROKERS") != "" {
		t.Skip("an external broker is configured")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestTestcontainersBackendSkipsWithoutDocker$", "-test.v")
	cmd.Env = append(os.Environ(), "KAFKATEST_CHILD=1", "KAFKA_BACKEND=testcontainers")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- SKIP") && !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child neither skipped nor passed:\n%s", out)
	}
	t.Logf("child: %s", strings.TrimSpace(string(out)))
}
