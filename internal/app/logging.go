package app

import (
	"context"
	"io"
	"log/slog"

	"github.com/paygate/paygate/internal/config"
	"github.com/paygate/paygate/internal/gateway"
)

// newLogger builds the process logger: text or JSON (--log-format) at the
// configured level, with the request id of the request a record is about.
// "silent" logs nothing.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	name := orDefault(cfg.LogLevel, "info")
	if name == "silent" {
		return slog.New(slog.DiscardHandler)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}

// requestIDHandler adds request_id to records logged with a context that
// carries one (the *Context logging calls on the request path), unless
// the record has it already.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := gateway.RequestID(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r = r.Clone()
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
