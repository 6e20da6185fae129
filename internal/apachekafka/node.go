package apachekafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Addr is the node's client address.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// LogPath is the node's log4j server log; the JVM's own output goes to logs/stdout.log.
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "logs", "server.log") }

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PID is the process id of the node's current JVM, 0 when none was started.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Start starts a stopped node on its ports and log directory and waits until it is ready.
func (n *Node) Start(ctx context.Context) error {
	if err := n.launch(); err != nil {
		return err
	}
	return n.WaitReady(ctx)
}

// Kill SIGKILLs the node and waits until the process is gone: a crash, not a shutdown.
func (n *Node) Kill() {
	n.signalAndWait(syscall.SIGKILL, 30*time.Second)
}

// Stop asks the node to shut down (SIGTERM) and SIGKILLs it if it has not exited within the
// cluster's stop timeout; it reports whether the shutdown was graceful.
func (n *Node) Stop() bool {
	if !n.signalAndWait(syscall.SIGTERM, n.cluster.opts.StopTimeout) {
		n.Kill()
		return false
	}
	return true
}

// signalAndWait reports whether the process is gone within wait (true when none runs).
func (n *Node) signalAndWait(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil || done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// WaitReady waits until the node answers a metadata request that lists itself (a node is
// listed once it has registered with the controller and is unfenced), failing early if the
// process exits.
func (n *Node) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cluster.opts.ReadyTimeout)
	defer cancel()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	for {
		if err := n.probe(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("apachekafka: node %d at %s not ready: %w (last error: %v)\n%s", n.ID, n.Addr(), ctx.Err(), err, n.LogTail(40))
		}
		select {
		case <-done:
			return fmt.Errorf("apachekafka: node %d exited while starting:\n%s\n%s", n.ID, n.stdoutTail(20), n.LogTail(40))
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Node) probe(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RetryTimeout(time.Second),
		kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	brokers, err := kadm.NewClient(cl).BrokerMetadata(pctx)
	if err != nil {
		return err
	}
	for _, b := range brokers.Brokers {
		if int(b.NodeID) == n.ID {
			return nil
		}
	}
	return errors.New("node not yet in its own metadata")
}

// LogTail returns the last lines of the node's server log.
func (n *Node) LogTail(lines int) string { return tailFile(n.LogPath(), lines) }

func (n *Node) stdoutTail(lines int) string {
	return tailFile(filepath.Join(n.Dir, "logs", "stdout.log"), lines)
}

// RunningVersion reads the version the node's process reported at start ("Kafka version: X"
// in its log), which proves what actually ran rather than what was asked for.
func (n *Node) RunningVersion() string {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	re := regexp.MustCompile(`Kafka version: (\S+)`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	version := ""
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			version = m[1]
		}
	}
	return version
}

func (n *Node) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		select {
		case <-n.done:
		default:
			return fmt.Errorf("apachekafka: node %d is already running", n.ID)
		}
	}
	logDir := filepath.Join(n.Dir, "logs")
	out, err := os.OpenFile(filepath.Join(logDir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("apachekafka: open node %d output: %w", n.ID, err)
	}
	n.starts++
	fmt.Fprintf(out, "=== start %d at %s\n", n.starts, time.Now().Format(time.RFC3339Nano))
	args := append(n.cluster.jvmArgs(n.cluster.opts.HeapMB, n.cluster.opts.Optimized),
		"-Dlog4j2.configurationFile="+filepath.Join(n.Dir, "log4j2.properties"),
		"-Dkafka.logs.dir="+logDir,
		"kafka.Kafka", filepath.Join(n.Dir, "server.properties"))
	cmd := exec.Command(javaBinary(), args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = n.Dir
	// The broker dies with the process that started it: a test binary killed by its timeout
	// must not leave JVMs holding ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("apachekafka: start node %d: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}
