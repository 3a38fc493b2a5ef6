package httpmcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/paygate/paygate/internal/backend"
)

// sseLink is one legacy HTTP+SSE connection (spec 2024-11-05): a GET
// stream whose first event names the endpoint to POST messages to, and
// which carries everything the server sends. Nothing on it says which
// request a message concerns, so the Mux attributes by heuristics. The
// link dies with its stream; the supervisor reconnects and initializes
// again.
type sseLink struct {
	b   *Backend
	mux *backend.Mux
	log *slog.Logger

	ctx      context.Context
	cancel   context.CancelFunc
	endpoint string

	done    chan struct{}
	dieOnce sync.Once
	err     error
}

var _ backend.Link = (*sseLink)(nil)

// errNoEndpoint: the stream ended before naming the message endpoint.
var errNoEndpoint = errors.New("SSE stream sent no endpoint event")

func (b *Backend) dialSSE(ctx context.Context) (backend.Link, error) {
	l := &sseLink{b: b, mux: b.mux, log: b.log, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(ctx, b.cfg.InitTimeout)
	defer cancel()
	// The stream lives as long as the link; only waiting for the endpoint
	// is bounded by the dial.
	stop := context.AfterFunc(ctx, l.cancel)
	defer stop()
	if err := l.open(); err != nil {
		l.cancel()
		return nil, err
	}
	res, err := b.mux.Handshake(ctx, l)
	if err == nil {
		err = b.attach(ctx, l, res, transportSSE, b.dialSSE)
	}
	if err != nil {
		l.die(err)
		return nil, err
	}
	return l, nil
}

// open GETs the stream, waits for the endpoint event and starts reading
// the rest in the background.
func (l *sseLink) open() error {
	base, err := url.Parse(l.b.cfg.URL)
	if err != nil {
		return err
	}
	req, err := l.b.newRequest(l.ctx, http.MethodGet, l.b.cfg.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := l.b.client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || mediaType(resp) != "text/event-stream" {
		defer drain(resp)
		return statusError(resp)
	}
	found := make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		waiting := true
		err := readEvents(resp.Body, l.b.cfg.MaxMessageBytes, func(ev *event) bool {
			switch {
			case waiting && ev.name == "endpoint":
				waiting = false
				ep, err := endpointURL(base, string(ev.data))
				if err == nil {
					l.endpoint = ep
				}
				found <- err
				return err == nil
			case waiting:
				return true // nothing is expected before the endpoint
			case len(ev.data) > 0 && (ev.name == "" || ev.name == "message"):
				l.mux.Receive(l, ev.data, nil)
			}
			return true
		})
		if waiting {
			found <- errors.Join(errNoEndpoint, err)
			return
		}
		if err == nil {
			err = errors.New("SSE stream ended")
		}
		l.die(err)
	}()
	return <-found
}

// endpointURL resolves the endpoint event against the SSE URL. It must stay
// on the same origin: a server (or anything on its path) must not be able
// to make paygate post to another host.
func endpointURL(base *url.URL, data string) (string, error) {
	ref, err := url.Parse(data)
	if err != nil {
		return "", fmt.Errorf("endpoint event %q: %w", data, err)
	}
	u := base.ResolveReference(ref)
	if !sameOrigin(u, base) {
		return "", fmt.Errorf("refusing endpoint %q: not on the origin of %s", data, base.Redacted())
	}
	return u.String(), nil
}

// Send implements backend.Conn: every message is a POST to the endpoint,
// answered 202; replies arrive on the stream.
func (l *sseLink) Send(ctx context.Context, out backend.Outgoing) error {
	select {
	case <-l.done:
		return l.err
	default:
	}
	req, err := l.b.newRequest(ctx, http.MethodPost, l.endpoint, out.Body)
	if err != nil {
		return err
	}
	resp, err := l.b.client.Do(req)
	if err != nil {
		return undelivered(err)
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return statusFailure(statusError(resp))
	}
	return nil
}

// Done implements backend.Link.
func (l *sseLink) Done() <-chan struct{} { return l.done }

// Err implements backend.Link.
func (l *sseLink) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

func (l *sseLink) die(err error) {
	l.dieOnce.Do(func() {
		l.err = err
		close(l.done)
		l.cancel()
		l.mux.Lost(l, err)
	})
}

// Close implements backend.Link: closing the stream ends the session.
func (l *sseLink) Close(context.Context) error {
	l.die(backend.ErrClosed)
	return nil
}
