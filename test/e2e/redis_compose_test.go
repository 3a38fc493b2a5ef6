package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/testenv"
)

// TestRedisComposeFile checks deploy/docker-compose.yml (docker is not
// available here): it parses, runs Redis with AOF on, and three paygate
// instances on distinct host ports sharing that Redis, configured only
// through PAYGATE_* variables paygate knows.
func TestRedisComposeFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Ports       []string          `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	redis, ok := doc.Services["redis"]
	if !ok {
		t.Fatal("no redis service")
	}
	cmd := strings.Join(redis.Command, " ")
	if !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "--appendfsync always") {
		t.Fatalf("redis runs without AOF fsync on every write: %q", cmd)
	}
	known := map[string]bool{}
	for _, f := range config.Flags() {
		if f.Env != "" {
			known[f.Env] = true
		}
	}
	var hostPorts []string
	for _, name := range []string{"paygate-1", "paygate-2", "paygate-3"} {
		s, ok := doc.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		if s.Environment["PAYGATE_REDIS_URL"] != "redis://redis:6379/0" || !strings.HasPrefix(s.Environment["PAYGATE_REMOTE_URL"], "http://mcp:") {
			t.Fatalf("%s environment %v", name, s.Environment)
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "PAYGATE_") && !known[k] {
				t.Fatalf("%s sets %s, which paygate does not read", name, k)
			}
		}
		if len(s.Ports) != 1 {
			t.Fatalf("%s ports %v", name, s.Ports)
		}
		host, _, _ := strings.Cut(s.Ports[0], ":")
		if slices.Contains(hostPorts, host) {
			t.Fatalf("host port %s used twice", host)
		}
		hostPorts = append(hostPorts, host)
	}
}
