package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisOptions configure StartRedis.
type RedisOptions struct {
	// Args replace the default persistence arguments
	// (--save "" --appendonly yes --appendfsync always).
	Args []string
	// Dir is the data directory; default a new t.TempDir().
	Dir string
}

// Redis is a real redis-server started for a test. Kill and Restart keep
// its port and data directory, so a restarted server reloads its AOF.
type Redis struct {
	t    testing.TB
	Addr string // 127.0.0.1:PORT
	Dir  string
	bin  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// RedisServer starts a redis-server on a free 127.0.0.1 port with a
// temporary data directory and AOF on (appendfsync always), waits until it
// answers PING, and returns its address and a stop function (also
// registered with t.Cleanup). A missing redis-server binary skips the test
// locally and fails it in CI.
func RedisServer(t testing.TB) (addr string, stop func()) {
	r := StartRedis(t, RedisOptions{})
	return r.Addr, r.Stop
}

// StartRedis is RedisServer with options and a handle for Kill and
// Restart.
func StartRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server (apt-get install redis-server)")
	}
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	port := FreePort(t)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"}
	if o.Args != nil {
		args = append(args, o.Args...)
	} else {
		args = append(args, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	}
	r := &Redis{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, bin: bin, args: args}
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(r.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done, r.log = cmd, done, logf
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			r.t.Fatalf("redis-server exited during startup; see %s", logf.Name())
		default:
		}
		if pingRedis(r.Addr) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on %s did not answer PING within 15s", r.Addr)
}

// pingRedis sends PING over a plain connection and expects +PONG (a server
// still loading its AOF answers -LOADING).
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Kill stops the server with SIGKILL: no shutdown, no final AOF rewrite.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signal(syscall.SIGKILL)
}

// Restart starts the server again on the same port and data directory,
// after Kill or Stop, and waits until it has loaded its data.
func (r *Redis) Restart() {
	r.t.Helper()
	r.mu.Lock()
	running := r.cmd != nil
	r.mu.Unlock()
	if running {
		r.t.Fatal("Restart: redis-server is still running; Kill or Stop it first")
	}
	r.start()
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 5s). Safe to
// call more than once.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signal(syscall.SIGTERM)
}

// signal sends sig and waits for the exit; called with r.mu held.
func (r *Redis) signal(sig syscall.Signal) {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.log.Close()
	r.cmd, r.done, r.log = nil, nil, nil
}
