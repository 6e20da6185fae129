package apachekafka

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// POMEnv names an environment variable that points at the Maven project resolving the
// broker, for a binary run outside the source tree.
const POMEnv = "ORDERSYS_KAFKA_POM"

// Classpath returns the broker's classpath for version, resolving it with Maven from pom (see
// FindPOM when empty) on first use and caching the result beside the POM, under target/. A
// cached classpath is used only while every jar it names still exists.
func Classpath(ctx context.Context, pom, version string) (string, error) {
	if pom == "" {
		var err error
		if pom, err = FindPOM(); err != nil {
			return "", err
		}
	}
	pomBytes, err := os.ReadFile(pom)
	if err != nil {
		return "", fmt.Errorf("apachekafka: read %s: %w", pom, err)
	}
	// Keyed by the POM's content too: an edited POM (another log4j, say) resolves again.
	sum := sha256.Sum256(pomBytes)
	cache := filepath.Join(filepath.Dir(pom), "target", fmt.Sprintf("classpath-%s-%x.txt", version, sum[:6]))
	if cp, ok := cachedClasspath(cache); ok {
		return cp, nil
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return "", fmt.Errorf("apachekafka: make classpath cache directory: %w", err)
	}
	// Several test binaries may resolve at once: each writes its own file, then renames.
	tmp := fmt.Sprintf("%s.%d.tmp", cache, os.Getpid())
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", pom,
		"dependency:build-classpath", "-Dkafka.version="+version, "-Dmdep.outputFile="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var notFound *exec.Error
		if errors.As(err, &notFound) {
			return "", fmt.Errorf("apachekafka: resolve Kafka %s: Maven (mvn) is not installed: %w", version, err)
		}
		return "", fmt.Errorf("apachekafka: resolve Kafka %s with Maven: %w\n%s", version, err, out)
	}
	if err := os.Rename(tmp, cache); err != nil {
		return "", fmt.Errorf("apachekafka: cache classpath: %w", err)
	}
	cp, ok := cachedClasspath(cache)
	if !ok {
		return "", fmt.Errorf("apachekafka: Maven resolved Kafka %s to a classpath naming missing jars (%s)", version, cache)
	}
	return cp, nil
}

func cachedClasspath(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	cp := strings.TrimSpace(string(b))
	if cp == "" {
		return "", false
	}
	for _, jar := range filepath.SplitList(cp) {
		if _, err := os.Stat(jar); err != nil {
			return "", false
		}
	}
	return cp, true
}

// FindPOM returns $ORDERSYS_KAFKA_POM, else test/kafka/pom.xml in the working directory or the
// nearest directory above it that has one.
func FindPOM() (string, error) {
	if p := os.Getenv(POMEnv); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("apachekafka: find test/kafka/pom.xml: %w", err)
	}
	for {
		p := filepath.Join(dir, "test", "kafka", "pom.xml")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("apachekafka: no test/kafka/pom.xml above the working directory; set %s", POMEnv)
		}
		dir = parent
	}
}
