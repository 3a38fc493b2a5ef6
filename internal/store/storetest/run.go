package storetest

import (
	"testing"

	"github.com/paygate/paygate/internal/store"
)

// Run runs the functional contract: each subtest gets a fresh, empty store
// from newStore, which registers its own cleanup (Close).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateConflicts", testCreateConflicts},
		{"NotFound", testNotFound},
		{"Rotate", testRotate},
		{"UpdatePurity", testUpdatePurity},
		{"UpdateAlias", testUpdateAlias},
		{"ListKeys", testListKeys},
		{"ReserveCharges", testReserveCharges},
		{"ReserveInsufficient", testReserveInsufficient},
		{"ReserveSpendingLimit", testReserveSpendingLimit},
		{"ReserveQuotas", testReserveQuotas},
		{"QuotaRollover", testQuotaRollover},
		{"DuplicateCall", testDuplicateCall},
		{"RevokedKey", testRevokedKey},
		{"Refund", testRefund},
		{"RefundAfterRollover", testRefundAfterRollover},
		{"TopUpKinds", testTopUpKinds},
		{"Transfer", testTransfer},
		{"EntriesFilters", testEntriesFilters},
		{"Usage", testUsage},
		{"Audit", testAudit},
		{"AdminKeys", testAdminKeys},
		{"Settings", testSettings},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(newFixture(t, newStore(t)))
		})
	}
}
