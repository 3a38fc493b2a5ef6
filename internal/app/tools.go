package app

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// toolRefreshInterval is how often the tool list is re-read even without
// a list_changed notification (a backend may not send one).
const toolRefreshInterval = 10 * time.Minute

// toolCache holds the names of the tools the backend listed last, for
// /pricing and the identity card. It is refreshed when the backend
// becomes ready, when it sends notifications/tools/list_changed, and
// every toolRefreshInterval.
type toolCache struct {
	list func(ctx context.Context) ([]json.RawMessage, error)
	kick chan struct{} // a pending refresh; never blocks a sender

	mu    sync.RWMutex
	names []string
	known bool
}

func newToolCache(list func(ctx context.Context) ([]json.RawMessage, error)) *toolCache {
	return &toolCache{list: list, kick: make(chan struct{}, 1)}
}

// Tools returns the cached names and whether a list was ever received.
func (c *toolCache) Tools() ([]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.names), c.known
}

// invalidate asks for a refresh; it never blocks (the backend's reader
// calls it).
func (c *toolCache) invalidate() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// refresh reads the list now. It returns the number of tools, or -1 when
// the backend could not list them (the cache keeps its old list).
func (c *toolCache) refresh(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tools, err := c.list(ctx)
	if err != nil {
		return -1, err
	}
	names := make([]string, 0, len(tools))
	for _, t := range tools {
		var h struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(t, &h) == nil && h.Name != "" {
			names = append(names, h.Name)
		}
	}
	slices.Sort(names)
	c.mu.Lock()
	c.names, c.known = slices.Compact(names), true
	c.mu.Unlock()
	return len(tools), nil
}

// run refreshes on every invalidation and periodically until ctx ends.
func (c *toolCache) run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(toolRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		if _, err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			onErr(err)
		}
	}
}

// watchedBackend is the backend as the gateway sees it, with a listener
// that also tells the tool cache when the backend's tool list may have
// changed. Everything else passes through.
type watchedBackend struct {
	backend.Backend
	onToolsChanged func()
}

var _ backend.PeerForgetter = (*watchedBackend)(nil)

// SetListener wraps the gateway's listener.
func (w *watchedBackend) SetListener(l backend.Listener) {
	w.Backend.SetListener(toolsListener{next: l, changed: w.onToolsChanged})
}

// Unwrap lets backend.Find reach the wrapped backend's optional
// interfaces (Admitter, StatusLister).
func (w *watchedBackend) Unwrap() backend.Backend { return w.Backend }

// ForgetPeer keeps the wrapped backend's optional capability visible.
func (w *watchedBackend) ForgetPeer(p backend.Peer) {
	if f, ok := w.Backend.(backend.PeerForgetter); ok {
		f.ForgetPeer(p)
	}
}

type toolsListener struct {
	next    backend.Listener
	changed func()
}

func (l toolsListener) OnMessage(msg *mcp.Message) {
	if msg.Method == mcp.NotificationToolsListChanged {
		l.changed()
	}
	l.next.OnMessage(msg)
}

func (l toolsListener) OnStateChange(s backend.Status) {
	l.next.OnStateChange(s)
	if s.State == backend.StateReady {
		l.changed() // first start or a restart: the list may differ
	}
}
