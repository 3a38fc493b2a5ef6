package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

const crashEnv = "PAYGATE_SQLITE_CRASH_CHILD"

// TestCrash kills a process mid-load with SIGKILL and checks that nothing
// it acknowledged is lost. The child is this test binary re-executed; it
// prints an operation only after its Receipt.Wait returned nil. The parent
// kills it after a random number of acknowledgements, reopens the database
// and requires every acknowledged line in the ledger and Verify to pass.
// Rounds reuse the database, so recovery over earlier crashes is covered.
func TestCrash(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("crash test re-executes the binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	acked := map[string]string{} // "kind/callid-or-seq" -> line
	for round := range 4 {
		killAt := 20 + rng.IntN(300)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path, "PAYGATE_SQLITE_CRASH_ROUND="+strconv.Itoa(round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		safety := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "ACK" {
				continue
			}
			acked[f[1]+"/"+f[2]] = sc.Text()
			if n++; n == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		safety.Stop()
		if n < killAt {
			t.Fatalf("round %d: child stopped after %d acks (want %d): %v\n%s", round, n, killAt, err, stderr.String())
		}
		t.Logf("round %d: killed after %d acks (%d lines read)", round, killAt, n)
		checkAcked(t, path, acked)
	}
}

// checkAcked reopens the database and requires every acknowledged
// operation in the ledger and the books to balance.
func checkAcked(t *testing.T, path string, acked map[string]string) {
	t.Helper()
	s := openT(t, Options{Path: path})
	defer s.Close()
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after crash: %v", err)
	}
	for _, line := range acked {
		f := strings.Fields(line) // ACK kind id key amount
		var q string
		var args []any
		switch f[1] {
		case "charge", "refund":
			q, args = "SELECT COUNT(*) FROM ledger WHERE call_id = ? AND kind = ? AND key_id = ?", []any{f[2], f[1], f[3]}
		case "topup":
			seq, _ := strconv.ParseInt(f[2], 10, 64)
			amt, _ := strconv.ParseInt(f[4], 10, 64)
			q, args = "SELECT COUNT(*) FROM ledger WHERE seq = ? AND kind = 'topup' AND key_id = ? AND delta = ?", []any{seq, f[3], amt}
		default:
			t.Fatalf("unknown ack %q", line)
		}
		var n int
		if err := s.rdb.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("acknowledged but lost after SIGKILL: %s", line)
		}
	}
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = fmt.Sprintf("key_crash%011d", i)
	}
	storetest.CheckInvariant(t, s, keys...)
}

// crashChild runs reserves, refunds and top-ups on 16 goroutines until it
// is killed, printing each one after it is durable.
func crashChild(path string) {
	s, err := Open(context.Background(), Options{Path: path, Sync: SyncFull})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	round := os.Getenv("PAYGATE_SQLITE_CRASH_ROUND")
	var keys []string
	for i := range 8 {
		id := fmt.Sprintf("key_crash%011d", i)
		keys = append(keys, id)
		if _, _, err := s.GetKey(ctx, id); err == nil {
			continue
		}
		sec := fmt.Sprintf("pg_crash_secret_%024d", i)
		if _, _, err := s.CreateKey(ctx, &store.Key{ID: id, Hash: storetest.HashOf(sec), Prefix: sec[:7], Suffix: sec[len(sec)-4:]},
			1_000_000, store.Meta{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		line := fmt.Sprintf("ACK "+format+"\n", args...)
		mu.Lock()
		os.Stdout.WriteString(line) // one write per line: a kill never splits one
		mu.Unlock()
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	deadline := time.Now().Add(90 * time.Second) // the parent kills us long before
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			type charge struct{ call, key string }
			var mine []charge
			for i := 0; time.Now().Before(deadline); i++ {
				key := keys[rng.IntN(len(keys))]
				switch op := rng.IntN(10); {
				case op < 7:
					call := fmt.Sprintf("r%s-w%d-%d", round, w, i)
					amt := int64(rng.IntN(9) + 1)
					rc, err := s.Reserve(ctx, store.Reservation{KeyID: key, CallID: call, Now: time.Now(),
						Items: []store.Item{{Tool: "t", Amount: amt}}})
					if err != nil {
						fail(err)
					}
					if err := rc.Wait(ctx); err != nil {
						fail(err)
					}
					ack("charge %s %s %d", call, key, amt)
					mine = append(mine, charge{call, key})
				case op < 9:
					if len(mine) == 0 {
						continue
					}
					j := rng.IntN(len(mine))
					c := mine[j]
					mine = append(mine[:j], mine[j+1:]...)
					rc, err := s.Refund(ctx, store.Refund{KeyID: c.key, CallID: c.call, Item: 0, Now: time.Now()})
					if err != nil {
						fail(err)
					}
					if err := rc.Wait(ctx); err != nil {
						fail(err)
					}
					ack("refund %s %s 0", c.call, c.key)
				default:
					amt := int64(rng.IntN(50) + 1)
					rc, err := s.TopUp(ctx, key, amt, store.EntryTopUp, store.Meta{})
					if err != nil {
						fail(err)
					}
					if err := rc.Wait(ctx); err != nil {
						fail(err)
					}
					ack("topup %d %s %d", rc.Seq, key, amt)
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}
