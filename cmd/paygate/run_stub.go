package main

import (
	"context"
	"errors"

	"github.com/paygate/paygate/internal/cli"
	"github.com/paygate/paygate/internal/config"
)

// run starts the gateway. TEMPORARY: the lead replaces this stub with
// app.Run from github.com/paygate/paygate/internal/app and deletes this file.
var run cli.RunFunc = func(context.Context, *config.Config, cli.IO) error {
	return errors.New("not wired yet")
}
