package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadOptions says where Load reads settings from.
type LoadOptions struct {
	// Args are the flags of "paygate wrap" (os.Args after "wrap"),
	// including an optional "-- CMD ARGS...".
	Args []string
	// Env is the environment as KEY=VALUE pairs (os.Environ()).
	Env []string
	// ConfigPath, when set, overrides --config and PAYGATE_CONFIG.
	ConfigPath string
	// ReadFile reads the config file; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// ErrUsage matches errors caused by a wrong command line (an unknown flag,
// a missing or malformed flag value). The CLI exits 2 on them.
var ErrUsage = errors.New("usage error")

// UsageError is a command-line mistake. It matches ErrUsage.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrUsage) true.
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// Load builds the configuration from defaults, the config file (--config
// or PAYGATE_CONFIG), PAYGATE_* variables and flags, each overriding the
// one before. Scalars and lists from a higher layer replace lower ones;
// the maps toolPricing, customHeaders, remoteHeaders and importKeys are
// merged entry by entry. A backend chosen by a higher layer (--server,
// --remote-url, "wrap --", PAYGATE_SERVER, PAYGATE_REMOTE_URL) replaces
// every backend of the lower layers.
//
// The diagnostics hold everything found in the file (wrong types, unknown
// and unsupported keys, syntax errors) followed by Validate's. Load
// returns an error only when it cannot build a Config to diagnose: a
// command-line mistake (matching ErrUsage), a bad PAYGATE_* value (the
// message names the variable) or an unreadable config file.
func Load(opts LoadOptions) (*Config, []Diagnostic, error) {
	env := envMap(opts.Env)
	flagItems, cmdline, err := parseArgs(opts.Args)
	if err != nil {
		return nil, nil, err
	}
	envItems, ds := envPatch(env)

	path := opts.ConfigPath
	if path == "" {
		path = cmdline.config
	}
	if path == "" {
		path = env[EnvConfig]
	}
	path = expandHome(path, env)

	cfg := Defaults()
	if path != "" {
		read := opts.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		data, err := read(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read config file (check --config or %s): %w", EnvConfig, err)
		}
		cfg.Source = path
		ds = append(decodeFile(path, data, cfg), ds...)
	}

	if err := apply(cfg, envItems); err != nil {
		return nil, nil, err
	}
	if len(cmdline.argv) > 0 {
		flagItems = append(flagItems, item{backend: true})
	}
	if err := apply(cfg, flagItems); err != nil {
		return nil, nil, err
	}
	if len(cmdline.argv) > 0 {
		cfg.ServerCommand, cfg.ServerArgs, cfg.ServerArgv = "", nil, cmdline.argv
	}
	for _, it := range append(envItems, flagItems...) {
		if it.flag != nil && it.flag.Compat {
			ds = append(ds, Diagnostic{Level: LevelWarning, Path: it.source, Message: fmt.Sprintf("not supported yet (%s), ignored", it.flag.Usage)})
		}
	}

	cfg.StateFile = expandHome(cfg.StateFile, env)
	if cfg.StateFile == "" && !cfg.InMemory && cfg.RedisURL == "" {
		cfg.StateFile = DefaultStateFile(func(k string) string { return env[k] })
	}
	ds = append(ds, cfg.Validate()...)
	o := opts
	cfg.loaded = &o
	return cfg, ds, nil
}

// Reload loads the configuration again the way Load built c: the same
// flags and environment over a fresh read of the config file, or of path
// when it is not empty (a one-time reload from another file; later
// reloads go back to the original). Pass the result to Reloadable.
func (c *Config) Reload(path string) (*Config, []Diagnostic, error) {
	if c.loaded == nil {
		return nil, nil, errors.New("reload: this configuration was not built by Load")
	}
	opts := *c.loaded
	if path != "" {
		opts.ConfigPath = path
	}
	n, ds, err := Load(opts)
	if n != nil {
		n.loaded = c.loaded
	}
	return n, ds, err
}

// DefaultStateFile returns $XDG_DATA_HOME/paygate/state.db, else
// $HOME/.local/share/paygate/state.db, else "" when neither is set.
func DefaultStateFile(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "paygate", "state.db")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "paygate", "state.db")
	}
	return ""
}

// decodeFile parses a config file and applies it to cfg.
func decodeFile(name string, data []byte, cfg *Config) []Diagnostic {
	f := formatOf(name, data)
	root, err := parseFile(f, data)
	if err != nil {
		var se *syntaxError
		line := 0
		if errors.As(err, &se) {
			line = se.line
		}
		return []Diagnostic{{Level: LevelError, Message: err.Error(), Line: line}}
	}
	return decodeInto(root, cfg)
}

// expandHome replaces a leading "~" or "~/" with $HOME.
func expandHome(p string, env map[string]string) string {
	home := env["HOME"]
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// ── layers ───────────────────────────────────────────────────────────────

// item is one setting from the environment or the command line.
type item struct {
	flag    *Flag
	value   string
	source  string // "--port" or "PAYGATE_PORT"
	env     bool
	backend bool
}

// apply sets the items on c. When any item chooses a backend, backends
// from lower layers are dropped first.
func apply(c *Config, items []item) error {
	for _, it := range items {
		if it.backend || (it.flag != nil && it.flag.backend) {
			c.ServerCommand, c.ServerArgs, c.ServerArgv, c.RemoteURL, c.Servers = "", nil, nil, "", nil
			break
		}
	}
	for _, it := range items {
		if it.flag == nil || it.flag.set == nil {
			continue
		}
		if err := it.flag.set(c, it.value); err != nil {
			if it.env {
				return fmt.Errorf("environment variable %s: %w; fix or unset it", it.source, err)
			}
			return usagef("invalid value for %s: %v", it.source, err)
		}
	}
	return nil
}

// envPatch reads the PAYGATE_* variables. An empty variable counts as
// unset. Unknown PAYGATE_* variables that look like a typo of a known one
// get a warning.
func envPatch(env map[string]string) ([]item, []Diagnostic) {
	byEnv := map[string]*Flag{}
	var names []string
	flags := Flags()
	byName := map[string]*Flag{}
	for _, f := range flags {
		byName[f.Name] = f
	}
	for _, e := range EnvVars() {
		byEnv[e.Name] = byName[e.Flag]
		names = append(names, e.Name)
	}
	names = append(names, EnvConfig)
	var items []item
	for _, e := range EnvVars() {
		if v := env[e.Name]; v != "" && e.Name != EnvConfig {
			items = append(items, item{flag: byEnv[e.Name], value: v, source: e.Name, env: true})
		}
	}
	var ds diags
	for k := range env {
		if !strings.HasPrefix(k, "PAYGATE_") || byEnv[k] != nil || k == EnvConfig || runtimeEnv[k] {
			continue
		}
		if s := suggest(k, names); s != "" {
			ds.warnf(k, "unknown environment variable, ignored; did you mean %s?", s)
		}
	}
	slices.SortFunc(ds, func(a, b Diagnostic) int { return strings.Compare(a.Path, b.Path) })
	return items, ds
}

// cmdline is what parseArgs found besides settings.
type cmdline struct {
	config string   // --config
	argv   []string // after "--"
}

// parseArgs reads wrap's flags: "--name value", "--name=value", switches
// ("--shadow", "--shadow=false", and "--shadow true" as paygate-mcp
// allowed), and "-- CMD ARGS..." at the end.
func parseArgs(args []string) ([]item, cmdline, error) {
	flags := Flags()
	byName := make(map[string]*Flag, len(flags))
	names := make([]string, 0, len(flags))
	for _, f := range flags {
		byName[f.Name] = f
		names = append(names, "--"+f.Name)
	}
	var items []item
	var cl cmdline
	server := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			cl.argv = append([]string(nil), args[i+1:]...)
			if len(cl.argv) == 0 {
				return nil, cl, usagef("nothing after --; write the server command there: paygate wrap -- npx -y @modelcontextprotocol/server-everything")
			}
			if server {
				return nil, cl, usagef("--server and -- CMD both name a server; use one of them")
			}
			break
		}
		if !strings.HasPrefix(a, "--") {
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				return nil, cl, unknownFlag(a, names)
			}
			return nil, cl, usagef("unexpected argument %q; put the server command after --, like: paygate wrap -- %s", a, strings.Join(args[i:], " "))
		}
		name, value, hasValue := strings.Cut(a[2:], "=")
		f := byName[name]
		if f == nil {
			return nil, cl, unknownFlag("--"+name, names)
		}
		switch {
		case hasValue:
		case f.IsSwitch():
			value = "true"
			if i+1 < len(args) && (args[i+1] == "true" || args[i+1] == "false") {
				value = args[i+1]
				i++
			}
		case i+1 < len(args):
			value = args[i+1]
			i++
		default:
			return nil, cl, usagef("--%s needs a value: --%s %s", f.Name, f.Name, f.Arg)
		}
		if f.Name == "config" {
			cl.config = value
			continue
		}
		if f.Name == "server" {
			server = true
		}
		items = append(items, item{flag: f, value: value, source: "--" + f.Name})
	}
	return items, cl, nil
}

func unknownFlag(a string, names []string) error {
	flag, _, _ := strings.Cut(a, "=")
	msg := fmt.Sprintf("unknown flag %s", flag)
	if s := suggest(strings.TrimLeft(flag, "-"), names); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return usagef("%s (see paygate wrap --help)", msg)
}
