package policy

import (
	"testing"
	"time"
)

// TestToolTimeoutFallsBackToTheGlobalOne: a tool's own timeoutMs wins;
// tools without one get toolTimeoutMs.
func TestToolTimeoutFallsBackToTheGlobalOne(t *testing.T) {
	p := MustNew(Settings{ToolTimeout: 5 * time.Second, ToolPricing: map[string]ToolPolicy{"slow": {TimeoutMs: 200}, "priced": {}}})
	for tool, want := range map[string]time.Duration{"slow": 200 * time.Millisecond, "priced": 5 * time.Second, "other": 5 * time.Second} {
		if got := p.ToolTimeout(tool); got != want {
			t.Errorf("ToolTimeout(%s) = %s, want %s", tool, got, want)
		}
	}
	if MustNew(Settings{}).ToolTimeout("x") != 0 {
		t.Error("no timeout configured should mean none")
	}
	if _, err := New(Settings{ToolTimeout: -time.Second}); err == nil {
		t.Error("negative toolTimeoutMs accepted")
	}
}
