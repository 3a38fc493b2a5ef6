package gate

import (
	"context"
	"errors"
	"strings"

	"github.com/paygate/paygate/internal/store"
)

// acl refuses a tool the key may not use. Every batch item is checked; the
// first refused one fails the whole batch and is reported by index.
type acl struct{}

func (acl) Name() string { return "acl" }

func (acl) Check(_ context.Context, c *Call) error {
	if c.Key == nil {
		return nil
	}
	for i := range c.Items {
		if detail := aclDetail(c.Key, c.Items[i].Tool); detail != "" {
			return &Denial{Reason: ToolNotAllowed, Detail: detail, Remaining: c.Account.Balance, Index: i}
		}
	}
	return nil
}

// ToolAllowed reports whether k may call tool: it must match AllowedTools
// when that list is not empty, and must not match DeniedTools, which wins.
// A pattern is an exact tool name or ends in "*" to match every name with
// that prefix ("fs:*", or "*" for all).
func ToolAllowed(k *store.Key, tool string) bool { return aclDetail(k, tool) == "" }

func aclDetail(k *store.Key, tool string) string {
	if len(k.AllowedTools) > 0 && !matchAny(k.AllowedTools, tool) {
		return tool + " is not in the key's allowedTools"
	}
	if matchAny(k.DeniedTools, tool) {
		return tool + " is in the key's deniedTools"
	}
	return ""
}

func matchAny(patterns []string, tool string) bool {
	for _, p := range patterns {
		if matchTool(p, tool) {
			return true
		}
	}
	return false
}

func matchTool(pattern, tool string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(tool, prefix)
	}
	return pattern == tool
}

// ValidToolPattern reports whether p is a usable ACL pattern: not empty,
// and a "*" only as its last character.
func ValidToolPattern(p string) error {
	switch i := strings.IndexByte(p, '*'); {
	case strings.TrimSpace(p) == "":
		return errors.New("tool pattern must not be empty")
	case i >= 0 && i != len(p)-1:
		return errors.New("tool pattern " + p + ": \"*\" is only allowed at the end")
	}
	return nil
}
