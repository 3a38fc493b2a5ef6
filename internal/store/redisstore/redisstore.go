// Package redisstore is paygate's networked store: every gateway instance
// of a fleet opens one on the same Redis and they share keys, balances,
// the ledger, usage and audit.
//
// Money never leaves Redis: Reserve, Refund, TopUp, Transfer, CreateKey and
// ImportKey are each one Lua script (EVALSHA, one round trip) that checks,
// moves the balance, updates the quota counters, records the call id and
// appends the ledger entries (XADD) in one atomic step, so a key's balance
// equals the sum of its ledger deltas at every instant. Key configuration
// is cached in every instance for the gateway's hot path (LookupHash); each
// key change is published on a channel the other instances apply within
// milliseconds, and a periodic resync (and one on every reconnect) is the
// safety net. Reserve itself refuses a revoked key inside the script, so no
// money moves for it whatever a cache says.
//
// Every Redis key of a fleet shares the hash tag "{prefix}", so all of them
// live in one slot: the scripts work unchanged on Redis Cluster, which then
// holds paygate's data on one shard (see docs/DEPLOYMENT.md).
//
// Durability is the Redis server's: a Receipt's Wait returns nil at once,
// after the script ran; with appendonly yes and appendfsync always an
// acknowledged charge survives a crash of Redis. With MinReplicas set, each
// money operation is followed by WAIT on the same connection and Wait
// reports whether enough replicas acknowledged it.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/paygate/paygate/internal/store"
)

var (
	_ store.Store       = (*Store)(nil)
	_ store.KeyImporter = (*Store)(nil)
)

// DefaultPrefix is the key prefix (and hash tag) when Options.Prefix is
// empty.
const DefaultPrefix = "paygate"

// Options configure Open.
type Options struct {
	// URL is redis://[:password@]host:port[/db] or rediss:// for TLS.
	URL string
	// Prefix namespaces every Redis key as "{Prefix}:..."; instances of one
	// fleet use the same prefix. Default DefaultPrefix.
	Prefix string
	Logger *slog.Logger
	Now    func() time.Time // default time.Now

	// ResyncInterval is how often the key cache checks Redis for changes
	// it missed (default 5s); FullResyncEvery is how many of those checks
	// pass between full reloads of the key cache (default 12: a minute).
	ResyncInterval  time.Duration
	FullResyncEvery int
	// FlushInterval bounds how long usage and audit records wait before
	// they are written (default 50ms).
	FlushInterval time.Duration
	// MaxBuffered caps the usage records plus audit events held in memory
	// while Redis is unreachable (default 100,000); past it the oldest are
	// dropped and counted.
	MaxBuffered int
	// UsageRetention and AuditRetention cap the usage and audit streams
	// (approximate trimming on append; default 1,000,000 and 100,000; -1
	// keeps everything).
	UsageRetention int64
	AuditRetention int64
	// MinReplicas, when above zero, makes every money operation wait (WAIT,
	// pipelined with the script) for that many replicas to acknowledge it;
	// Receipt.Wait then fails with store.ErrUnavailable when fewer did
	// within ReplicaTimeout (default 1s).
	MinReplicas    int
	ReplicaTimeout time.Duration
	// DialTimeout and CommandTimeout bound a connection attempt and one
	// command (defaults 1s and 3s).
	DialTimeout    time.Duration
	CommandTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 5 * time.Second
	}
	if o.FullResyncEvery <= 0 {
		o.FullResyncEvery = 12
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 100_000
	}
	if o.UsageRetention == 0 {
		o.UsageRetention = 1_000_000
	}
	if o.AuditRetention == 0 {
		o.AuditRetention = 100_000
	}
	if o.ReplicaTimeout <= 0 {
		o.ReplicaTimeout = time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 3 * time.Second
	}
}

// Validate reports option errors without touching the network.
func (o Options) Validate() error {
	if o.URL == "" {
		return errors.New("redis: URL is required")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("redis: URL: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("redis: URL scheme %q (want redis:// or rediss://)", u.Scheme)
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return fmt.Errorf("redis: prefix %q must not contain braces", o.Prefix)
	}
	if o.MinReplicas < 0 {
		return errors.New("redis: MinReplicas must not be negative")
	}
	return nil
}

// Store is the Redis implementation of store.Store.
type Store struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	rdb  *redis.Client
	ps   *redis.PubSub // key events; closed by Close to end watch
	k    names

	cache *keyCache
	logs  *logBuffer
	fixes *fixQueue // voids and refunds waiting for Redis to come back

	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	resync  chan struct{} // asks the sync loop for a full reload now
	fixKick chan struct{} // asks the sync loop to apply queued corrections
	flushMu sync.Mutex    // one flush of usage and audit at a time

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open connects to Redis, loads every key into the cache and starts the
// cache watcher, the resync loop and the record flusher.
func Open(ctx context.Context, opts Options) (_ *Store, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	quietOnce.Do(func() { redis.SetLogger(debugLogger{opts.Logger}) })
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: URL: %w", err)
	}
	ro.Protocol = 2
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	ro.DisableIdentity = true
	// A retried script could run twice; paygate decides itself what is
	// safe to repeat (see fixQueue).
	ro.MaxRetries = -1
	ro.DialTimeout = opts.DialTimeout
	ro.DialerRetries = 1
	ro.ReadTimeout = opts.CommandTimeout
	ro.WriteTimeout = opts.CommandTimeout
	ro.PoolTimeout = opts.CommandTimeout
	ro.ContextTimeoutEnabled = true

	s := &Store{
		opts: opts, log: opts.Logger, now: opts.Now,
		rdb:     redis.NewClient(ro),
		k:       newNames(opts.Prefix),
		cache:   newKeyCache(),
		logs:    newLogBuffer(opts.MaxBuffered),
		fixes:   &fixQueue{},
		resync:  make(chan struct{}, 1),
		fixKick: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis: connect %s: %w: %w", redactURL(opts.URL), store.ErrUnavailable, err)
	}
	// Subscribe before loading the keys: a change published during the
	// load is then applied either way.
	s.ps = s.rdb.Subscribe(ctx, s.k.events)
	if err := s.fullResync(ctx); err != nil {
		return nil, fmt.Errorf("redis: load keys: %w", err)
	}
	s.wg.Add(3)
	go s.watch()
	go s.syncLoop()
	go s.flushLoop()
	return s, nil
}

// Client returns the store's Redis client, for components that share the
// connection (the Redis rate limiter).
func (s *Store) Client() *redis.Client { return s.rdb }

// Prefix returns the key prefix (without braces).
func (s *Store) Prefix() string { return s.opts.Prefix }

// Describe returns a one-line description for the startup banner.
func (s *Store) Describe() string {
	return fmt.Sprintf("%s (Redis, prefix {%s})", redactURL(s.opts.URL), s.opts.Prefix)
}

// Ping reports whether Redis answers now.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout+time.Second)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// Close flushes buffered usage and audit records (waiting up to 5s for
// Redis), stops the background work and closes the connections. Safe to
// call more than once and after a failed Open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.cancel != nil {
			s.cancel()
		}
		if s.ps != nil {
			s.ps.Close() // a blocked Receive does not watch its context
		}
		s.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.flush(ctx); err != nil {
			s.log.Warn("redis: usage and audit records not written at close", "records", s.logs.len(), "err", err)
		}
		s.fixes.retry(ctx, s)
		if n := s.fixes.len(); n > 0 {
			s.log.Error("redis: corrections not applied at close; check the ledger for these calls", "pending", s.fixes.describe())
		}
		s.closeErr = s.rdb.Close()
	})
	return s.closeErr
}

// unavailable wraps a Redis failure so callers can match
// store.ErrUnavailable (or store.ErrClosed after Close).
func (s *Store) unavailable(op string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", op, store.ErrClosed)
	}
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}

// usable returns ErrClosed after Close.
func (s *Store) usable() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// quietOnce routes go-redis's own log lines (one per failed dial while
// Redis is down) to the first store's logger at debug level. go-redis keeps
// its logger in a package variable; the store reports outages itself, once.
var quietOnce sync.Once

type debugLogger struct{ log *slog.Logger }

func (d debugLogger) Printf(ctx context.Context, format string, v ...any) {
	d.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// redactURL drops the password of a Redis URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "redis"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
		if u.User.Username() == "" {
			u.User = nil
		}
	}
	return u.String()
}

// names builds the Redis key names. Every name carries the hash tag
// "{prefix}" so scripts touching several keys stay in one cluster slot.
type names struct {
	tag      string // "{prefix}"
	keys     string // hash: key id -> "<version>:<key JSON>"
	hashes   string // hash: hex SHA-256 of the secret -> key id
	aliases  string // hash: alias -> key id
	kver     string // counter: version of the last key change
	events   string // pub/sub channel: key records as they change
	ledger   string // stream: every ledger entry, id "<seq>-0"
	seq      string // counter: last ledger seq
	usage    string // stream: usage records, id "<seq>-0"
	useq     string // counter
	audit    string // stream: audit events, id "<seq>-0"
	aseq     string // counter
	admins   string // hash: admin key id -> JSON
	adminIdx string // hash: hex hash -> admin key id
	settings string // hash: name -> value
}

func newNames(prefix string) names {
	t := "{" + prefix + "}"
	return names{
		tag: t, keys: t + ":keys", hashes: t + ":hashes", aliases: t + ":aliases", kver: t + ":kver",
		events: t + ":events", ledger: t + ":ledger", seq: t + ":seq", usage: t + ":usage", useq: t + ":useq",
		audit: t + ":audit", aseq: t + ":aseq", admins: t + ":admins", adminIdx: t + ":adminhashes",
		settings: t + ":settings",
	}
}

func (n names) acct(keyID string) string  { return n.tag + ":acct:" + keyID }  // hash: balance and counters
func (n names) lk(keyID string) string    { return n.tag + ":lk:" + keyID }    // list: the key's ledger seqs
func (n names) call(callID string) string { return n.tag + ":call:" + callID } // hash: a charged call
