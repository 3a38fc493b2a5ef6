package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("30s",
// "5m", "1h30m") in config files, flags and the environment.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration without zero units: "30m", "1h30m".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return strconv.AppendQuote(nil, d.String()), nil }

// ParseDuration reads a duration with a unit ("30s", "5m"). A bare number
// is refused unless bareUnit is non-zero, in which case it counts bareUnit
// (paygate-mcp's *Ms settings are bare milliseconds).
func ParseDuration(s string, bareUnit time.Duration) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if bareUnit == 0 {
			if n == 0 {
				return 0, nil
			}
			return 0, fmt.Errorf("%q has no unit; write a duration like \"30s\", \"5m\" or \"1h\"", s)
		}
		if n < 0 || n > math.MaxInt64/int64(bareUnit) {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return Duration(time.Duration(n) * bareUnit), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write one like \"30s\", \"5m\" or \"1h\"", s)
	}
	return Duration(d), nil
}

// ByteSize is a size in bytes. Config files and flags may give a number of
// bytes or a string with a unit: "512KB" (1000s), "512KiB" (1024s), "1MB",
// "1MiB", "1GiB"; a single letter ("1M") means the binary unit.
type ByteSize int64

// String formats the size with the largest exact binary unit.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

var errSize = errors.New(`write a size like "1048576", "512KiB" or "1MiB"`)

// ParseByteSize reads a size: a whole number of bytes, optionally followed
// by a unit (B, K, KB, KiB, M, MB, MiB, G, GB, GiB; case-insensitive).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size; %w", s, errSize)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range; %w", s, errSize)
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "k", "kib":
		mult = 1 << 10
	case "mb":
		mult = 1000 * 1000
	case "m", "mib":
		mult = 1 << 20
	case "gb":
		mult = 1000 * 1000 * 1000
	case "g", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%q has an unknown unit; %w", s, errSize)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is out of range; %w", s, errSize)
	}
	return ByteSize(n * mult), nil
}
