// Command paygate charges AI agents credits for MCP tool calls. All of the
// command line lives in internal/cli; this file only connects it to the
// process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/paygate/paygate/internal/app"
	"github.com/paygate/paygate/internal/cli"
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx and the gateway drains; after
	// that the default handling is back, so a second Ctrl-C stops at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()

	code := cli.Main(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr, app.Run)
	stop()
	os.Exit(code)
}
