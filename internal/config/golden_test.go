package config

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testEnv is the environment the golden tests load with.
var testEnv = []string{"HOME=/home/test"}

// TestGolden loads every file in testdata/load and compares its
// diagnostics and the resulting configuration with name.golden.
// Run "go test ./internal/config -run TestGolden -update" to rewrite them.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/load/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, diags, err := Load(LoadOptions{ConfigPath: f, Env: testEnv})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var b strings.Builder
			for _, d := range diags {
				b.WriteString(d.String() + "\n")
			}
			b.WriteString("--- config ---\n")
			out, err := json.MarshalIndent(cfg, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b.Write(out)
			b.WriteString("\n")
			checkGolden(t, f+".golden", b.String())
		})
	}
	if n < 10 {
		t.Fatalf("only %d config files in testdata/load", n)
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
