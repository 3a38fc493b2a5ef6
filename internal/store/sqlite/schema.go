package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] brings the schema from version i to i+1 (PRAGMA
// user_version). Append new steps; never edit a released one.
var migrations = []string{
	// v1
	`
CREATE TABLE keys (
	id             TEXT PRIMARY KEY,
	hash           BLOB NOT NULL UNIQUE,
	prefix         TEXT NOT NULL,
	suffix         TEXT NOT NULL,
	name           TEXT NOT NULL DEFAULT '',
	namespace      TEXT NOT NULL DEFAULT 'default',
	alias          TEXT UNIQUE,               -- NULL when unset
	created_at     INTEGER NOT NULL,          -- unix ns; 0 = zero time
	expires_at     INTEGER NOT NULL DEFAULT 0,
	revoked        INTEGER NOT NULL DEFAULT 0,
	revoked_at     INTEGER NOT NULL DEFAULT 0,
	suspended      INTEGER NOT NULL DEFAULT 0,
	spending_limit INTEGER NOT NULL DEFAULT 0,
	group_id       TEXT NOT NULL DEFAULT '',
	policy         TEXT                       -- JSON of the rarely set fields, NULL when none
);

-- One row per key; always equal to the sum of the key's ledger deltas at
-- every commit. opening_* carry counters imported from another system
-- without fabricating ledger charges.
CREATE TABLE accounts (
	key_id          TEXT PRIMARY KEY,
	balance         INTEGER NOT NULL DEFAULT 0,
	spent           INTEGER NOT NULL DEFAULT 0,
	calls           INTEGER NOT NULL DEFAULT 0,
	last_used_at    INTEGER NOT NULL DEFAULT 0,
	day             INTEGER NOT NULL DEFAULT 0,
	daily_calls     INTEGER NOT NULL DEFAULT 0,
	daily_credits   INTEGER NOT NULL DEFAULT 0,
	month           INTEGER NOT NULL DEFAULT 0,
	monthly_calls   INTEGER NOT NULL DEFAULT 0,
	monthly_credits INTEGER NOT NULL DEFAULT 0,
	opening_spent   INTEGER NOT NULL DEFAULT 0,
	opening_calls   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE ledger (
	seq           INTEGER PRIMARY KEY,  -- assigned by the store, global and increasing
	time          INTEGER NOT NULL,
	key_id        TEXT NOT NULL,
	kind          TEXT NOT NULL,
	delta         INTEGER NOT NULL,
	balance_after INTEGER NOT NULL,
	tool          TEXT NOT NULL DEFAULT '',
	call_id       TEXT NOT NULL DEFAULT '',
	item          INTEGER NOT NULL DEFAULT 0,
	request_id    TEXT NOT NULL DEFAULT '',
	counterparty  TEXT NOT NULL DEFAULT '',
	actor         TEXT NOT NULL DEFAULT '',
	note          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_key ON ledger(key_id, seq);
-- A call id charges and refunds each item at most once, even across restarts.
CREATE UNIQUE INDEX ledger_call ON ledger(call_id, item, kind) WHERE call_id <> '';

-- Usage rows are written for every gate decision, so they are as cheap to
-- insert as the queries allow: the columns the indexes need (by key, by
-- time), and the rest of the record as one compact JSON document (rec),
-- which rare queries by tool or namespace read with json_extract. Retention
-- deletes old rows but always keeps the newest, so the rowid never goes back.
CREATE TABLE usage (
	seq    INTEGER PRIMARY KEY,
	time   INTEGER NOT NULL,
	key_id TEXT NOT NULL DEFAULT '',
	rec    TEXT NOT NULL
);
CREATE INDEX usage_time ON usage(time);
CREATE INDEX usage_key ON usage(key_id, seq);

CREATE TABLE audit (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	time       INTEGER NOT NULL,
	type       TEXT NOT NULL,
	actor      TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	key_mask   TEXT NOT NULL DEFAULT '',
	message    TEXT NOT NULL DEFAULT '',
	metadata   TEXT                       -- JSON object, NULL when empty
);
CREATE INDEX audit_time ON audit(time);
CREATE INDEX audit_type ON audit(type, seq);
CREATE INDEX audit_actor ON audit(actor, seq);

CREATE TABLE admin_keys (
	id         TEXT PRIMARY KEY,
	hash       BLOB NOT NULL UNIQUE,
	prefix     TEXT NOT NULL,
	suffix     TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	revoked    INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0,
	last_used  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE settings (
	name       TEXT PRIMARY KEY,
	value      BLOB NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
}

// SchemaVersion is the schema version this package writes.
const SchemaVersion = 1

// migrate brings db to SchemaVersion, one transaction per step so a crash
// mid-migration leaves the previous version intact.
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema v%d is newer than this binary (v%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to v%d: %w", v+1, err)
		}
		// PRAGMA takes no parameters; v is an int we control.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to v%d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to v%d: %w", v+1, err)
		}
	}
	return nil
}
