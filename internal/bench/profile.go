package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// profiler takes CPU profiles of the services (through their pprof endpoint) and of the load
// generator (this process) over the same window.
type profiler struct {
	loadgen  *os.File
	services chan error
	cancel   context.CancelFunc
}

// startProfiles writes <dir>/<name>-services.pprof and <dir>/<name>-loadgen.pprof. The services'
// profile lasts d (pprof's endpoint takes whole seconds); pprofAddr empty profiles only the
// load generator.
func startProfiles(ctx context.Context, client *http.Client, pprofAddr, dir, name string, d time.Duration) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start profiles: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, name+"-loadgen.pprof"))
	if err != nil {
		return nil, fmt.Errorf("start profiles: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start profiles: load generator: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &profiler{loadgen: f, services: make(chan error, 1), cancel: cancel}
	if pprofAddr == "" {
		p.services <- nil
		return p, nil
	}
	seconds := max(1, int(d.Round(time.Second)/time.Second))
	go func() {
		p.services <- downloadProfile(ctx, client, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, seconds),
			filepath.Join(dir, name+"-services.pprof"))
	}()
	return p, nil
}

// stop ends the load generator's profile and waits for the services' one.
func (p *profiler) stop() error {
	pprof.StopCPUProfile()
	err := p.loadgen.Close()
	select {
	case serr := <-p.services:
		err = errors.Join(err, serr)
	case <-time.After(30 * time.Second):
		p.cancel()
		err = errors.Join(err, fmt.Errorf("stop profiles: the services' profile did not arrive: %w", <-p.services))
	}
	p.cancel()
	return err
}

func downloadProfile(ctx context.Context, client *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("download profile: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("download profile: status %d: %s", resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("download profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("download profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("download profile: %w", err)
	}
	return nil
}
