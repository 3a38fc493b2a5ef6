package cli

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/sqlite"
)

// seedDB creates a database with two keys that moved money, and closes it.
func seedDB(t *testing.T, path string) map[string]store.Account {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Account{}
	for i, name := range []string{"alpha", "beta"} {
		sec := "pg_cli_backup_test_secret_" + name + "_000000000000"
		k, _, err := st.CreateKey(ctx, &store.Key{ID: "key_000000000000000" + string(rune('1'+i)), Hash: sha256.Sum256([]byte(sec)),
			Prefix: sec[:7], Suffix: sec[len(sec)-4:], Name: name}, 100, store.Meta{Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := st.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: "call-" + name, Items: []store.Item{{Tool: "t", Amount: int64(7 * (i + 1))}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		out[k.ID] = rc.Account
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBackupRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	src, dst, file := filepath.Join(dir, "src.db"), filepath.Join(dir, "sub", "dst.db"), filepath.Join(dir, "b.json")
	want := seedDB(t, src)
	env := []string{"HOME=" + dir}

	r := runMain(t, env, nil, "backup", "--state-file", src, "-o", file)
	if r.code != ExitOK || !strings.Contains(r.stderr, "2 keys, 4 ledger entries") || !strings.Contains(r.stderr, "Checksum sha256:") {
		t.Fatalf("backup: exit %d\n%s", r.code, r.stderr)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	r = runMain(t, env, nil, "backup", "--state-file", src, "-o", file)
	if r.code != ExitError || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second backup without --force: exit %d %s", r.code, r.stderr)
	}
	if r = runMain(t, env, nil, "backup", "--state-file", src, "-o", file, "--force", "--include-audit"); r.code != ExitOK {
		t.Fatalf("--force: %s", r.stderr)
	}

	r = runMain(t, env, nil, "restore", "--state-file", dst, "--mode", "full", "--dry-run", file)
	if r.code != ExitOK || !strings.Contains(r.stdout, "Dry run") {
		t.Fatalf("dry run: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = runMain(t, env, nil, "restore", "--state-file", dst, "--mode", "full", file)
	if r.code != ExitOK || !strings.Contains(r.stdout, "keys 2 added") || !strings.Contains(r.stdout, "verified") {
		t.Fatalf("restore: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: dst})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, a := range want {
		_, got, err := st.GetKey(context.Background(), id)
		if err != nil || got.Balance != a.Balance || got.Spent != a.Spent {
			t.Fatalf("key %s: %+v, want %+v (%v)", id, got, a, err)
		}
	}
	evs, _ := st.Audit(context.Background(), store.AuditFilter{Types: []string{"backup.restored"}})
	if len(evs) != 1 || evs[0].Actor != "cli" {
		t.Fatalf("audit %+v", evs)
	}

	// While a gateway holds the database, both commands refuse it.
	r = runMain(t, env, nil, "backup", "--state-file", dst)
	if r.code != ExitError || !strings.Contains(r.stderr, "is in use by a running paygate (pid ") || !strings.Contains(r.stderr, "GET /admin/backup") {
		t.Fatalf("backup of a held database: exit %d %s", r.code, r.stderr)
	}
	r = runMain(t, env, nil, "restore", "--state-file", dst, "--mode", "merge", file)
	if r.code != ExitError || !strings.Contains(r.stderr, "stop the gateway first") {
		t.Fatalf("restore into a held database: exit %d %s", r.code, r.stderr)
	}
}

func TestRestoreCommandRefusals(t *testing.T) {
	dir := t.TempDir()
	src, file := filepath.Join(dir, "src.db"), filepath.Join(dir, "b.json")
	seedDB(t, src)
	env := []string{"HOME=" + dir}
	if r := runMain(t, env, nil, "backup", "--state-file", src, "-o", file); r.code != ExitOK {
		t.Fatal(r.stderr)
	}
	b, _ := os.ReadFile(file)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(string(b), `"balance":93`, `"balance":930`, 1)), 0o600)
	dst := filepath.Join(dir, "dst.db")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"corrupted", []string{"restore", "--state-file", dst, "--mode", "full", bad}, ExitError, "checksum mismatch"},
		{"no mode", []string{"restore", "--state-file", dst, file}, ExitUsage, "--mode is required"},
		{"bad mode", []string{"restore", "--state-file", dst, "--mode", "all", file}, ExitUsage, `--mode "all"`},
		{"no file", []string{"restore", "--state-file", dst, "--mode", "full"}, ExitUsage, "give the backup file"},
		{"missing file", []string{"restore", "--state-file", dst, "--mode", "full", filepath.Join(dir, "nope.json")}, ExitError, "no such file"},
		{"backup of nothing", []string{"backup", "--state-file", filepath.Join(dir, "nope.db")}, ExitError, "no database at"},
		{"unknown flag", []string{"backup", "--mode", "full"}, ExitUsage, "unknown flag --mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runMain(t, env, nil, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("a refused restore created the database")
	}
}
