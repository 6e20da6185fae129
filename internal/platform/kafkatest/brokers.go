package kafkatest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/broker"
	"github.com/ordersys/ecosystem/internal/platform"
)

// Where a test's broker comes from: the embedded kfake shared by the test binary, Apache
// Kafka (KAFKA_BACKEND=apache), a Docker container, or the brokers the environment names.

func brokersFor(t testing.TB, preferDocker bool) (Backend, []string) {
	t.Helper()
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		return External, platform.SplitList(v)
	}
	switch Backend(os.Getenv(BackendEnv)) {
	case KFake:
		return KFake, sharedKFake(t)
	case Apache:
		return Apache, sharedApache(t)
	case Testcontainers:
		if !dockerReachable() {
			t.Skip("KAFKA_BACKEND=testcontainers but no Docker daemon is reachable")
		}
		return Testcontainers, sharedContainer(t)
	}
	if preferDocker && dockerReachable() {
		return Testcontainers, sharedContainer(t)
	}
	return KFake, sharedKFake(t)
}

var (
	kfakeOnce    sync.Once
	kfakeBroker  *broker.Broker
	kfakeErr     error
	apacheOnce   sync.Once
	apacheAddrs  []string
	apacheErr    error
	dockerOnce   sync.Once
	dockerOK     bool
	containerMu  sync.Mutex
	containerBrk []string
)

// sharedKFake starts one in-process broker per test binary; it lives until the process ends.
func sharedKFake(t testing.TB) []string {
	kfakeOnce.Do(func() {
		kfakeBroker, kfakeErr = broker.Start(broker.Options{})
	})
	if kfakeErr != nil {
		t.Fatalf("kafkatest: start kfake: %v", kfakeErr)
	}
	return kfakeBroker.Addrs()
}

// sharedApache starts one Apache Kafka broker per test binary. It lives until the process
// ends (the JVM is started with a parent-death signal), in a directory under the system's
// temporary directory named by the process id; a later start removes those of processes that
// have ended (packages' test binaries run in parallel, so only dead ones).
func sharedApache(t testing.TB) []string {
	apacheOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := filepath.Join(os.TempDir(), "ordersys-kafkatest-apache")
		removeDeadRuns(dir)
		cl, err := apachekafka.Start(ctx, apachekafka.Options{Dir: filepath.Join(dir, strconv.Itoa(os.Getpid()))})
		if err != nil {
			apacheErr = err
			return
		}
		apacheAddrs = cl.Bootstrap()
	})
	if apacheErr != nil {
		t.Fatalf("kafkatest: start Apache Kafka: %v", apacheErr)
	}
	return apacheAddrs
}

func removeDeadRuns(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// dockerReachable asks the Docker provider for its health, once per process.
func dockerReachable() (ok bool) {
	dockerOnce.Do(func() {
		defer func() {
			if recover() != nil {
				dockerOK = false
			}
		}()
		provider, err := testcontainers.ProviderDocker.GetProvider()
		if err != nil {
			return
		}
		defer provider.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dockerOK = provider.Health(ctx) == nil
	})
	return dockerOK
}

// sharedContainer starts one Kafka container per test binary; Testcontainers' reaper removes it
// when the process ends.
func sharedContainer(t testing.TB) []string {
	containerMu.Lock()
	defer containerMu.Unlock()
	if containerBrk != nil {
		return containerBrk
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := tckafka.Run(ctx, ConfluentLocalImage, tckafka.WithClusterID("ordersys-test"))
	if err != nil {
		t.Fatalf("kafkatest: start Kafka container: %v", err)
	}
	brokers, err := c.Brokers(ctx)
	if err != nil {
		t.Fatalf("kafkatest: Kafka container brokers: %v", err)
	}
	containerBrk = brokers
	return brokers
}
