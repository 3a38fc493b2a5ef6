package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/paygate/paygate/internal/config"
)

func validateHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate validate --config FILE [--json] [flags]

Check a configuration without starting the gateway: the config file as
wrap would see it, with the PAYGATE_* variables and any wrap flags given
here on top. Every problem is printed with its path (like
toolPricing.search.creditsPerCall) and, for the file, its line.

Exits 0 when there are no errors (warnings are fine), 1 when there are,
2 when the command line is wrong.

Examples:
  paygate validate --config paygate.json
  paygate validate --config paygate.yaml --json
  PAYGATE_PORT=8080 paygate validate --config paygate.json --price 2

Flags:
  --config FILE   the file to check (or set PAYGATE_CONFIG)
  --json          print {"valid":bool,"diagnostics":[...],"errors":N,"warnings":M}

All flags of 'paygate wrap' are accepted too.
`)
}

// validateReport is the --json output of paygate validate.
type validateReport struct {
	Valid       bool                `json:"valid"`
	Diagnostics []config.Diagnostic `json:"diagnostics"`
	Errors      int                 `json:"errors"`
	Warnings    int                 `json:"warnings"`
}

func runValidate(_ context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		validateHelp(inv.io.Stdout)
		return ExitOK
	}
	asJSON := jsonRequested(args)
	if len(args) == 0 && envValue(inv.env, config.EnvConfig) == "" {
		return inv.usage("validate", errors.New("nothing to check; give a config file: paygate validate --config paygate.json"))
	}
	cfg, diags, err := config.Load(config.LoadOptions{Args: args, Env: inv.env})
	switch {
	case errors.Is(err, config.ErrUsage):
		return inv.usage("validate", err)
	case err != nil:
		diags = []config.Diagnostic{{Level: config.LevelError, Message: err.Error()}}
	}
	name := "configuration"
	if cfg != nil && cfg.Source != "" {
		name = cfg.Source
	}
	errs, warns := config.Count(diags)
	if asJSON {
		if diags == nil {
			diags = []config.Diagnostic{}
		}
		enc := json.NewEncoder(inv.io.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(validateReport{Valid: errs == 0, Diagnostics: diags, Errors: errs, Warnings: warns})
	} else {
		printDiagnostics(inv.io.Stdout, diags, false)
		switch {
		case errs > 0:
			fmt.Fprintf(inv.io.Stdout, "%s: invalid: %s, %s\n", name, plural(errs, "error"), plural(warns, "warning"))
		case warns > 0:
			fmt.Fprintf(inv.io.Stdout, "%s: valid, %s\n", name, plural(warns, "warning"))
		default:
			fmt.Fprintf(inv.io.Stdout, "%s: valid\n", name)
		}
	}
	if errs > 0 {
		return ExitError
	}
	return ExitOK
}

// jsonRequested reports whether args hold --json (or --json=true) before "--".
func jsonRequested(args []string) bool {
	on := false
	for _, a := range args {
		switch {
		case a == "--":
			return on
		case a == "--json" || a == "--json=true":
			on = true
		case a == "--json=false":
			on = false
		}
	}
	return on
}

// stateFile resolves the database a command works on: flag, else
// PAYGATE_STATE_FILE, else the one wrap uses by default; a leading "~/" is
// the home directory.
func stateFile(flag string, env []string) (string, error) {
	getenv := func(k string) string { return envValue(env, k) }
	path := flag
	if path == "" {
		path = getenv("PAYGATE_STATE_FILE")
	}
	if path == "" {
		path = config.DefaultStateFile(getenv)
	}
	if path == "" {
		return "", errors.New("no database: pass --state-file DB")
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok && getenv("HOME") != "" {
		path = filepath.Join(getenv("HOME"), rest)
	}
	return path, nil
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
