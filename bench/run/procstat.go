package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports; reading it properly
// needs sysconf(_SC_CLK_TCK), which a CGO_ENABLED=0 build cannot call.
const clockTicks = 100

// statFields holds the /proc/PID/stat fields the runner uses.
type statFields struct {
	ppid int
	cpu  int64 // utime + stime, in clock ticks
}

// parseStat parses the contents of /proc/PID/stat. The command name (field
// 2) is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (statFields, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statFields{}, errors.New("stat: no command name")
	}
	// After ") " come field 3 (state), 4 (ppid), … 14 (utime), 15 (stime).
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return statFields{}, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	utime, err2 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err3 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return statFields{}, fmt.Errorf("stat: %w", err)
	}
	return statFields{ppid: ppid, cpu: utime + stime}, nil
}

// parseRSS returns VmRSS in kB from the contents of /proc/PID/status.
func parseRSS(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, errors.New("status: no VmRSS line")
}

func readStat(pid int) (statFields, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return statFields{}, err
	}
	return parseStat(b)
}

// readRSSMB returns a process's resident set size in MB (2^20 bytes).
func readRSSMB(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	kb, err := parseRSS(b)
	return float64(kb) / 1024, err
}

// childrenOf lists the processes whose parent is pid, by scanning /proc
// (/proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN).
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(child); err == nil && st.ppid == pid {
			kids = append(kids, child)
		}
	}
	return kids
}

// Usage is a set of processes' resource use over a measured window.
type Usage struct {
	CPUPct float64 `json:"cpu_pct"`     // CPU time over wall time, as % of one core
	RSSMB  float64 `json:"rss_peak_mb"` // peak of the summed VmRSS, sampled
}

// usageMeter measures the CPU and peak RSS of a set of processes between
// begin and end, sampling RSS every interval in between.
type usageMeter struct {
	pids     []int
	interval time.Duration

	mu      sync.Mutex
	started bool
	t0      time.Time
	cpu0    int64
	peak    float64
	stop    chan struct{}
	done    chan struct{}
}

func newUsageMeter(pids []int) *usageMeter {
	return &usageMeter{pids: pids, interval: 100 * time.Millisecond}
}

func (m *usageMeter) cpuTicks() int64 {
	var sum int64
	for _, pid := range m.pids {
		if st, err := readStat(pid); err == nil {
			sum += st.cpu
		}
	}
	return sum
}

func (m *usageMeter) rss() float64 {
	var sum float64
	for _, pid := range m.pids {
		if mb, err := readRSSMB(pid); err == nil {
			sum += mb
		}
	}
	return sum
}

// begin starts the window. Calls after the first are ignored.
func (m *usageMeter) begin() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return
	}
	m.started = true
	m.t0, m.cpu0, m.peak = time.Now(), m.cpuTicks(), m.rss()
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.interval)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				r := m.rss()
				m.mu.Lock()
				m.peak = max(m.peak, r)
				m.mu.Unlock()
			}
		}
	}()
}

// end closes the window and returns the usage over it; a window that never
// began begins now, and so reports only the RSS.
func (m *usageMeter) end() Usage {
	m.begin()
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	wall := time.Since(m.t0).Seconds()
	u := Usage{RSSMB: max(m.peak, m.rss())}
	if wall > 0 {
		u.CPUPct = float64(m.cpuTicks()-m.cpu0) / clockTicks / wall * 100
	}
	return u
}

// parseCPUBusy returns the busy clock ticks (everything but idle and
// iowait) summed over all CPUs, from the contents of /proc/stat.
func parseCPUBusy(b []byte) (int64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		// Fields: user nice system idle iowait irq softirq steal guest
		// guest_nice; guest time is already counted in user and nice.
		switch i {
		case 3, 4, 8, 9:
		default:
			busy += n
		}
	}
	return busy, nil
}

// machineMeter measures the CPU the whole machine was busy with over a
// window, as % of one core.
type machineMeter struct {
	t0    time.Time
	busy0 int64
}

func readCPUBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n, _ := parseCPUBusy(b)
	return n
}

func (m *machineMeter) begin() { m.t0, m.busy0 = time.Now(), readCPUBusy() }

func (m *machineMeter) end() float64 {
	wall := time.Since(m.t0).Seconds()
	if wall <= 0 || m.busy0 == 0 {
		return 0
	}
	return float64(readCPUBusy()-m.busy0) / clockTicks / wall * 100
}
