package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/store"
)

type adminDoc struct {
	ID        string `json:"id"`
	Hash      string `json:"h"`
	Prefix    string `json:"p,omitempty"`
	Suffix    string `json:"s,omitempty"`
	Name      string `json:"n,omitempty"`
	Role      string `json:"r"`
	CreatedAt int64  `json:"c,omitempty"`
	CreatedBy string `json:"cb,omitempty"`
	Revoked   bool   `json:"rv,omitempty"`
	RevokedAt int64  `json:"ra,omitempty"`
	LastUsed  int64  `json:"lu,omitempty"`
}

func encodeAdmin(k *store.AdminKey) string {
	b, _ := json.Marshal(adminDoc{ID: k.ID, Hash: hexHash(k.Hash), Prefix: k.Prefix, Suffix: k.Suffix, Name: k.Name,
		Role: string(k.Role), CreatedAt: nanos(k.CreatedAt), CreatedBy: k.CreatedBy, Revoked: k.Revoked,
		RevokedAt: nanos(k.RevokedAt), LastUsed: nanos(k.LastUsed)})
	return string(b)
}

func decodeAdmin(s string) (*store.AdminKey, error) {
	var d adminDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, fmt.Errorf("admin key record: %w", err)
	}
	k := &store.AdminKey{ID: d.ID, Prefix: d.Prefix, Suffix: d.Suffix, Name: d.Name, Role: store.AdminRole(d.Role),
		CreatedAt: fromNanos(d.CreatedAt), CreatedBy: d.CreatedBy, Revoked: d.Revoked, RevokedAt: fromNanos(d.RevokedAt),
		LastUsed: fromNanos(d.LastUsed)}
	b, err := hex.DecodeString(d.Hash)
	if err != nil || len(b) != len(k.Hash) {
		return nil, fmt.Errorf("admin key %s: malformed hash", d.ID)
	}
	copy(k.Hash[:], b)
	return k, nil
}

// CreateAdminKey stores an operator credential; the uniqueness checks and
// the write are one script.
func (s *Store) CreateAdminKey(ctx context.Context, k *store.AdminKey) error {
	if err := s.usable(); err != nil {
		return err
	}
	if k.ID == "" || k.Hash == (store.Hash{}) {
		return fmt.Errorf("create admin key: id and hash are required: %w", store.ErrInvalid)
	}
	c := *k
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	res, _, err := s.run(ctx, scCreateAdmin, []string{s.k.admins, s.k.adminIdx}, c.ID, hexHash(c.Hash), encodeAdmin(&c))
	if err != nil {
		return s.unavailable("create admin key "+k.ID, err)
	}
	r, err := toReply(res)
	if err != nil {
		return err
	}
	if r[0] == "EXISTS" {
		return fmt.Errorf("create admin key %s: %w", k.ID, store.ErrAlreadyExists)
	}
	return nil
}

// LookupAdminHash finds an admin key by the hash of its secret.
func (s *Store) LookupAdminHash(ctx context.Context, h store.Hash) (*store.AdminKey, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	res, _, err := s.run(ctx, scLookup, []string{s.k.adminIdx, s.k.admins}, hexHash(h))
	if err != nil {
		return nil, s.unavailable("admin key lookup", err)
	}
	r, err := toReply(res)
	if err != nil {
		return nil, err
	}
	if r[0] != "OK" {
		return nil, store.ErrNotFound
	}
	return decodeAdmin(r[1])
}

// ListAdminKeys returns every admin key, oldest first.
func (s *Store) ListAdminKeys(ctx context.Context) ([]*store.AdminKey, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	all, err := s.rdb.HGetAll(ctx, s.k.admins).Result()
	if err != nil {
		return nil, s.unavailable("list admin keys", err)
	}
	out := make([]*store.AdminKey, 0, len(all))
	for _, v := range all {
		k, err := decodeAdmin(v)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *store.AdminKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// UpdateAdminKey applies fn to a copy of the key and stores the result if
// nobody changed it meanwhile (else fn runs again on the new value).
func (s *Store) UpdateAdminKey(ctx context.Context, id string, fn func(*store.AdminKey) error) (*store.AdminKey, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	for range 100 {
		cur, err := s.rdb.HGet(ctx, s.k.admins, id).Result()
		if errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("update admin key %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return nil, s.unavailable("update admin key "+id, err)
		}
		old, err := decodeAdmin(cur)
		if err != nil {
			return nil, err
		}
		k := *old
		if err := fn(&k); err != nil {
			return nil, err
		}
		if k.ID != old.ID || k.Hash != old.Hash {
			return nil, fmt.Errorf("update admin key %s: id and hash cannot change: %w", id, store.ErrConflict)
		}
		if old.Revoked && !k.Revoked {
			return nil, fmt.Errorf("update admin key %s: revocation is permanent: %w", id, store.ErrConflict)
		}
		if k.Revoked && k.RevokedAt.IsZero() {
			k.RevokedAt = s.now()
		}
		res, _, err := s.run(ctx, scSetAdmin, []string{s.k.admins}, id, cur, encodeAdmin(&k))
		if err != nil {
			return nil, s.unavailable("update admin key "+id, err)
		}
		r, err := toReply(res)
		if err != nil {
			return nil, err
		}
		switch r[0] {
		case "OK":
			return &k, nil
		case "NOTFOUND":
			return nil, fmt.Errorf("update admin key %s: %w", id, store.ErrNotFound)
		}
	}
	return nil, fmt.Errorf("update admin key %s: too many concurrent changes: %w", id, store.ErrConflict)
}

// GetSetting returns a named document. ErrNotFound if unset.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	v, err := s.rdb.HGet(ctx, s.k.settings, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("setting %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.unavailable("get setting "+name, err)
	}
	return v, nil
}

// PutSetting stores a named document.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.k.settings, name, value).Err(); err != nil {
		return s.unavailable("put setting "+name, err)
	}
	return nil
}
