// Package keys owns the format of paygate's credentials: API key secrets
// ("pg_" + 48 lower-case hex digits), admin key secrets ("ak_" + 48 hex),
// key ids ("key_" + 16 hex), how secrets are hashed at rest (SHA-256; the
// plaintext is shown once and never stored) and how they are masked in
// listings and logs.
//
// Randomness comes from an io.Reader so tests can pass a fixed stream; a nil
// reader means crypto/rand.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/paygate/paygate/internal/store"
)

// Secret formats.
const (
	APIKeyPrefix   = "pg_"  // API keys presented by agents
	AdminKeyPrefix = "ak_"  // admin keys presented by operators
	IDPrefix       = "key_" // stable key ids
	AdminIDPrefix  = "adm_" // stable admin key ids

	secretBytes = 24 // 48 hex digits, 192 bits
	idBytes     = 8  // 16 hex digits

	// SecretLen is the length of a generated secret.
	SecretLen = len(APIKeyPrefix) + 2*secretBytes
)

// Mask geometry: a mask shows the first MaskPrefixLen and the last
// MaskSuffixLen characters of a secret, and only for secrets of at least
// MaskMinLen characters. Shorter (imported) secrets show only their scheme
// prefix: revealing 11 characters of a 16-character secret would leave too
// little of it secret.
const (
	MaskPrefixLen = 7
	MaskSuffixLen = 4
	MaskMinLen    = 24
)

// Bounds for imported plaintext keys (paygate-mcp's --import-key and
// importKeys): long enough not to be guessable, short enough to bound the
// work a hostile import can cause.
const (
	MinImportLen = 16
	MaxImportLen = 256
)

// ErrInvalidSecret is returned (wrapped, with the reason) by ValidImport.
var ErrInvalidSecret = errors.New("invalid key secret")

// Secret is a freshly generated credential. Plain is shown to the operator
// once; only Hash, Prefix and Suffix are stored. String and LogValue return
// the mask, so printing or logging a Secret never leaks it.
type Secret struct {
	Plain  string
	Hash   store.Hash
	Prefix string // first characters, for masks (see Parts)
	Suffix string // last characters, for masks (see Parts)
}

// String returns the masked secret.
func (s Secret) String() string { return s.Prefix + "..." + s.Suffix }

// GoString returns the masked secret, so %#v does not leak it either.
func (s Secret) GoString() string { return "keys.Secret{" + s.String() + "}" }

// LogValue implements slog.LogValuer with the masked secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Generate returns a new API key secret: "pg_" + 48 lower-case hex digits
// read from r (nil: crypto/rand).
func Generate(r io.Reader) (Secret, error) { return generate(r, APIKeyPrefix) }

// GenerateAdmin returns a new admin key secret: "ak_" + 48 hex digits.
func GenerateAdmin(r io.Reader) (Secret, error) { return generate(r, AdminKeyPrefix) }

func generate(r io.Reader, prefix string) (Secret, error) {
	var raw [secretBytes]byte
	if err := readRandom(r, raw[:]); err != nil {
		return Secret{}, fmt.Errorf("generate %s secret: %w", prefix, err)
	}
	plain := prefix + hex.EncodeToString(raw[:])
	p, s := Parts(plain)
	return Secret{Plain: plain, Hash: Hash(plain), Prefix: p, Suffix: s}, nil
}

// NewID returns a new key id: "key_" + 16 hex digits read from r (nil:
// crypto/rand).
func NewID(r io.Reader) (string, error) { return newID(r, IDPrefix) }

// NewAdminID returns a new admin key id: "adm_" + 16 hex digits.
func NewAdminID(r io.Reader) (string, error) { return newID(r, AdminIDPrefix) }

func newID(r io.Reader, prefix string) (string, error) {
	var raw [idBytes]byte
	if err := readRandom(r, raw[:]); err != nil {
		return "", fmt.Errorf("generate %s id: %w", prefix, err)
	}
	return prefix + hex.EncodeToString(raw[:]), nil
}

func readRandom(r io.Reader, b []byte) error {
	if r == nil {
		r = rand.Reader
	}
	_, err := io.ReadFull(r, b)
	return err
}

// Hash returns the SHA-256 of a secret, the only form stored. It runs on
// every gated call, so secrets up to 128 bytes are hashed from a stack
// buffer without allocating.
func Hash(secret string) store.Hash {
	if len(secret) <= 128 {
		var buf [128]byte
		return sha256.Sum256(append(buf[:0], secret...))
	}
	return sha256.Sum256([]byte(secret))
}

// Equal compares two hashes in constant time.
func Equal(a, b store.Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// Parts returns the characters of a secret a mask may show: the first 7
// and last 4 when the secret has at least MaskMinLen characters, otherwise
// only its scheme prefix (up to 3 characters) and nothing of its end.
func Parts(secret string) (prefix, suffix string) {
	if len(secret) >= MaskMinLen {
		return secret[:MaskPrefixLen], secret[len(secret)-MaskSuffixLen:]
	}
	n := min(len(APIKeyPrefix), len(secret)/4)
	return secret[:n], ""
}

// Mask returns the form of a secret shown in listings and logs: first 7 +
// "..." + last 4 (see Parts for short secrets). It is the same string as
// store.Key.Mask for the key the secret belongs to.
func Mask(secret string) string {
	p, s := Parts(secret)
	return p + "..." + s
}

// ValidImport reports whether secret may be imported as an API key: it
// must start with "pg_", be MinImportLen to MaxImportLen characters long and
// hold printable ASCII only (no spaces or control characters). The error
// wraps ErrInvalidSecret and never contains the secret.
func ValidImport(secret string) error {
	switch {
	case len(secret) < len(APIKeyPrefix) || secret[:len(APIKeyPrefix)] != APIKeyPrefix:
		return fmt.Errorf("%w: must start with %q", ErrInvalidSecret, APIKeyPrefix)
	case len(secret) < MinImportLen:
		return fmt.Errorf("%w: must be at least %d characters", ErrInvalidSecret, MinImportLen)
	case len(secret) > MaxImportLen:
		return fmt.Errorf("%w: must be at most %d characters", ErrInvalidSecret, MaxImportLen)
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: character %d is not printable ASCII", ErrInvalidSecret, i)
		}
	}
	return nil
}
