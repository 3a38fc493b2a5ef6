package redisstore

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
	"github.com/paygate/paygate/internal/testenv"
)

// roundTrips counts the commands (and pipelines) a client sends: each is
// one round trip to Redis.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkReserve charges one credit per op against a real redis-server
// (AOF, appendfsync always) at parallelism 1 and 16, and reports the
// round trips each charge took (1: one EVALSHA).
func BenchmarkReserve(b *testing.B) {
	addr, _ := testenv.RedisServer(b)
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("parallel=%d", par), func(b *testing.B) {
			s, err := Open(context.Background(), Options{URL: "redis://" + addr, Prefix: "bench" + freshPrefix()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			k := mkKey(b, s, 1, 1<<50)
			rt := &roundTrips{}
			s.rdb.AddHook(rt)
			var seq atomic.Int64
			reserve := func() {
				rc, err := s.Reserve(context.Background(), store.Reservation{KeyID: k.ID, CallID: fmt.Sprintf("c%d", seq.Add(1)),
					Now: storetest.T0, Items: []store.Item{{Tool: "echo", Amount: 1}}})
				if err != nil {
					b.Error(err)
					return
				}
				if err := rc.Wait(context.Background()); err != nil {
					b.Error(err)
				}
			}
			reserve() // loads the script into the server's cache
			rt.n.Store(0)
			b.ResetTimer()
			if par == 1 {
				for range b.N {
					reserve()
				}
			} else {
				b.SetParallelism(max(par/runtime.GOMAXPROCS(0), 1))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						reserve()
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reserves/s")
		})
	}
}
