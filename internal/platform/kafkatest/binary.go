package kafkatest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu    sync.Mutex
	buildDir   string
	builtPaths = map[string]string{}
)

// BuildBinary builds the main package at pkg (e.g. "./cmd/details", relative to the module
// root) once per test process and returns the binary's path.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builtPaths[pkg]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "ordersys-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	root := moduleRoot(t)
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	builtPaths[pkg] = out
	return out
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Process is a binary started by a test; its combined output is kept for failure reports.
type Process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// StartBinary starts path with args and extra environment; the process is killed when the
// test ends if it is still running, and its output is logged if the test failed.
func StartBinary(t testing.TB, path string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(path), p.Output())
		}
	})
	return p
}

// Output is everything the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit code (-1 on timeout).
func (p *Process) Wait(timeout time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// Done is closed once the process has exited, by itself or by a signal. Wait cannot tell a
// process killed by a signal from one still running: both report -1.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitState says how the process ended, e.g. "exit status 1" or "signal: killed"; it is
// empty while the process runs.
func (p *Process) ExitState() string {
	select {
	case <-p.done:
		return p.cmd.ProcessState.String()
	default:
		return ""
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a 127.0.0.1 address whose port is free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// CheckHelp runs bin --help and fails the test unless it exits 0 and prints every want.
func CheckHelp(t testing.TB, bin string, want ...string) {
	t.Helper()
	help := StartBinary(t, bin, nil, "--help")
	if code := help.Wait(30 * time.Second); code != 0 {
		t.Fatalf("%s --help exit %d:\n%s", filepath.Base(bin), code, help.Output())
	}
	for _, w := range want {
		if !strings.Contains(help.Output(), w) {
			t.Errorf("%s --help does not list %s:\n%s", filepath.Base(bin), w, help.Output())
		}
	}
}

// StartOnEnv starts a service binary against env's broker and namespace, configured only
// through the environment variables a deployment would set, with a fresh state directory and
// an admin port of its own; extra adds NAME=value pairs.
func StartOnEnv(t testing.TB, bin string, env *Env, extra ...string) *Process {
	t.Helper()
	vars := append([]string{
		"KAFKA_BROKERS=" + strings.Join(env.Brokers, ","),
		"TOPIC_PREFIX=" + env.Names.Prefix,
		"STATE_DIR=" + t.TempDir(),
		"ADMIN_ADDR=127.0.0.1:0",
	}, extra...)
	return StartBinary(t, bin, vars)
}
