package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/store/sqlite"
)

// fixture is paygate-mcp's state file format, shared with the importer's
// own tests: 11 entries, 5 importable.
const fixture = "../store/importstate/testdata/state.json"

func TestParseImportArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     []string
		want    importArgs
		wantErr string
	}{
		{name: "flags", args: []string{"s.json", "--state-file", "/d/x.db", "--json"}, want: importArgs{source: "s.json", stateFile: "/d/x.db", asJSON: true}},
		{name: "equals", args: []string{"--state-file=/d/x.db", "s.json"}, want: importArgs{source: "s.json", stateFile: "/d/x.db"}},
		{name: "env", args: []string{"s.json"}, env: []string{"PAYGATE_STATE_FILE=/e/y.db"}, want: importArgs{source: "s.json", stateFile: "/e/y.db"}},
		{name: "default", args: []string{"s.json"}, env: []string{"HOME=/home/u"}, want: importArgs{source: "s.json", stateFile: "/home/u/.local/share/paygate/state.db"}},
		{name: "xdg", args: []string{"s.json"}, env: []string{"HOME=/home/u", "XDG_DATA_HOME=/xdg"}, want: importArgs{source: "s.json", stateFile: "/xdg/paygate/state.db"}},
		{name: "tilde", args: []string{"s.json", "--state-file", "~/p.db"}, env: []string{"HOME=/home/u"}, want: importArgs{source: "s.json", stateFile: "/home/u/p.db"}},
		{name: "no file", args: []string{"--state-file", "x.db"}, wantErr: "give the paygate-mcp state file"},
		{name: "two files", args: []string{"a.json", "b.json"}, wantErr: "one state file at a time"},
		{name: "unknown flag", args: []string{"a.json", "--force"}, wantErr: "unknown flag --force"},
		{name: "missing value", args: []string{"a.json", "--state-file"}, wantErr: "needs a value"},
		{name: "json target", args: []string{"a.json", "--state-file", "b.JSON"}, wantErr: "looks like a paygate-mcp JSON file"},
		{name: "nowhere", args: []string{"a.json"}, wantErr: "pass --state-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseImportArgs(tc.args, tc.env)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestImportStateUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"import-state"}, ExitUsage, "", "paygate import-state FILE"},
		{[]string{"import-state", "a.json", "b.json"}, ExitUsage, "", "one state file at a time"},
		{[]string{"import-state", "--help"}, ExitOK, "Usage: paygate import-state FILE", ""},
		{[]string{"help", "import-state"}, ExitOK, "Usage: paygate import-state FILE", ""},
		{[]string{"import-state", "testdata/nope.json", "--state-file", filepath.Join(t.TempDir(), "x.db")}, ExitError, "", "no such file"},
		{[]string{"import-state", "testdata/valid.json", "--state-file", filepath.Join(t.TempDir(), "x.db")}, ExitError, "", "is not a paygate-mcp state file"},
	} {
		r := runMain(t, testEnv, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", tc.args, r.code, tc.code, r.stdout, tc.stdout, r.stderr, tc.stderr)
		}
	}
}

func TestImportStateFixture(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "state.db")
	r := runMain(t, testEnv, nil, "import-state", fixture, "--state-file", db, "--json")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep importReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	var skipped []int
	for _, s := range rep.Skipped {
		skipped = append(skipped, s.Index)
		if s.Reason == "" {
			t.Errorf("skip %+v has no reason", s)
		}
	}
	if rep.Entries != 11 || rep.Imported != 5 || rep.Revoked != 1 || rep.Credits != 1952 || rep.StateFile != db ||
		!slices.Equal(skipped, []int{3, 4, 5, 7, 8, 10}) || len(rep.Warnings) == 0 || rep.Error != "" {
		t.Fatalf("report %+v", rep)
	}
	if strings.Contains(r.stdout, "pg_v1formatv1formatv1formatv1formatv1formatv1forma") {
		t.Fatalf("the report shows a secret:\n%s", r.stdout)
	}

	// The store holds the keys, hashed, with their credits.
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.LookupHash(context.Background(), sha256.Sum256([]byte("pg_v1formatv1formatv1formatv1formatv1formatv1forma")))
	if err != nil {
		t.Fatal(err)
	}
	_, acct, _ := st.GetKey(context.Background(), k.ID)
	if acct.Balance != 42 || acct.Spent != 8 || acct.Calls != 8 {
		t.Errorf("imported account %+v", acct)
	}
	if err := st.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}

	// While another process (here: this one) holds the database, the
	// import refuses and changes nothing.
	r = runMain(t, testEnv, nil, "import-state", fixture, "--state-file", db)
	if r.code != ExitError || !strings.Contains(r.stderr, "in use") {
		t.Errorf("import into a held database: exit %d, stderr %q", r.code, r.stderr)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Again, as text: everything is already there.
	r = runMain(t, testEnv, nil, "import-state", fixture, "--state-file", db)
	if r.code != ExitOK {
		t.Fatalf("re-run: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"Imported 0 of 11 entries", "Skipped 11:", "entry 0 (pg_0a1b...6071): already in the store", "entry 10 (unreadable): not a [key, record] pair"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestImportStateProgress: a large file reports progress on stderr, and
// every entry is imported.
func TestImportStateProgress(t *testing.T) {
	const n = 1200
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		sec := fmt.Sprintf("pg_%048x", i)
		fmt.Fprintf(&b, `[%q,{"key":%q,"name":"k%d","credits":%d,"totalSpent":0,"totalCalls":0,"createdAt":"2025-03-01T00:00:00.000Z","lastUsedAt":null,"active":true}]`, sec, sec, i, i%7)
	}
	b.WriteString("]")
	dir := t.TempDir()
	src := filepath.Join(dir, "big.json")
	if err := os.WriteFile(src, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runMain(t, testEnv, nil, "import-state", src, "--state-file", filepath.Join(dir, "state.db"))
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "paygate import-state: 1000/1200 entries (83%)") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	credits := 0
	for i := range n {
		credits += i % 7
	}
	if want := fmt.Sprintf("Imported %d of %d entries from %s into %s; %d credits granted.", n, n, src, filepath.Join(dir, "state.db"), credits); !strings.Contains(r.stdout, want) {
		t.Errorf("stdout %q lacks %q", r.stdout, want)
	}
}
