// Package credits defines the unit of money paygate moves (an integer count
// of credits) and the price rules that turn a tool call into an amount.
// Every arithmetic step is checked: amounts are never negative, never
// fractional, and overflow is an error, never a wrap-around.
package credits

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Credits is an amount of credits. It is an integer; there are no fractions.
type Credits = int64

// Max is the largest amount any balance, price or transfer may hold. It
// leaves head-room so that summing two valid amounts cannot overflow int64.
const Max Credits = 1 << 53 // also the largest integer a JSON number keeps exactly in JS clients

// Errors returned when an amount is refused.
var (
	ErrNegative   = errors.New("must not be negative")
	ErrFractional = errors.New("must be a whole number")
	ErrTooLarge   = fmt.Errorf("must be at most %d", Max)
	ErrNotNumber  = errors.New("must be a number")
)

// Parse reads an amount from JSON number text. It refuses fractions
// (1.5, 1e-1), negatives, values above Max and anything that is not a JSON
// number. "1.0" and "1e3" are accepted because they are whole numbers.
func Parse(raw []byte) (Credits, error) {
	if len(raw) == 0 {
		return 0, ErrNotNumber
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, ErrNotNumber
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return check(n)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			if raw[0] == '-' {
				return 0, ErrNegative
			}
			return 0, ErrTooLarge
		}
		return 0, ErrNotNumber
	}
	if f < 0 {
		return 0, ErrNegative
	}
	if f != math.Trunc(f) {
		return 0, ErrFractional
	}
	if f > float64(Max) {
		return 0, ErrTooLarge
	}
	return Credits(f), nil
}

// ParseJSON reads an amount from a json.RawMessage (see Parse).
func ParseJSON(raw json.RawMessage) (Credits, error) { return Parse(raw) }

func check(n int64) (Credits, error) {
	switch {
	case n < 0:
		return 0, ErrNegative
	case n > Max:
		return 0, ErrTooLarge
	}
	return n, nil
}

// Validate reports whether n is a valid amount.
func Validate(n Credits) error {
	_, err := check(n)
	return err
}

// Add returns a+b, or an error when the sum would exceed Max.
func Add(a, b Credits) (Credits, error) {
	if a < 0 || b < 0 {
		return 0, ErrNegative
	}
	if a > Max-b {
		return 0, ErrTooLarge
	}
	return a + b, nil
}

// Mul returns a*b, or an error when the product would exceed Max.
func Mul(a, b Credits) (Credits, error) {
	if a < 0 || b < 0 {
		return 0, ErrNegative
	}
	if a != 0 && b > Max/a {
		return 0, ErrTooLarge
	}
	return a * b, nil
}

// Amount is a JSON-decodable amount that applies the rules of Parse, so an
// admin request with "credits": 1.5 or -3 is refused at decode time.
type Amount Credits

// UnmarshalJSON implements json.Unmarshaler.
func (a *Amount) UnmarshalJSON(b []byte) error {
	n, err := Parse(b)
	if err != nil {
		return err
	}
	*a = Amount(n)
	return nil
}
