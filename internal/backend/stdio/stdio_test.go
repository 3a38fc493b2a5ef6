package stdio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/backendtest"
	"github.com/paygate/paygate/internal/mcp"
	"github.com/paygate/paygate/internal/testenv"
)

// teeArgv runs argv behind a tee that appends everything paygate writes to
// the server to log, so tests can see what reached the server.
func teeArgv(log string, argv ...string) []string {
	return append([]string{"sh", "-c", `tee -a "$0" | exec "$@"`, log}, argv...)
}

func tapped(b *Backend, log string) backend.Backend {
	return backendtest.Tap(b, func() []byte {
		data, _ := os.ReadFile(log)
		return data
	})
}

func TestConformanceServer(t *testing.T) {
	bin := testenv.EverythingServer(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		log := filepath.Join(t.TempDir(), "upstream.jsonl")
		return tapped(New(Config{Name: "conformance", Argv: teeArgv(log, bin)}), log)
	})
}

func TestNPMEverything(t *testing.T) {
	bin := testenv.NPMBin(t, "mcp-server-everything")
	env := testenv.NodeEnv(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		log := filepath.Join(t.TempDir(), "upstream.jsonl")
		return tapped(New(Config{Name: "everything", Argv: teeArgv(log, bin, "stdio"), Env: env}), log)
	})
}

func TestNPMFilesystem(t *testing.T) {
	bin := testenv.NPMBin(t, "mcp-server-filesystem")
	env := testenv.NodeEnv(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return New(Config{Name: "fs", Argv: []string{bin, t.TempDir()}, Env: env})
	})
}

func TestNPMMemory(t *testing.T) {
	bin := testenv.NPMBin(t, "mcp-server-memory")
	env := append(testenv.NodeEnv(t), "MEMORY_FILE_PATH="+filepath.Join(t.TempDir(), "memory.jsonl"))
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return New(Config{Name: "memory", Argv: []string{bin}, Env: env})
	})
}

// start starts b and closes it when the test ends.
func start(t *testing.T, b *Backend) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		b.Close(ctx)
	})
}

func call(ctx context.Context, b backend.Backend, method, params string, p backend.Peer) (*mcp.Message, error) {
	return b.Call(ctx, &backend.Request{ID: mcp.ID(`1`), Method: method, Params: json.RawMessage(params), Peer: p})
}

func TestChildKilledMidCall(t *testing.T) {
	b := New(Config{Name: "victim", Argv: []string{testenv.EverythingServer(t)}, BackoffMin: time.Millisecond})
	lis := &backendtest.Listener{}
	b.SetListener(lis)
	start(t, b)

	// The call stays in flight: the server waits for a sampling answer.
	p := backendtest.NewPeer("s", mcp.MethodSamplingCreateMessage)
	errc := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), b, mcp.MethodToolsCall, `{"name":"test_sampling","arguments":{"prompt":"x"}}`, p)
		errc <- err
	}()
	req := p.Next(t, mcp.MethodSamplingCreateMessage)
	if err := syscall.Kill(b.current().pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, backend.ErrConnectionLost) {
			t.Fatalf("err = %v, want ErrConnectionLost", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("in-flight call hung after the child died")
	}
	// The server request the dead child made is withdrawn from the client.
	n := p.Next(t, mcp.NotificationCancelled)
	if !bytes.Contains(n.Params, req.ID) {
		t.Errorf("cancelled %s, want id %s", n.Params, req.ID)
	}

	backendtest.Eventually(t, "restart", func() bool {
		st := b.Status()
		return st.State == backend.StateReady && st.Restarts == 1
	})
	m, err := call(context.Background(), b, mcp.MethodToolsCall, `{"name":"test_simple_text","arguments":{}}`, nil)
	if err != nil || m.Error != nil {
		t.Fatalf("call after restart: %v %+v", err, m)
	}
	var states []backend.State
	for _, st := range lis.States() {
		states = append(states, st.State)
	}
	if got := strings.Join(statesToStrings(states), " "); got != "ready restarting ready" {
		t.Errorf("state changes %q, want ready restarting ready", got)
	}
}

func statesToStrings(ss []backend.State) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// syncBuffer is a log sink safe for the backend's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestStderrReachesLogger(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	argv := []string{"sh", "-c", `echo "hello from stderr" >&2; exec "$0"`, testenv.EverythingServer(t)}
	b := New(Config{Name: "noisy", Argv: argv, Logger: log})
	start(t, b)
	backendtest.Eventually(t, "the stderr line in the log", func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, `"line":"hello from stderr"`) && strings.Contains(line, `"backend":"noisy"`) {
				return true
			}
		}
		return false
	})
}

// alive reports whether pid is a live process (zombies count as dead:
// in a container nobody may reap them).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func TestCloseStopsProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		// Exits when stdin closes, leaving a grandchild behind.
		{"grandchild", `sleep 300 & echo $! > "$1"; exec "$0"`},
		// Ignores stdin EOF and SIGTERM: only SIGKILL stops it.
		{"stubborn", `trap "" TERM; sleep 300 & echo $! > "$1"; "$0"; wait`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			b := New(Config{
				Name: tc.name, Argv: []string{"sh", "-c", tc.script, testenv.EverythingServer(t), pidFile},
				StopTimeout: 50 * time.Millisecond, TermTimeout: 50 * time.Millisecond,
			})
			start(t, b)
			leader := b.current().pid
			data, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			grandchild, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := b.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			if alive(leader) {
				t.Errorf("server process %d still running", leader)
			}
			backendtest.Eventually(t, "the grandchild to die", func() bool { return !alive(grandchild) })
			if _, err := call(context.Background(), b, mcp.MethodPing, `{}`, nil); !errors.Is(err, backend.ErrClosed) {
				t.Errorf("call after close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestMultilineParams(t *testing.T) {
	b := New(Config{Name: "ml", Argv: []string{testenv.EverythingServer(t)}})
	start(t, b)
	m, err := call(context.Background(), b, mcp.MethodToolsCall, "{\n  \"name\": \"test_simple_text\",\r\n  \"arguments\": {}\n}", nil)
	if err != nil || m.Error != nil || !bytes.Contains(m.Result, []byte("simple text")) {
		t.Fatalf("%v %+v", err, m)
	}
}

func TestStartFailsForMissingCommand(t *testing.T) {
	b := New(Config{Name: "missing", Argv: []string{filepath.Join(t.TempDir(), "no-such-server")}, BackoffMin: time.Millisecond})
	defer b.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := b.Start(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no-such-server") {
		t.Fatalf("err = %v", err)
	}
	if st := b.Status(); st.State == backend.StateReady || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	if _, err := call(context.Background(), b, mcp.MethodPing, `{}`, nil); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("call: %v, want ErrUnavailable", err)
	}
}
