package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/ratelimit/redislimit"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/redisstore"
	"github.com/paygate/paygate/internal/store/sqlite"
)

// newLimiter returns the rate limiter for the store: on Redis the windows
// are shared by every instance of the fleet (failing open or closed per
// redisFailOpen), else they are local to this process.
func (a *App) newLimiter() ratelimit.Limiter {
	if rs, ok := a.store.(*redisstore.Store); ok {
		failOpen := a.cfg.RedisFailOpen == nil || *a.cfg.RedisFailOpen
		return redislimit.New(rs.Client(), redislimit.Options{Prefix: rs.Prefix(), FailOpen: failOpen, Logger: a.log})
	}
	return ratelimit.NewLocal(ratelimit.Options{})
}

// openStore opens the embedded store the config names.
func (a *App) openStore(ctx context.Context) (store.Store, string, error) {
	cfg := a.cfg
	if cfg.DryRun { // a dry run touches neither the state file nor Redis
		st, err := sqlite.Open(ctx, sqlite.Options{InMemory: true, Logger: a.log})
		return st, "not opened (dry run)", err
	}
	if cfg.RedisURL != "" {
		st, err := redisstore.Open(ctx, redisstore.Options{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Logger: a.log})
		if err != nil {
			return nil, "", err
		}
		return st, st.Describe(), nil
	}
	if cfg.InMemory {
		st, err := sqlite.Open(ctx, sqlite.Options{InMemory: true, Logger: a.log})
		return st, "in memory (nothing survives a restart)", err
	}
	path := cfg.StateFile
	if path == "" {
		path = config.DefaultStateFile(os.Getenv)
	}
	if strings.HasSuffix(strings.ToLower(path), ".json") {
		return nil, "", fmt.Errorf("state file %s looks like a paygate-mcp JSON state file; paygate keeps its state in SQLite. Migrate it with `paygate import-state %s --state-file state.db`, then start with --state-file state.db", path, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("create state directory: %w", err)
	}
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, Sync: cfg.Sync, Logger: a.log})
	if err != nil {
		return nil, "", err
	}
	return st, fmt.Sprintf("%s (SQLite, sync=%s)", path, orDefault(cfg.Sync, "full")), nil
}

// bootstrapAdmin makes sure an operator can reach the admin API. With
// --admin-key the key is registered (hashed) as a super_admin; without it a
// new key is generated and returned for the banner only when the store has
// no active super_admin yet (a key already stored cannot be shown again:
// only its hash is kept).
func (a *App) bootstrapAdmin(ctx context.Context) (shown string, note string, err error) {
	now := time.Now()
	if secret := a.cfg.AdminKey; secret != "" {
		h := keys.Hash(secret)
		if k, err := a.store.LookupAdminHash(ctx, h); err == nil {
			if k.Revoked {
				return "", "", errors.New("the --admin-key given was revoked; pass another or omit it to generate one")
			}
			return "", "from --admin-key / PAYGATE_ADMIN_KEY", nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", "", err
		}
		id, err := keys.NewAdminID(nil)
		if err != nil {
			return "", "", err
		}
		prefix, suffix := keys.Parts(secret)
		err = a.store.CreateAdminKey(ctx, &store.AdminKey{ID: id, Hash: h, Prefix: prefix, Suffix: suffix, Name: "bootstrap (--admin-key)", Role: store.RoleSuperAdmin, CreatedAt: now, CreatedBy: "cli"})
		if errors.Is(err, store.ErrAlreadyExists) {
			err = nil // another instance of the fleet registered the same key a moment ago
		}
		return "", "from --admin-key / PAYGATE_ADMIN_KEY", err
	}
	list, err := a.store.ListAdminKeys(ctx)
	if err != nil {
		return "", "", err
	}
	for _, k := range list {
		if !k.Revoked && k.Role == store.RoleSuperAdmin {
			return "", "stored (hashed) from an earlier run; pass --admin-key to use a known one", nil
		}
	}
	s, err := keys.GenerateAdmin(nil)
	if err != nil {
		return "", "", err
	}
	id, err := keys.NewAdminID(nil)
	if err != nil {
		return "", "", err
	}
	err = a.store.CreateAdminKey(ctx, &store.AdminKey{ID: id, Hash: s.Hash, Prefix: s.Prefix, Suffix: s.Suffix, Name: "bootstrap", Role: store.RoleSuperAdmin, CreatedAt: now, CreatedBy: "cli"})
	return s.Plain, "generated; shown once, stored hashed: save it now", err
}

// importKeys registers --import-key / importKeys secrets that are not in
// the store yet. The plaintext is hashed on the way in.
func (a *App) importKeys(ctx context.Context) (int, error) {
	n := 0
	for secret, amount := range a.cfg.ImportKeys {
		if err := keys.ValidImport(secret); err != nil {
			return n, fmt.Errorf("import key %s: %w", keys.Mask(secret), err)
		}
		h := keys.Hash(secret)
		if _, err := a.store.LookupHash(ctx, h); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		id, err := keys.NewID(nil)
		if err != nil {
			return n, err
		}
		prefix, suffix := keys.Parts(secret)
		k := &store.Key{ID: id, Hash: h, Prefix: prefix, Suffix: suffix, Name: "imported", Namespace: "default", CreatedAt: time.Now()}
		if _, _, err := a.store.CreateKey(ctx, k, credits.Credits(amount), store.Meta{Actor: "cli", Note: "--import-key"}); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return n, fmt.Errorf("import key %s: %w", keys.Mask(secret), err)
		}
		n++
	}
	return n, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
