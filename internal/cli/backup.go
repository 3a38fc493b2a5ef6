package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/backup"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/sqlite"
)

func backupHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate backup [--state-file DB] [-o FILE] [--include-audit] [--force]

Write a backup of a stopped gateway's database: every key (with the hash
of its secret; secrets are never stored), its balance and counters, the
whole ledger, admin keys (hashed) and settings, as one versioned JSON
document with a SHA-256 checksum. Restore it with 'paygate restore' or
POST /admin/restore.

The gateway must not be running on DB; for a running gateway use
GET /admin/backup, which takes the same consistent snapshot live.

Exits 0 when the backup was written, 1 when the database could not be
read or the file written, 2 when the command line is wrong.

Examples:
  paygate backup --state-file state.db -o paygate-backup.json
  paygate backup --state-file state.db --include-audit > backup.json

Flags:
  --state-file DB    the database (or set PAYGATE_STATE_FILE; default: the
                     one wrap uses)
  -o, --output FILE  where to write (default: standard output)
  --include-audit    include the audit trail
  --force            replace FILE if it exists
`)
}

func restoreHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: paygate restore [--state-file DB] --mode merge|overwrite|full [--dry-run] FILE

Restore a backup (from 'paygate backup' or GET /admin/backup) into a
stopped gateway's database, creating the database if there is none. The
whole file is verified first: its format and version, its checksum,
every record, and that its ledger reconciles with its balances. Any
problem stops the restore before anything is written.

Modes:
  merge      add the keys, admin keys and settings DB does not have;
             leave the rest alone
  overwrite  merge, and give keys DB already has the backup's settings
             and balances (one adjustment line in the ledger each); a key
             revoked or rotated since the backup stays revoked or rotated
  full       make DB exactly the backup: keys, ledger, admin keys and
             settings (and the audit trail, when the backup has one)

The gateway must not be running on DB; for a running gateway use
POST /admin/restore.

Exits 0 when the backup was restored (or, with --dry-run, would be),
1 when it was refused or the database failed, 2 when the command line is
wrong.

Examples:
  paygate restore --state-file new.db --mode full paygate-backup.json
  paygate restore --state-file state.db --mode merge --dry-run backup.json

Flags:
  --state-file DB   the database (or set PAYGATE_STATE_FILE; default: the
                    one wrap uses)
  --mode MODE       merge, overwrite or full (required)
  --dry-run         verify and report what would change, without writing
`)
}

// stateArgs is what backup and restore parse.
type stateArgs struct {
	stateFile    string
	output       string // backup: "" or "-" is stdout
	includeAudit bool
	force        bool
	mode         string
	dryRun       bool
	file         string // restore: the backup to read ("-" is stdin)
}

func parseStateArgs(cmd string, args, env []string) (stateArgs, error) {
	var a stateArgs
	value := func(i *int, name string) (string, error) {
		arg := args[*i]
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			return v, nil
		}
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value", name)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, _, _ := strings.Cut(arg, "=")
		var err error
		switch {
		case name == "--state-file":
			a.stateFile, err = value(&i, name)
		case cmd == "backup" && (name == "-o" || name == "--output"):
			a.output, err = value(&i, name)
		case cmd == "backup" && arg == "--include-audit":
			a.includeAudit = true
		case cmd == "backup" && arg == "--force":
			a.force = true
		case cmd == "restore" && name == "--mode":
			a.mode, err = value(&i, name)
		case cmd == "restore" && arg == "--dry-run":
			a.dryRun = true
		case strings.HasPrefix(arg, "-") && arg != "-":
			return a, fmt.Errorf("unknown flag %s", arg)
		case cmd == "restore" && a.file == "":
			a.file = arg
		default:
			return a, fmt.Errorf("unexpected argument %q", arg)
		}
		if err != nil {
			return a, err
		}
	}
	var err error
	if a.stateFile, err = stateFile(a.stateFile, env); err != nil {
		return a, err
	}
	if cmd == "restore" {
		switch {
		case a.file == "":
			return a, errors.New("give the backup file to restore: paygate restore --state-file DB --mode full FILE")
		case a.mode == "":
			return a, errors.New("--mode is required: merge (add what is missing), overwrite (also replace existing keys) or full (replace everything)")
		case !store.ValidMode(store.RestoreMode(a.mode)):
			return a, fmt.Errorf("--mode %q: use merge, overwrite or full", a.mode)
		}
	}
	return a, nil
}

// openStopped opens the database of a gateway that is not running, or
// explains why it cannot.
func openStopped(ctx context.Context, path string, mustExist bool) (*sqlite.Store, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && mustExist {
		return nil, fmt.Errorf("no database at %s (give the gateway's --state-file)", path)
	}
	if pid, inUse, err := sqlite.InUse(path); err != nil {
		return nil, err
	} else if inUse {
		who := "a running paygate"
		if pid > 0 {
			who = fmt.Sprintf("a running paygate (pid %d)", pid)
		}
		return nil, fmt.Errorf("%s is in use by %s; stop the gateway first, or use the admin API of the running one (GET /admin/backup, POST /admin/restore)", path, who)
	}
	if !mustExist {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create the database directory: %w", err)
		}
	}
	return sqlite.Open(ctx, sqlite.Options{Path: path})
}

func runBackup(ctx context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		backupHelp(inv.io.Stdout)
		return ExitOK
	}
	a, err := parseStateArgs("backup", args, inv.env)
	if err != nil {
		return inv.usage("backup", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(inv.io.Stderr, "paygate backup: %v\n", err)
		return ExitError
	}
	toStdout := a.output == "" || a.output == "-"
	if !toStdout && !a.force {
		if _, err := os.Stat(a.output); err == nil {
			return fail(fmt.Errorf("%s already exists; pass --force to replace it", a.output))
		}
	}
	st, err := openStopped(ctx, a.stateFile, true)
	if err != nil {
		return fail(err)
	}
	snap, err := st.Snapshot(ctx, store.SnapshotOptions{Audit: a.includeAudit})
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fail(fmt.Errorf("read %s: %w", a.stateFile, err))
	}
	meta := backup.Meta{ServerVersion: Version(), Store: "sqlite"}
	var info *backup.Info
	if toStdout {
		info, err = backup.Encode(inv.io.Stdout, snap, meta)
	} else {
		err = writeFileAtomic(a.output, 0o600, func(w io.Writer) error {
			var werr error
			info, werr = backup.Encode(w, snap, meta)
			return werr
		})
	}
	if err != nil {
		return fail(err)
	}
	dest := "standard output"
	if !toStdout {
		dest = a.output
	}
	fmt.Fprintf(inv.io.Stderr, "Backed up %s to %s: %d keys, %d ledger entries, %d admin keys, %d settings",
		a.stateFile, dest, info.Stats.Keys, info.Stats.LedgerEntries, info.Stats.AdminKeys, info.Stats.Settings)
	if a.includeAudit {
		fmt.Fprintf(inv.io.Stderr, ", %d audit events", info.Stats.AuditEvents)
	}
	fmt.Fprintf(inv.io.Stderr, "\nChecksum %s\n", info.Checksum)
	return ExitOK
}

// writeFileAtomic writes a file through a temporary file in the same
// directory and renames it into place, so a failed write never leaves a
// half-written file under the final name.
func writeFileAtomic(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func runRestore(ctx context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		restoreHelp(inv.io.Stdout)
		return ExitOK
	}
	a, err := parseStateArgs("restore", args, inv.env)
	if err != nil {
		return inv.usage("restore", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(inv.io.Stderr, "paygate restore: %v\n", err)
		return ExitError
	}
	// Verify the whole file before touching the database.
	var in io.Reader = inv.io.Stdin
	if a.file != "-" {
		f, err := os.Open(a.file)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		in = f
	}
	snap, info, err := backup.Decode(in)
	if err != nil {
		return fail(fmt.Errorf("%s: %w; nothing was restored", a.file, err))
	}
	st, err := openStopped(ctx, a.stateFile, false)
	if err != nil {
		return fail(err)
	}
	res, err := st.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreMode(a.mode), DryRun: a.dryRun,
		Meta: store.Meta{Actor: "cli", Note: "paygate restore --mode " + a.mode}})
	if err == nil && !a.dryRun {
		if err = st.Verify(ctx); err != nil {
			err = fmt.Errorf("the restored database does not reconcile: %w", err)
		} else {
			st.AppendAudit(store.AuditEvent{Time: time.Now(), Type: "backup.restored", Actor: "cli",
				Message: "backup restored (" + a.mode + ") with paygate restore",
				Metadata: map[string]any{"mode": a.mode, "checksum": info.Checksum, "keysImported": res.KeysAdded,
					"keysOverwritten": res.KeysOverwritten, "keysSkipped": res.KeysSkipped, "keysRemoved": res.KeysRemoved,
					"ledgerEntries": res.LedgerEntries, "adjustments": res.Adjustments}})
		}
	}
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	verb := "Restored"
	if a.dryRun {
		verb = "Dry run, nothing written; would restore"
	}
	fmt.Fprintf(inv.io.Stdout, "%s %s into %s (mode %s): keys %d added, %d overwritten, %d skipped, %d removed; "+
		"%d ledger entries, %d adjustments; admin keys %d added, %d skipped; %d settings",
		verb, a.file, a.stateFile, a.mode, res.KeysAdded, res.KeysOverwritten, res.KeysSkipped, res.KeysRemoved,
		res.LedgerEntries, res.Adjustments, res.AdminKeysAdded, res.AdminKeysSkipped, res.SettingsRestored)
	if res.AuditRestored > 0 {
		fmt.Fprintf(inv.io.Stdout, "; %d audit events", res.AuditRestored)
	}
	fmt.Fprintf(inv.io.Stdout, ".\nBackup of %s, checksum %s verified.\n", info.CreatedAt.Format(time.RFC3339), info.Checksum)
	for _, w := range res.Warnings {
		fmt.Fprintf(inv.io.Stdout, "warning: %s\n", w)
	}
	return ExitOK
}
