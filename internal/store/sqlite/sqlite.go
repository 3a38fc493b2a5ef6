// Package sqlite is paygate's embedded store: one SQLite file (WAL mode,
// pure-Go driver) owned by a single gateway process.
//
// Keys and accounts are loaded into memory at Open and served from there;
// memory is the source of truth while the store is open and the database
// follows it in order. Money operations apply to memory atomically under a
// per-account lock, queue their ledger lines, and return a Receipt whose
// Wait blocks until the batch holding them is committed: one writer
// goroutine commits batches back to back (group commit), each one
// transaction with its ledger lines and the accounts rows they produce, so
// the accounts table equals the sum of ledger deltas at every commit. If a
// commit fails the store fails closed: every later write returns
// store.ErrUnavailable until it is reopened.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/paygate/paygate/internal/store"
)

var (
	_ store.Store       = (*Store)(nil)
	_ store.KeyImporter = (*Store)(nil)
)

// Sync modes.
const (
	// SyncFull fsyncs the WAL at every group commit: a Wait that returned
	// nil survives power loss.
	SyncFull = "full"
	// SyncNormal writes the WAL at every commit and fsyncs at checkpoints:
	// it survives a process crash, not a power loss.
	SyncNormal = "normal"
)

// Options configure Open.
type Options struct {
	Path     string // database file; "<Path>.lock" guards it
	InMemory bool   // throwaway database: a temporary file removed at Close, no fsync
	Sync     string // SyncFull (default) or SyncNormal
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now

	// FlushInterval bounds how long usage records and audit events wait
	// before they are written (default 50ms). Money operations never wait
	// for it.
	FlushInterval time.Duration
	// MaxBatch caps the lines (ledger entries, records, other writes) one
	// transaction carries (default 4096).
	MaxBatch int
	// RecentCalls is how many call ids are kept in memory to refuse
	// duplicates and serve refunds without SQL (default 65536). Older ones
	// are checked against the ledger's unique index.
	RecentCalls int
	// ReadConns is the size of the read connection pool (default 4).
	ReadConns int
	// NoJournal makes sync=full commit every batch to SQLite with its
	// fsync, without the money journal (journal.go). For comparisons.
	NoJournal bool
}

func (o *Options) defaults() {
	if o.Sync == "" {
		o.Sync = SyncFull
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 4096
	}
	if o.RecentCalls <= 0 {
		o.RecentCalls = 65536
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
}

// Validate reports option errors without touching the disk.
func (o Options) Validate() error {
	switch {
	case o.InMemory && o.Path != "":
		return errors.New("sqlite: set Path or InMemory, not both")
	case !o.InMemory && o.Path == "":
		return errors.New("sqlite: Path is required")
	case strings.ContainsAny(o.Path, "?#"):
		return fmt.Errorf("sqlite: path %q must not contain '?' or '#'", o.Path)
	}
	switch o.Sync {
	case "", SyncFull, SyncNormal:
	default:
		return fmt.Errorf("sqlite: unknown sync mode %q (want %q or %q)", o.Sync, SyncFull, SyncNormal)
	}
	return nil
}

// Store is the SQLite implementation of store.Store.
type Store struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	lock   *os.File
	j      *journal // the money journal (journal.go); nil without one
	tmpDir string   // InMemory: the temporary directory removed at Close
	dsn    string   // the database and the pragmas every connection shares
	wdb    *sql.DB  // the writer's connection, and everything at Open
	rdb    *sql.DB  // queries
	w      *writer
	rq     struct {
		callCharged *sql.Stmt // is a call id in the ledger?
	}

	// mu guards the key indexes and every rec's key configuration. Money
	// operations hold it for reading so a revoke (held for writing) is
	// ordered against every charge.
	mu    sync.RWMutex
	keys  *keyIndex
	locks acctLocks // account locks; taken with mu held for reading

	calls *callWindow

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database, takes the single-writer
// lock, migrates the schema and loads every key and account into memory.
func Open(ctx context.Context, opts Options) (_ *Store, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	s := &Store{
		opts: opts, log: opts.Logger, now: opts.Now,
		calls: newCallWindow(opts.RecentCalls),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	path, sync := opts.Path, "FULL"
	if opts.Sync == SyncNormal {
		sync = "NORMAL"
	}
	if opts.InMemory {
		// A throwaway database in a temporary file, without fsync. SQLite's
		// own ":memory:" databases keep every page in the page cache, and
		// some per-commit work scales with it, so a busy gateway would slow
		// down as its usage log grows; a file keeps the cache bounded and
		// leaves the rest to the OS.
		removeStaleMemoryDirs()
		if s.tmpDir, err = os.MkdirTemp("", memoryDirPrefix); err != nil {
			return nil, err
		}
		path, sync = filepath.Join(s.tmpDir, "state.db"), "OFF"
	}
	if s.lock, err = lockFile(path + ".lock"); err != nil {
		return nil, err
	}
	common := "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(0)"
	s.dsn = path + common
	useJournal := !opts.InMemory && opts.Sync == SyncFull && !opts.NoJournal
	if useJournal {
		sync = "NORMAL" // the journal makes money durable; syncSQLite the rest
	}
	if s.wdb, err = sql.Open("sqlite", path+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_txlock=immediate"); err != nil {
		return nil, err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err = s.wdb.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", s.name(), err)
	}
	// Readers serve admin queries only: a small page cache each (2 MiB)
	// keeps idle memory down; the writer keeps the default.
	if s.rdb, err = sql.Open("sqlite", path+common+"&_pragma=query_only(1)&_pragma=cache_size(-2048)"); err != nil {
		return nil, err
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	if err = migrate(ctx, s.wdb); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", s.name(), err)
	}
	if useJournal {
		if s.j, err = s.openJournal(true); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", s.name(), err)
		}
	} else if !opts.InMemory {
		// A journal left by a run with sync=full may hold acknowledged
		// lines: they are replayed whatever this run's mode.
		if err = s.dropJournal(); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", s.name(), err)
		}
	}
	lastSeq, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if s.rq.callCharged, err = s.rdb.PrepareContext(ctx, qCallCharged); err != nil {
		return nil, err
	}
	if s.w, err = newWriter(ctx, s.wdb, lastSeq, opts.FlushInterval, opts.MaxBatch, s.log, s.j, path); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", s.name(), err)
	}
	return s, nil
}

// load reads the keys, accounts and recent calls into memory, and returns
// the ledger's last seq, through a scan connection.
func (s *Store) load(ctx context.Context) (lastSeq int64, err error) {
	// Memory-mapped reads: on a cold page cache the kernel then reads
	// around each page the scan faults in instead of one pread per page
	// (-0.25 s of a 1.1 s start with 100,000 keys here). Only here: an I/O
	// error on a mapping is a signal, not an error, which at Open fails
	// the start either way.
	err = s.scan(ctx, "&_pragma=mmap_size(1073741824)", func(db *sql.DB) error {
		if err := s.loadKeys(ctx, db); err != nil {
			return fmt.Errorf("sqlite: %s: load keys: %w", s.name(), err)
		}
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM ledger").Scan(&lastSeq); err != nil {
			return fmt.Errorf("sqlite: %s: %w", s.name(), err)
		}
		if err := s.loadCalls(ctx, db); err != nil {
			return fmt.Errorf("sqlite: %s: load recent calls: %w", s.name(), err)
		}
		return nil
	})
	return lastSeq, err
}

// scan runs fn on a connection of its own, read-only, with a small page
// cache and the extra pragmas ("&_pragma=…"), closed afterwards. It serves
// the scans that read many pages once (loading every key at Open, finding
// a retention cutoff): through the writer's or a reader's connection they
// would leave its cache full of pages nobody needs again, and SQLite's
// allocator keeps that memory (measured: the writer's 2 MiB cache held
// about 3 MB more RSS than a 100 KiB one).
func (s *Store) scan(ctx context.Context, pragmas string, fn func(*sql.DB) error) error {
	db, err := sql.Open("sqlite", s.dsn+"&_pragma=query_only(1)&_pragma=cache_size(-64)"+pragmas)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := fn(db); err != nil {
		return err
	}
	return db.Close()
}

func (s *Store) name() string {
	if s.opts.InMemory {
		return ":memory:"
	}
	return s.opts.Path
}

// Ping reports whether the store can take writes now.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return err
	}
	return ctx.Err()
}

// usable returns ErrClosed, the failure that put the store in its failed
// state, or nil.
func (s *Store) usable() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if p := s.w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Close commits everything queued (usage and audit records included) and
// releases the database and the lock. Safe to call more than once and after
// a failed Open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.w != nil {
			s.w.close()
		}
		if s.rq.callCharged != nil {
			s.rq.callCharged.Close()
		}
		var errs []error
		if s.rdb != nil && s.rdb != s.wdb {
			errs = append(errs, s.rdb.Close())
		}
		if s.wdb != nil {
			if !s.opts.InMemory {
				// Fold the WAL into the database so the next Open starts clean.
				if _, err := s.wdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					s.log.Warn("sqlite: checkpoint at close", "err", err)
				}
			}
			errs = append(errs, s.wdb.Close())
		}
		if s.j != nil {
			errs = append(errs, s.j.close())
		}
		if s.lock != nil {
			errs = append(errs, unlockFile(s.lock))
		}
		if s.tmpDir != "" {
			errs = append(errs, os.RemoveAll(s.tmpDir))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// sync waits until everything queued before it, usage and audit records
// included, is committed, so queries read their own writes.
func (s *Store) sync(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	err := s.w.barrier().wait(ctx)
	if errors.Is(err, store.ErrUnavailable) {
		return nil // reads still serve what was committed
	}
	return err
}

// memoryDirPrefix names the temporary directories of --in-memory stores.
const memoryDirPrefix = "paygate-memory-"

// removeStaleMemoryDirs deletes the temporary directories that --in-memory
// stores of killed processes left behind (Close removes its own; SIGKILL
// gives it no chance). A directory is stale when its database is not
// locked and it is older than a minute (a store that has just created its
// directory may not hold the lock yet).
func removeStaleMemoryDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), memoryDirPrefix+"*"))
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		if _, inUse, err := InUse(filepath.Join(dir, "state.db")); err == nil && !inUse {
			os.RemoveAll(dir)
		}
	}
}
