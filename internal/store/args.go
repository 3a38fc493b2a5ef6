package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// This file holds the argument checks every implementation makes the same
// way before it touches its own state. Their errors name what is wrong and
// keep the credits error they wrap; an implementation whose contract says
// so adds ErrInvalid. The atomic part of each operation stays with the
// implementation.

// NewKeyID returns a new key id: "key_" + 16 random hex digits.
func NewKeyID() string {
	var b [8]byte
	rand.Read(b[:])
	return "key_" + hex.EncodeToString(b[:])
}

// NewKeyFrom returns the copy of in that CreateKey stores: a new id when
// it has none, CreatedAt now when unset and, for a revoked key, RevokedAt
// now when unset. Normalize it next.
func NewKeyFrom(in *Key, now time.Time) *Key {
	k := in.Clone()
	if k.ID == "" {
		k.ID = NewKeyID()
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	if k.Revoked && k.RevokedAt.IsZero() {
		k.RevokedAt = now
	}
	return k
}

// NormalizeKey fills a key's defaults (a lower-case namespace, "default"
// when unset) and checks what every store relies on: a hash, RevokedAt on
// a revoked key, a valid spending limit.
func NormalizeKey(k *Key) error {
	k.Namespace = strings.ToLower(strings.TrimSpace(k.Namespace))
	if k.Namespace == "" {
		k.Namespace = "default"
	}
	if k.Hash == (Hash{}) {
		return errors.New("key hash is empty")
	}
	if k.Revoked && k.RevokedAt.IsZero() {
		return errors.New("revoked key needs RevokedAt")
	}
	if err := credits.Validate(k.SpendingLimit); err != nil {
		return fmt.Errorf("spending limit: %w", err)
	}
	return nil
}

// CheckKeyUpdate refuses what UpdateKey may not change (ErrConflict) and
// stamps RevokedAt, from now, on a key the update revokes.
func CheckKeyUpdate(old, k *Key, now func() time.Time) error {
	switch {
	case k.ID != old.ID:
		return fmt.Errorf("id cannot change: %w", ErrConflict)
	case k.Hash != old.Hash:
		return fmt.Errorf("hash cannot change (use RotateKey): %w", ErrConflict)
	case old.Revoked && !k.Revoked:
		return fmt.Errorf("revocation is permanent: %w", ErrConflict)
	}
	if k.Revoked && !old.Revoked && k.RevokedAt.IsZero() {
		k.RevokedAt = now()
	}
	return nil
}

// ValidateReservation checks r's arguments (items, call id, amounts) and
// returns its total.
func ValidateReservation(r *Reservation) (credits.Credits, error) {
	if len(r.Items) == 0 {
		return 0, fmt.Errorf("reserve call %s: no items", r.CallID)
	}
	if r.CallID == "" {
		return 0, errors.New("reserve: empty call id")
	}
	for _, it := range r.Items {
		if err := credits.Validate(it.Amount); err != nil {
			return 0, fmt.Errorf("reserve call %s: amount for %s: %w", r.CallID, it.Tool, err)
		}
	}
	total, err := r.Total()
	if err != nil {
		return 0, fmt.Errorf("reserve call %s: %w", r.CallID, err)
	}
	return total, nil
}

// ValidateTopUp checks a top-up's kind and amount and returns the kind,
// EntryTopUp when unset. EntryTopUp and EntryGrant take a positive amount;
// EntryAdjustment may be negative, not zero.
func ValidateTopUp(keyID string, amount credits.Credits, kind EntryKind) (EntryKind, error) {
	switch kind {
	case "":
		kind = EntryTopUp
	case EntryTopUp, EntryGrant, EntryAdjustment:
	default:
		return "", fmt.Errorf("top up key %s: kind %q not allowed", keyID, kind)
	}
	mag := amount
	if kind == EntryAdjustment && amount < 0 {
		mag = -amount
	}
	if err := credits.Validate(mag); err != nil || amount == 0 {
		if err == nil {
			err = errors.New("amount must not be zero")
		}
		return "", fmt.Errorf("top up key %s: %w", keyID, err)
	}
	return kind, nil
}

// ValidateTransferAmount checks that a transfer moves a positive amount in
// range. Whether from and to may be the same key is the caller's rule.
func ValidateTransferAmount(from, to string, amount credits.Credits) error {
	if err := credits.Validate(amount); err != nil || amount == 0 {
		if err == nil {
			err = errors.New("amount must be positive")
		}
		return fmt.Errorf("transfer %s -> %s: %w", from, to, err)
	}
	return nil
}
