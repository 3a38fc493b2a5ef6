package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/paygate/paygate/internal/config"
)

func runWrap(ctx context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		wrapHelp(inv.io.Stdout)
		return ExitOK
	}
	cfg, diags, err := config.Load(config.LoadOptions{Args: args, Env: inv.env})
	if err != nil {
		if errors.Is(err, config.ErrUsage) {
			return inv.usage("wrap", err)
		}
		fmt.Fprintf(inv.io.Stderr, "paygate wrap: %v\n", err)
		return ExitError
	}
	printDiagnostics(inv.io.Stderr, diags, cfg.JSONOutput)
	if config.HasErrors(diags) {
		n, _ := config.Count(diags)
		fmt.Fprintf(inv.io.Stderr, "paygate wrap: not starting: the configuration has %s; fix %s and run again\n",
			plural(n, "error"), map[bool]string{true: "it", false: "them"}[n == 1])
		return ExitError
	}
	if err := inv.run(ctx, cfg, inv.io); err != nil && !isCanceled(ctx, err) {
		fmt.Fprintf(inv.io.Stderr, "paygate: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// printDiagnostics writes one diagnostic per line: text, or JSON objects
// when asJSON.
func printDiagnostics(w io.Writer, diags []config.Diagnostic, asJSON bool) {
	enc := json.NewEncoder(w)
	for _, d := range diags {
		if asJSON {
			_ = enc.Encode(d)
		} else {
			fmt.Fprintln(w, d.String())
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
