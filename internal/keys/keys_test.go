package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// counting is a deterministic "random" stream: 0, 1, 2, ...
type counting struct{ n byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

var (
	apiKeyRE   = regexp.MustCompile(`^pg_[0-9a-f]{48}$`)
	adminKeyRE = regexp.MustCompile(`^ak_[0-9a-f]{48}$`)
	idRE       = regexp.MustCompile(`^key_[0-9a-f]{16}$`)
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		name string
		gen  func() (Secret, error)
		re   *regexp.Regexp
		want string
	}{
		{"api key", func() (Secret, error) { return Generate(&counting{}) }, apiKeyRE,
			"pg_000102030405060708090a0b0c0d0e0f1011121314151617"},
		{"admin key", func() (Secret, error) { return GenerateAdmin(&counting{}) }, adminKeyRE,
			"ak_000102030405060708090a0b0c0d0e0f1011121314151617"},
		{"api key from crypto/rand", func() (Secret, error) { return Generate(nil) }, apiKeyRE, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.gen()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.re.MatchString(s.Plain) {
				t.Fatalf("secret %q does not match %s", s.Plain, tc.re)
			}
			if tc.want != "" && s.Plain != tc.want {
				t.Fatalf("secret = %q, want %q", s.Plain, tc.want)
			}
			if len(s.Plain) != SecretLen {
				t.Fatalf("len = %d, want %d", len(s.Plain), SecretLen)
			}
			if s.Hash != sha256.Sum256([]byte(s.Plain)) {
				t.Fatal("hash is not the SHA-256 of the secret")
			}
			if s.Prefix != s.Plain[:7] || s.Suffix != s.Plain[len(s.Plain)-4:] {
				t.Fatalf("parts = %q, %q", s.Prefix, s.Suffix)
			}
		})
	}
}

func TestGenerateUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[s.Plain] {
			t.Fatalf("duplicate secret after %d", len(seen))
		}
		seen[s.Plain] = true
	}
}

func TestGenerateReaderError(t *testing.T) {
	boom := errors.New("entropy gone")
	tests := []struct {
		name string
		run  func() error
	}{
		{"secret", func() error { _, err := Generate(iotest.ErrReader(boom)); return err }},
		{"admin", func() error { _, err := GenerateAdmin(iotest.ErrReader(boom)); return err }},
		{"id", func() error { _, err := NewID(iotest.ErrReader(boom)); return err }},
		{"short read", func() error { _, err := Generate(bytes.NewReader(make([]byte, 5))); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestNewID(t *testing.T) {
	id, err := NewID(&counting{})
	if err != nil {
		t.Fatal(err)
	}
	if id != "key_0001020304050607" {
		t.Fatalf("id = %q", id)
	}
	id, err = NewID(nil)
	if err != nil || !idRE.MatchString(id) {
		t.Fatalf("id = %q, %v", id, err)
	}
	aid, err := NewAdminID(&counting{})
	if err != nil || aid != "adm_0001020304050607" {
		t.Fatalf("admin id = %q, %v", aid, err)
	}
}

func TestHash(t *testing.T) {
	const s = "pg_abc"
	want, _ := hex.DecodeString(fmt.Sprintf("%x", sha256.Sum256([]byte(s))))
	h := Hash(s)
	if !bytes.Equal(h[:], want) {
		t.Fatal("Hash is not SHA-256")
	}
	if Hash("pg_abd") == h {
		t.Fatal("different secrets hash alike")
	}
}

func TestEqual(t *testing.T) {
	a, b := Hash("pg_a"), Hash("pg_b")
	tests := []struct {
		name string
		x, y [32]byte
		want bool
	}{
		{"same", a, a, true},
		{"different", a, b, false},
		{"last byte differs", a, func() [32]byte { c := a; c[31] ^= 1; return c }(), false},
		{"zero", [32]byte{}, [32]byte{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Equal(tc.x, tc.y); got != tc.want {
				t.Fatalf("Equal = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	tests := []struct {
		name, secret, want string
	}{
		{"generated", "pg_000102030405060708090a0b0c0d0e0f1011121314151617", "pg_0001...1617"},
		{"admin", "ak_ffeeddccbbaa99887766554433221100ffeeddccbbaa9988", "ak_ffee...9988"},
		{"exactly MaskMinLen", "pg_abcdefghijklmnopqrstu", "pg_abcd...rstu"},
		{"just below MaskMinLen", "pg_abcdefghijklmnopqrst", "pg_..."},
		{"short import", "pg_abc123def4567", "pg_..."},
		{"tiny", "pg", "..."},
		{"empty", "", "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Mask(tc.secret); got != tc.want {
				t.Fatalf("Mask(%q) = %q, want %q", tc.secret, got, tc.want)
			}
		})
	}
}

// TestMaskRevealsOnlyDocumentedChars checks, for secrets of every length,
// that the mask is made of the secret's ends only, shows at most the first 7
// and last 4 characters, and never more than a quarter of a short secret.
func TestMaskRevealsOnlyDocumentedChars(t *testing.T) {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for n := 0; n <= 80; n++ {
		secret := "pg_"
		for i := 0; len(secret) < n; i++ {
			secret += string(alphabet[(i*7)%len(alphabet)])
		}
		secret = secret[:min(n, len(secret))]
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			m := Mask(secret)
			p, s, ok := strings.Cut(m, "...")
			if !ok {
				t.Fatalf("mask %q has no ...", m)
			}
			if !strings.HasPrefix(secret, p) || !strings.HasSuffix(secret, s) {
				t.Fatalf("mask %q is not made of the secret's ends", m)
			}
			revealed := len(p) + len(s)
			if revealed > MaskPrefixLen+MaskSuffixLen {
				t.Fatalf("mask %q reveals %d chars", m, revealed)
			}
			if len(secret) < MaskMinLen && revealed > len(secret)/4 {
				t.Fatalf("mask %q reveals %d of %d chars", m, revealed, len(secret))
			}
			if len(m) != revealed+3 {
				t.Fatalf("mask %q holds more than the ends of the secret", m)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s, err := Generate(&counting{})
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("created", "secret", s)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%s":   fmt.Sprintf("%s", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"slog": logBuf.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, s.Plain) || strings.Contains(out, s.Plain[7:47]) {
				t.Fatalf("output leaks the secret: %s", out)
			}
			if !strings.Contains(out, "pg_0001...1617") {
				t.Fatalf("output lacks the mask: %s", out)
			}
		})
	}
}

func TestValidImport(t *testing.T) {
	tests := []struct {
		name, secret string
		wantErr      string
	}{
		{"generated key", "pg_000102030405060708090a0b0c0d0e0f1011121314151617", ""},
		{"minimum length", "pg_" + strings.Repeat("a", MinImportLen-3), ""},
		{"maximum length", "pg_" + strings.Repeat("a", MaxImportLen-3), ""},
		{"punctuation allowed", "pg_abc-DEF_123.xyz~!", ""},
		{"empty", "", `must start with "pg_"`},
		{"wrong prefix", "sk_000102030405060708090a0b", `must start with "pg_"`},
		{"admin prefix", "ak_000102030405060708090a0b", `must start with "pg_"`},
		{"upper-case prefix", "PG_000102030405060708090a0b", `must start with "pg_"`},
		{"too short", "pg_" + strings.Repeat("a", MinImportLen-4), "at least 16"},
		{"too long", "pg_" + strings.Repeat("a", MaxImportLen-2), "at most 256"},
		{"space", "pg_abcdefgh ijklmnop", "character 11"},
		{"tab", "pg_abcdefgh\tijklmnop", "character 11"},
		{"newline at end", "pg_abcdefghijklmnop\n", "character 19"},
		{"DEL", "pg_abcdefghijklmnop\x7f", "character 19"},
		{"non-ASCII", "pg_abcdefghijklmnopé", "character 19"},
		{"NUL", "pg_abcdefgh\x00ijklmnop", "character 11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidImport(tc.secret)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidImport = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidImport = %v, want error containing %q", err, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("error %v does not match ErrInvalidSecret", err)
			}
			if len(tc.secret) > 8 && strings.Contains(err.Error(), tc.secret[3:]) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func FuzzValidImport(f *testing.F) {
	for _, s := range []string{"", "pg_", "pg_000102030405060708090a0b", "pg_ab cd", "ak_0000000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidImport(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 12 {
				t.Fatalf("error leaks input: %v", err)
			}
			return
		}
		if !strings.HasPrefix(s, "pg_") || len(s) < MinImportLen || len(s) > MaxImportLen {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if r <= ' ' || r > '~' {
				t.Fatalf("accepted non-printable %q", s)
			}
		}
		m := Mask(s)
		if strings.Contains(m, s) {
			t.Fatalf("mask %q contains the whole secret", m)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	s, _ := Generate(&counting{})
	b.ReportAllocs()
	for b.Loop() {
		_ = Hash(s.Plain)
	}
}
