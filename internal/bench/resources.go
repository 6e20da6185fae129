package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat and /proc/stat. It is
// 100 on every Linux architecture Go supports; Go has no sysconf to ask.
const clockTicks = 100

// minWindow is the shortest window whose CPU figures are reported: /proc counts CPU time in
// 10 ms ticks, so shorter windows would report noise.
const minWindow = 250 * time.Millisecond

// Resources is what the services and the load generator used during one measured window.
type Resources struct {
	// ServicesCPUCores is the services processes' CPU time (user+system, all threads, from
	// /proc/<pid>/stat) divided by the wall time: 1.0 is one core busy all the time.
	ServicesCPUCores float64 `json:"servicesCpuCores"`
	// ServicesRSSPeakMiB is the highest resident set (VmRSS of /proc/<pid>/status) sampled
	// every 250 ms; ServicesRSSEndMiB the last sample.
	ServicesRSSPeakMiB float64 `json:"servicesRssPeakMiB"`
	ServicesRSSEndMiB  float64 `json:"servicesRssEndMiB"`
	// LoadgenCPUCores is the benchmark process's own CPU (getrusage RUSAGE_SELF): the load
	// generator shares the machine with the services.
	LoadgenCPUCores float64 `json:"loadgenCpuCores"`
	// MachineBusyCores is the non-idle time of all CPUs (/proc/stat); OtherCPUCores is what
	// is left of it after the services and the load generator, i.e. other processes.
	MachineBusyCores float64 `json:"machineBusyCores"`
	OtherCPUCores    float64 `json:"otherCpuCores"`
	// BrokerCPUCores is the broker's own CPU when it runs as a process of its own (--broker
	// process or apache); it is then not part of OtherCPUCores. With the broker inside the
	// services process it is part of ServicesCPUCores and this is absent.
	BrokerCPUCores *float64 `json:"brokerCpuCores,omitempty"`
	// BrokerRSSPeakMiB and BrokerRSSEndMiB are the broker process's resident set, sampled with
	// the services', when it runs apart (the embedded broker keeps records in memory until
	// compaction or retention drops them).
	BrokerRSSPeakMiB *float64 `json:"brokerRssPeakMiB,omitempty"`
	BrokerRSSEndMiB  *float64 `json:"brokerRssEndMiB,omitempty"`

	// servicesCPU and brokerCPU are the CPU times behind the cores figures, for costs per order.
	servicesCPU, brokerCPU time.Duration
}

// resourceMonitor measures Resources over a window: CPU counters at start and stop, RSS
// sampled in between. The services are the processes pids, summed (the ecosystem, and the
// extra Orders instances while they run); with none (services not started by the benchmark)
// it measures the load generator and the machine only.
type resourceMonitor struct {
	pids []int
	// broker is the broker's process id when it runs on its own; 0 otherwise.
	broker int
	start  time.Time
	t0     cpuCounters
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	peakRSS int64
	lastRSS int64
	// brokerPeakRSS and brokerLastRSS are the broker process's, when it runs apart.
	brokerPeakRSS, brokerLastRSS int64
	err                          error
}

// cpuCounters are the cumulative CPU times read at one instant.
type cpuCounters struct {
	services time.Duration
	broker   time.Duration
	loadgen  time.Duration
	machine  time.Duration // non-idle, all CPUs
}

func startMonitor(pids []int, broker int) (*resourceMonitor, error) {
	m := &resourceMonitor{pids: pids, broker: broker, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if m.t0, err = m.read(); err != nil {
		return nil, err
	}
	m.sampleRSS()
	go func() {
		defer close(m.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sampleRSS()
			}
		}
	}()
	return m, nil
}

// finish ends the window and returns what was used in it.
func (m *resourceMonitor) finish() (Resources, error) {
	close(m.stop)
	<-m.done
	m.sampleRSS()
	t1, err := m.read()
	if err != nil {
		return Resources{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Resources{}, m.err
	}
	wall := time.Since(m.start).Seconds()
	if wall < minWindow.Seconds() {
		return Resources{}, fmt.Errorf("a %.0f ms window is too short for CPU times counted in %d ms ticks", wall*1000, 1000/clockTicks)
	}
	cores := func(d time.Duration) float64 { return round2(d.Seconds() / wall) }
	r := Resources{
		ServicesCPUCores: cores(t1.services - m.t0.services),
		LoadgenCPUCores:  cores(t1.loadgen - m.t0.loadgen),
		MachineBusyCores: cores(t1.machine - m.t0.machine),
	}
	r.OtherCPUCores = round2(max(0, r.MachineBusyCores-r.ServicesCPUCores-r.LoadgenCPUCores))
	r.servicesCPU = t1.services - m.t0.services
	if m.broker != 0 {
		r.brokerCPU = t1.broker - m.t0.broker
		b := cores(t1.broker - m.t0.broker)
		r.BrokerCPUCores = &b
		r.OtherCPUCores = round2(max(0, r.OtherCPUCores-b))
	}
	if len(m.pids) > 0 {
		r.ServicesRSSPeakMiB = round2(float64(m.peakRSS) / (1 << 20))
		r.ServicesRSSEndMiB = round2(float64(m.lastRSS) / (1 << 20))
	}
	if m.broker != 0 {
		peak, end := round2(float64(m.brokerPeakRSS)/(1<<20)), round2(float64(m.brokerLastRSS)/(1<<20))
		r.BrokerRSSPeakMiB, r.BrokerRSSEndMiB = &peak, &end
	}
	return r, nil
}

func (m *resourceMonitor) read() (cpuCounters, error) {
	var c cpuCounters
	var err error
	for _, pid := range m.pids {
		cpu, err := processCPU(pid)
		if err != nil {
			return c, err
		}
		c.services += cpu
	}
	if m.broker != 0 {
		if c.broker, err = processCPU(m.broker); err != nil {
			return c, err
		}
	}
	if c.loadgen, err = selfCPU(); err != nil {
		return c, err
	}
	if c.machine, err = machineBusy(); err != nil {
		return c, err
	}
	return c, nil
}

func (m *resourceMonitor) sampleRSS() {
	var rss, brokerRSS int64
	var err error
	for _, pid := range m.pids {
		n, perr := processRSS(pid)
		rss += n
		err = cmp.Or(err, perr)
	}
	if m.broker != 0 {
		var berr error
		brokerRSS, berr = processRSS(m.broker)
		err = cmp.Or(err, berr)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.err == nil {
			m.err = err
		}
		return
	}
	m.lastRSS = rss
	m.peakRSS = max(m.peakRSS, rss)
	m.brokerLastRSS = brokerRSS
	m.brokerPeakRSS = max(m.brokerPeakRSS, brokerRSS)
}

// processCPU reads utime+stime of every thread of pid from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu of process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("read cpu of process %d: malformed stat %q", pid, b)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("read cpu of process %d: stat has %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read cpu of process %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// processRSS reads VmRSS of pid in bytes.
func processRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read rss of process %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read rss of process %d: no VmRSS line", pid)
}

// selfCPU is this process's user+system CPU time.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("read own cpu: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// machineBusy is the non-idle CPU time of all CPUs since boot, from the "cpu" line of
// /proc/stat: everything except idle and iowait.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read machine cpu: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, fmt.Errorf("read machine cpu: unexpected first line %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal (guest time is already inside user).
	for i, f := range fields[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read machine cpu: %w", err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
