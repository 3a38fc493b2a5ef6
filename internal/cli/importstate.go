package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/importstate"
	"github.com/paygate/paygate/internal/store/sqlite"
)

func importStateHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate import-state FILE [--state-file DB] [--json]

Import a paygate-mcp state file (the JSON its --state-file option writes)
into a paygate state database, so agents keep their keys and credits.

Each key's secret is hashed on the way in; paygate never stores it in
plain text. Its credits become one grant in the ledger; spent and call
totals, last use and the current quota counters carry over; keys that
were inactive are imported revoked. Entries that cannot be imported
faithfully (fractional or negative amounts, a malformed IP allowlist, a
key or alias already taken) are skipped and listed with their reason;
everything else is imported. Running the import again skips the keys
already there, so a fixed file can be imported again.

The gateway must not be running on DB: stop it first (the import refuses
a database another paygate process holds).

Exits 0 when the file was imported (skipped entries are reported, not
fatal), 1 when it could not be read or the database failed, 2 when the
command line is wrong.

Examples:
  paygate import-state paygate-state.json --state-file state.db
  paygate import-state paygate-state.json --state-file state.db --json
  paygate wrap --state-file state.db --server "node server.js"

Flags:
  --state-file DB   the paygate database to import into (or set
                    PAYGATE_STATE_FILE; default: the one wrap uses,
                    $XDG_DATA_HOME/paygate/state.db or ~/.local/share/paygate/state.db)
  --json            print the report as JSON
`)
}

// importArgs is the parsed command line of import-state.
type importArgs struct {
	source, stateFile string
	asJSON            bool
}

func parseImportArgs(args, env []string) (importArgs, error) {
	var a importArgs
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--json" || arg == "--json=true":
			a.asJSON = true
		case arg == "--json=false":
			a.asJSON = false
		case arg == "--state-file":
			if i+1 >= len(args) {
				return a, errors.New("--state-file needs a value")
			}
			i++
			a.stateFile = args[i]
		case strings.HasPrefix(arg, "--state-file="):
			a.stateFile = strings.TrimPrefix(arg, "--state-file=")
		case strings.HasPrefix(arg, "-") && arg != "-":
			return a, fmt.Errorf("unknown flag %s", arg)
		case a.source != "":
			return a, fmt.Errorf("one state file at a time: got %q and %q", a.source, arg)
		default:
			a.source = arg
		}
	}
	if a.source == "" {
		return a, errors.New("give the paygate-mcp state file to import: paygate import-state FILE --state-file DB")
	}
	var err error
	if a.stateFile, err = stateFile(a.stateFile, env); err != nil {
		return a, err
	}
	if strings.EqualFold(filepath.Ext(a.stateFile), ".json") {
		return a, fmt.Errorf("--state-file %s: that looks like a paygate-mcp JSON file; name the paygate database to create, like state.db", a.stateFile)
	}
	return a, nil
}

// importReport is the --json output, and what the text report prints.
type importReport struct {
	Source    string          `json:"source"`
	StateFile string          `json:"stateFile"`
	Entries   int             `json:"entries"`
	Imported  int             `json:"imported"`
	Revoked   int             `json:"revoked"`
	Credits   credits.Credits `json:"credits"`
	Skipped   []importSkip    `json:"skipped"`
	Warnings  []string        `json:"warnings"`
	Error     string          `json:"error,omitempty"`
}

type importSkip struct {
	Index  int    `json:"index"`
	Key    string `json:"key,omitempty"` // masked
	Reason string `json:"reason"`
}

func runImportState(ctx context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		importStateHelp(inv.io.Stdout)
		return ExitOK
	}
	a, err := parseImportArgs(args, inv.env)
	if err != nil {
		return inv.usage("import-state", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(inv.io.Stderr, "paygate import-state: %v\n", err)
		return ExitError
	}
	data, err := os.ReadFile(a.source)
	if err != nil {
		return fail(err)
	}
	// Count the entries first, for progress; Import reads the file again.
	var pairs []json.RawMessage
	if err := json.Unmarshal(data, &pairs); err != nil {
		return fail(fmt.Errorf("%s is not a paygate-mcp state file (a JSON array of [key, record] pairs): %w", a.source, err))
	}
	if err := os.MkdirAll(filepath.Dir(a.stateFile), 0o700); err != nil {
		return fail(fmt.Errorf("create the database directory: %w", err))
	}
	// SyncNormal: each key is committed without its own fsync, which would
	// make a large file take minutes. Close checkpoints the WAL into the
	// database with an fsync, so the import is durable when the command
	// succeeds; if the machine dies before that, running it again imports
	// what is missing.
	st, err := sqlite.Open(ctx, sqlite.Options{Path: a.stateFile, Sync: sqlite.SyncNormal})
	if err != nil {
		// A running gateway holds the database's lock; the error names its pid.
		return fail(err)
	}
	prog := &progressStore{Store: st, imp: st, w: inv.io.Stderr, total: len(pairs), every: progressEvery(len(pairs))}
	rep, ierr := importstate.Import(ctx, prog, bytes.NewReader(data), time.Now())
	if cerr := st.Close(); ierr == nil && cerr != nil {
		ierr = fmt.Errorf("close %s: %w", a.stateFile, cerr)
	}
	out := reportOf(a, rep, ierr)
	if a.asJSON {
		enc := json.NewEncoder(inv.io.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		printImportReport(inv.io.Stdout, out)
	}
	if ierr != nil {
		return fail(ierr)
	}
	return ExitOK
}

func reportOf(a importArgs, rep importstate.Report, err error) importReport {
	out := importReport{Source: a.source, StateFile: a.stateFile, Entries: rep.Entries, Imported: rep.Imported,
		Revoked: rep.Revoked, Credits: rep.Credits, Skipped: []importSkip{}, Warnings: rep.Warnings}
	for _, s := range rep.Skipped {
		out.Skipped = append(out.Skipped, importSkip{Index: s.Index, Key: s.Mask, Reason: s.Reason})
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

func printImportReport(w io.Writer, r importReport) {
	verb := "Imported"
	if r.Error != "" {
		verb = "Before the error, imported"
	}
	entries := "entries"
	if r.Entries == 1 {
		entries = "entry"
	}
	fmt.Fprintf(w, "%s %d of %d %s from %s into %s", verb, r.Imported, r.Entries, entries, r.Source, r.StateFile)
	if r.Revoked > 0 {
		fmt.Fprintf(w, " (%d revoked: inactive in the file)", r.Revoked)
	}
	fmt.Fprintf(w, "; %s granted.\n", plural(int(r.Credits), "credit"))
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "\nSkipped %d:\n", len(r.Skipped))
		for _, s := range r.Skipped {
			key := s.Key
			if key == "" {
				key = "unreadable"
			}
			fmt.Fprintf(w, "  entry %d (%s): %s\n", s.Index, key, s.Reason)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings %d:\n", len(r.Warnings))
		for _, s := range r.Warnings {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	if r.Error == "" && r.Imported > 0 {
		fmt.Fprintf(w, "\nStart the gateway on it: paygate wrap --state-file %s --server \"...\"\n", r.StateFile)
	}
}

// progressEvery returns how many entries pass between progress lines: none
// for small files, about every 10% (at least 1,000 entries) for large ones.
func progressEvery(total int) int {
	if total < 1000 {
		return 0
	}
	return max(1000, total/10)
}

// progressStore passes everything to the store and prints a progress line
// every `every` entries. Import looks each entry up by hash exactly once
// before creating it, which is what it counts.
type progressStore struct {
	store.Store
	imp   store.KeyImporter // the same store
	w     io.Writer
	total int
	every int
	seen  int
}

// ImportKey keeps the store's opening-balance capability visible through
// the wrapper (importstate finds it by type assertion).
func (p *progressStore) ImportKey(ctx context.Context, k *store.Key, initial credits.Credits, opening store.Account, m store.Meta) (*store.Key, store.Account, error) {
	return p.imp.ImportKey(ctx, k, initial, opening, m)
}

var _ store.KeyImporter = (*progressStore)(nil)

func (p *progressStore) LookupHash(ctx context.Context, h store.Hash) (*store.Key, error) {
	p.seen++
	if p.every > 0 && p.seen%p.every == 0 {
		fmt.Fprintf(p.w, "paygate import-state: %d/%d entries (%d%%)\n", p.seen, p.total, p.seen*100/p.total)
	}
	return p.Store.LookupHash(ctx, h)
}
