package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time:
//
//	go build -ldflags "-X github.com/paygate/paygate/internal/cli.version=v1.2.3" ./cmd/paygate
//
// It is a variable only because -X can set nothing else; nothing assigns it
// at run time. When empty, the module version from the build info is used.
var version string

// versionInfo is the output of paygate version --json.
type versionInfo struct {
	Version    string `json:"version"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commitTime,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

func runVersion(_ context.Context, inv *invocation, args []string) int {
	asJSON := false
	for _, a := range args {
		switch a {
		case "--json", "--json=true":
			asJSON = true
		case "-h", "--help":
			fmt.Fprintln(inv.io.Stdout, "Usage: paygate version [--json]\n\nPrint paygate's version, the Go version it was built with and, when known, its commit.")
			return ExitOK
		default:
			return inv.usage("version", fmt.Errorf("unexpected argument %q; the only flag is --json", a))
		}
	}
	v := buildVersion()
	if asJSON {
		_ = json.NewEncoder(inv.io.Stdout).Encode(v)
		return ExitOK
	}
	line := "paygate " + v.Version
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if v.Modified {
			c += "-dirty"
		}
		line += " (" + c + ")"
	}
	fmt.Fprintf(inv.io.Stdout, "%s, %s, %s\n", line, v.GoVersion, v.Platform)
	return ExitOK
}

// Version returns paygate's version string ("dev" for untagged builds).
func Version() string { return buildVersion().Version }
