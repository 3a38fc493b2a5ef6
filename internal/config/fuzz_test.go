package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a config file, under both
// a .json and a .yaml name and with no extension (content sniffing). Load
// must never panic, and must always return either a usable Config with
// diagnostics, or an error.
//
//	go test ./internal/config -run '^$' -fuzz FuzzLoad -fuzztime 30s
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/load/*")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"toolPricing": {"a": {"creditsPerCall": 1e400}}}`))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("<<: {port: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"c.json", "c.yaml", "c"} {
			cfg, diags, err := Load(LoadOptions{
				ConfigPath: name,
				Env:        []string{"HOME=/h"},
				ReadFile:   func(string) ([]byte, error) { return data, nil },
			})
			if err != nil {
				t.Fatalf("%s: Load returned an error for file content: %v", name, err)
			}
			if cfg == nil {
				t.Fatalf("%s: no config", name)
			}
			if len(diags) == 0 && cfg.ServerCommand == "" && cfg.RemoteURL == "" && len(cfg.Servers) == 0 {
				t.Fatalf("%s: a config without a backend must be diagnosed", name)
			}
			for _, d := range diags {
				if d.Level != LevelError && d.Level != LevelWarning || d.Message == "" {
					t.Fatalf("%s: malformed diagnostic %+v", name, d)
				}
			}
			_ = cfg.Redacted()
			Reloadable(cfg, Defaults())
		}
	})
}
