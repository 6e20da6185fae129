package apachekafka

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// runTool runs Kafka's StorageTool with args and returns its trimmed output.
func (c *Cluster) runTool(ctx context.Context, args ...string) (string, error) {
	jvm := append(c.jvmArgs(256, false), "kafka.tools.StorageTool")
	cmd := exec.CommandContext(ctx, javaBinary(), append(jvm, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// --add-scram carries passwords; the error names the command without them.
		shown := slices.Clone(args)
		for i := range shown {
			if i > 0 && shown[i-1] == "--add-scram" {
				shown[i] = "<credentials>"
			}
		}
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(shown, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

func (c *Cluster) jvmArgs(heapMB int, optimized bool) []string {
	args := []string{
		fmt.Sprintf("-Xmx%dm", heapMB), fmt.Sprintf("-Xms%dm", min(heapMB, 256)),
		"-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
	}
	if optimized {
		args = append(args, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
	} else {
		args = append(args, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
	}
	return append(args, "-cp", c.classpath)
}

// javaBinary is $JAVA_HOME/bin/java when JAVA_HOME is set, else java on the PATH.
func javaBinary() string {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		return filepath.Join(home, "bin", "java")
	}
	return "java"
}

// newClusterID is what `kafka-storage random-uuid` prints: 16 random bytes, base64url without
// padding (made here rather than by starting one more JVM).
// newClusterID is a random id as Kafka's own Uuid makes them: 16 bytes in URL-safe base64,
// never starting with '-', which StorageTool would take for an option (one id in 64 did, and
// its format failed with "argument --cluster-id/-t: expected one argument").
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("apachekafka: make a cluster id: %w", err)
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); !strings.HasPrefix(id, "-") {
			return id, nil
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("apachekafka: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
