package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paygate/paygate/internal/testenv"
)

// paygate runs the real binary and returns its exit code and output.
func paygate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin := testenv.Paygate(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

func TestBinaryVersion(t *testing.T) {
	code, out, stderr := paygate(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"goVersion"`
		Platform  string `json:"platform"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") || v.Platform == "" {
		t.Errorf("version --json = %q (%v)", out, err)
	}
}

func TestBinaryValidate(t *testing.T) {
	for _, tc := range []struct {
		file  string
		code  int
		valid bool
	}{
		{"testdata/valid.json", 0, true},
		{"testdata/invalid.yaml", 1, false},
	} {
		code, out, stderr := paygate(t, "validate", "--config", tc.file, "--json")
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", tc.file, code, tc.code, stderr)
		}
		var rep struct {
			Valid       bool              `json:"valid"`
			Diagnostics []json.RawMessage `json:"diagnostics"`
			Errors      int               `json:"errors"`
			Warnings    int               `json:"warnings"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%s: %v\n%s", tc.file, err, out)
		}
		if rep.Valid != tc.valid || rep.Diagnostics == nil || rep.Errors+rep.Warnings != len(rep.Diagnostics) {
			t.Errorf("%s: report %s", tc.file, out)
		}
	}
}

func TestBinaryUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"wrap", "--bogus"}, []string{"unknown flag --bogus", "paygate wrap --help"}},
		{[]string{"wrap", "--prot", "8080"}, []string{"did you mean --port?"}},
		{nil, []string{"Usage: paygate <command>"}},
	} {
		code, _, stderr := paygate(t, tc.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q lacks %q", tc.args, stderr, w)
			}
		}
	}
}

// TestBinaryCompletions checks that each script parses in its shell and,
// for bash, that it completes commands, flags and flag values.
func TestBinaryCompletions(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		t.Run(sh, func(t *testing.T) {
			code, out, stderr := paygate(t, "completions", sh)
			if code != 0 || out == "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			script := filepath.Join(dir, "paygate."+sh)
			if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			shell, err := exec.LookPath(sh)
			if err != nil {
				if sh == "bash" {
					testenv.Missing(t, "bash")
				}
				t.Skipf("%s is not installed", sh)
			}
			if b, err := exec.Command(shell, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", sh, err, b)
			}
			if sh != "bash" {
				return
			}
			for _, tc := range []struct {
				words string // COMP_WORDS; the last one is being completed
				want  string
			}{
				{"paygate wr", "wrap"},
				{"paygate wrap --sy", "--sync"},
				{"paygate wrap --sync ''", "full normal"},
				{"paygate wrap --remote-transport=s", "streamable sse"},
				{"paygate validate --js", "--json"},
				{"paygate completions ''", "bash zsh fish"},
				{"paygate version ''", "--json --help"},
				{"paygate help im", "import-state"},
			} {
				prog := "source " + script + "\nCOMP_WORDS=(" + tc.words + ")\nCOMP_CWORD=$((${#COMP_WORDS[@]}-1))\n_paygate\necho \"${COMPREPLY[*]}\"\n"
				b, err := exec.Command(shell, "-c", prog).CombinedOutput()
				if err != nil {
					t.Fatalf("%s: %v\n%s", tc.words, err, b)
				}
				if got := strings.TrimSpace(string(b)); got != tc.want {
					t.Errorf("completing %q: got %q, want %q", tc.words, got, tc.want)
				}
			}
		})
	}
}
