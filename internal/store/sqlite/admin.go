package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/paygate/paygate/internal/store"
)

const adminColumns = `id, hash, prefix, suffix, name, role, created_at, created_by, revoked, revoked_at, last_used`

func scanAdmin(sc scanner) (*store.AdminKey, error) {
	var (
		k                            store.AdminKey
		hash                         []byte
		role                         string
		created, revokedAt, lastUsed int64
	)
	if err := sc.Scan(&k.ID, &hash, &k.Prefix, &k.Suffix, &k.Name, &role, &created, &k.CreatedBy, &k.Revoked, &revokedAt, &lastUsed); err != nil {
		return nil, err
	}
	if len(hash) != len(k.Hash) {
		return nil, fmt.Errorf("admin key %s: hash has %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	k.Role = store.AdminRole(role)
	k.CreatedAt, k.RevokedAt, k.LastUsed = fromNanos(created), fromNanos(revokedAt), fromNanos(lastUsed)
	return &k, nil
}

func adminArgs(k *store.AdminKey) []any {
	return []any{k.ID, k.Hash[:], k.Prefix, k.Suffix, k.Name, string(k.Role), nanos(k.CreatedAt), k.CreatedBy,
		k.Revoked, nanos(k.RevokedAt), nanos(k.LastUsed)}
}

// CreateAdminKey stores an operator credential. The uniqueness check and the
// insert run together on the writer, so they are atomic.
func (s *Store) CreateAdminKey(ctx context.Context, k *store.AdminKey) error {
	if err := s.usable(); err != nil {
		return err
	}
	if k.ID == "" || k.Hash == (store.Hash{}) {
		return errors.New("create admin key: id and hash are required")
	}
	c := *k
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	err := s.w.exec(ctx, func(x *wtx) error {
		var n int
		if err := x.queryRow("SELECT COUNT(*) FROM admin_keys WHERE id = ? OR hash = ?", c.ID, c.Hash[:]).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return refusal{store.ErrAlreadyExists}
		}
		_, err := x.exec("INSERT INTO admin_keys ("+adminColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", adminArgs(&c)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("create admin key %s: %w", k.ID, err)
	}
	return nil
}

// LookupAdminHash finds an admin key by the hash of its secret.
func (s *Store) LookupAdminHash(ctx context.Context, h store.Hash) (*store.AdminKey, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	k, err := scanAdmin(s.rdb.QueryRowContext(ctx, "SELECT "+adminColumns+" FROM admin_keys WHERE hash = ?", h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return k, err
}

// ListAdminKeys returns every admin key, oldest first.
func (s *Store) ListAdminKeys(ctx context.Context) ([]*store.AdminKey, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	return readAdminKeys(ctx, s.rdb)
}

// UpdateAdminKey applies fn to a copy of the key. The read, fn and the
// write run on the writer, so concurrent updates cannot interleave.
func (s *Store) UpdateAdminKey(ctx context.Context, id string, fn func(*store.AdminKey) error) (*store.AdminKey, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	var out *store.AdminKey
	err := s.w.exec(ctx, func(x *wtx) error {
		old, err := scanAdmin(x.queryRow("SELECT "+adminColumns+" FROM admin_keys WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return refusal{store.ErrNotFound}
		}
		if err != nil {
			return err
		}
		k := *old
		if err := fn(&k); err != nil {
			return refusal{err}
		}
		if k.ID != old.ID || k.Hash != old.Hash {
			return refusal{fmt.Errorf("id and hash cannot change: %w", store.ErrConflict)}
		}
		if old.Revoked && !k.Revoked {
			return refusal{fmt.Errorf("revocation is permanent: %w", store.ErrConflict)}
		}
		if k.Revoked && k.RevokedAt.IsZero() {
			k.RevokedAt = s.now()
		}
		if _, err := x.exec(`UPDATE admin_keys SET prefix = ?, suffix = ?, name = ?, role = ?, created_at = ?, created_by = ?,
			revoked = ?, revoked_at = ?, last_used = ? WHERE id = ?`, k.Prefix, k.Suffix, k.Name, string(k.Role),
			nanos(k.CreatedAt), k.CreatedBy, k.Revoked, nanos(k.RevokedAt), nanos(k.LastUsed), k.ID); err != nil {
			return err
		}
		out = &k
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update admin key %s: %w", id, err)
	}
	return out, nil
}

// GetSetting returns a named document. ErrNotFound if unset.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	var v []byte
	err := s.rdb.QueryRowContext(ctx, "SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("setting %q: %w", name, store.ErrNotFound)
	}
	return v, err
}

// PutSetting stores a named document, durably before it returns.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	if err := s.usable(); err != nil {
		return err
	}
	v := append([]byte{}, value...) // non-nil: NOT NULL column
	now := s.now().UnixNano()
	err := s.w.exec(ctx, func(x *wtx) error {
		_, err := x.exec(`INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, v, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("put setting %q: %w", name, err)
	}
	return nil
}
