package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/store"
)

// script is one Lua script run with EVALSHA, falling back to EVAL when the
// server's script cache does not have it (after a restart or SCRIPT FLUSH).
type script struct {
	name string
	src  string
	sha  string
}

func newScript(name, body string) *script {
	src := luaPrelude + body
	h := sha1.Sum([]byte(src))
	return &script{name: name, src: src, sha: hex.EncodeToString(h[:])}
}

// run executes sc in one round trip. With MinReplicas set, a WAIT is
// pipelined after it on the same connection; waitErr reports a replica
// shortfall (the script ran either way).
func (s *Store) run(ctx context.Context, sc *script, keys []string, args ...any) (res any, waitErr error, err error) {
	for attempt := 0; ; attempt++ {
		useSHA := attempt == 0
		if s.opts.MinReplicas == 0 {
			var cmd *redis.Cmd
			if useSHA {
				cmd = s.rdb.EvalSha(ctx, sc.sha, keys, args...)
			} else {
				cmd = s.rdb.Eval(ctx, sc.src, keys, args...)
			}
			res, err = cmd.Result()
		} else {
			pipe := s.rdb.Pipeline()
			var cmd *redis.Cmd
			if useSHA {
				cmd = pipe.EvalSha(ctx, sc.sha, keys, args...)
			} else {
				cmd = pipe.Eval(ctx, sc.src, keys, args...)
			}
			w := pipe.Do(ctx, "WAIT", s.opts.MinReplicas, s.opts.ReplicaTimeout.Milliseconds())
			_, _ = pipe.Exec(ctx)
			res, err = cmd.Result()
			if err == nil {
				if n, werr := w.Int64(); werr != nil {
					waitErr = fmt.Errorf("%w: WAIT: %w", store.ErrUnavailable, werr)
				} else if n < int64(s.opts.MinReplicas) {
					waitErr = fmt.Errorf("%w: acknowledged by %d of %d replicas", store.ErrUnavailable, n, s.opts.MinReplicas)
				}
			}
		}
		// NOSCRIPT means the script did not run: safe to send it in full.
		if useSHA && err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			continue
		}
		return res, waitErr, err
	}
}

// replyError is a Redis error reply: the command was refused and did not
// run. Anything else (a broken connection, a timeout) leaves it unknown
// whether a script ran.
func replyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// reply is a script's array reply: a status word and string fields.
type reply []string

func toReply(v any) (reply, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("unexpected script reply %T", v)
	}
	out := make(reply, len(arr))
	for i, x := range arr {
		switch x := x.(type) {
		case string:
			out[i] = x
		case int64:
			out[i] = fmt.Sprint(x)
		case nil:
		default:
			return nil, fmt.Errorf("unexpected script reply element %T", x)
		}
	}
	return out, nil
}

// luaPrelude holds the helpers every script shares. Numbers go back to
// Redis through fmt, never tostring: Lua prints large numbers in exponent
// form. Credits are at most 2^53 and so exact in Lua's doubles; times are
// kept as strings and never computed on.
const luaPrelude = `
local function fmt(x) return string.format('%d', x) end
local function readacct(k)
  local v = redis.call('HMGET', k, 'bal', 'sp', 'calls', 'last', 'day', 'dc', 'dcr', 'mon', 'mc', 'mcr', 'rv')
  if not v[1] then return nil end
  return {bal = tonumber(v[1]), sp = tonumber(v[2]) or 0, calls = tonumber(v[3]) or 0, last = v[4] or '0',
    day = tonumber(v[5]) or 0, dc = tonumber(v[6]) or 0, dcr = tonumber(v[7]) or 0,
    mon = tonumber(v[8]) or 0, mc = tonumber(v[9]) or 0, mcr = tonumber(v[10]) or 0, rv = (v[11] == '1')}
end
local function writeacct(k, a)
  redis.call('HSET', k, 'bal', fmt(a.bal), 'sp', fmt(a.sp), 'calls', fmt(a.calls), 'last', a.last,
    'day', fmt(a.day), 'dc', fmt(a.dc), 'dcr', fmt(a.dcr), 'mon', fmt(a.mon), 'mc', fmt(a.mc), 'mcr', fmt(a.mcr))
end
local function acctfields(a, seq)
  return {fmt(a.bal), fmt(a.sp), fmt(a.calls), a.last, fmt(a.day), fmt(a.dc), fmt(a.dcr),
    fmt(a.mon), fmt(a.mc), fmt(a.mcr), fmt(seq)}
end
local function ok(a, seq)
  local r = acctfields(a, seq)
  table.insert(r, 1, 'OK')
  return r
end
-- entry appends one ledger line to the stream and the key's index.
local function entry(ledger, seqk, lk, keyid, t, kind, delta, bal, tool, call, item, req, cp, actor, note)
  local seq = redis.call('INCR', seqk)
  local f = {'t', t, 'k', keyid, 'kd', kind, 'd', fmt(delta), 'b', fmt(bal)}
  local function opt(name, v) if v ~= nil and v ~= '' then f[#f + 1] = name; f[#f + 1] = v end end
  opt('tool', tool); opt('call', call)
  if call ~= '' then opt('i', fmt(item)) end
  opt('req', req); opt('cp', cp); opt('actor', actor); opt('note', note)
  redis.call('XADD', ledger, fmt(seq) .. '-0', unpack(f))
  redis.call('RPUSH', lk, fmt(seq))
  return seq
end
-- refunditem gives back amount of item i of the call record ck (account a
-- already read); returns the entry's seq.
local function refunditem(a, ck, c, i, amount, charged, ledger, seqk, lk, keyid, t, tool, req, actor, note)
  a.bal = a.bal + amount
  a.sp = a.sp - amount
  local full = (amount == charged)
  if full then a.calls = a.calls - 1 end
  if a.day == tonumber(c[2]) then
    a.dcr = a.dcr - amount
    if full then a.dc = a.dc - 1 end
  end
  if a.mon == tonumber(c[3]) then
    a.mcr = a.mcr - amount
    if full then a.mc = a.mc - 1 end
  end
  local seq = entry(ledger, seqk, lk, keyid, t, 'refund', amount, a.bal, tool, c[5], i, req, '', actor, note)
  redis.call('HSET', ck, 'r' .. i, '1')
  return seq
end
`

// Reserve: KEYS acct, call, ledger, seq, lk. ARGV keyid, callid, day,
// month, now, spending limit, quota daily calls, monthly calls, daily
// credits, monthly credits, request id, actor, note, then tool/amount
// pairs. Checks revoked, duplicate call id, spending limit, quotas,
// balance; then charges every item and records the call.
var scReserve = newScript("reserve", `
local a = readacct(KEYS[1])
if not a then return {'NOTFOUND'} end
if a.rv then return {'REVOKED'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'DUP'} end
local day, month = tonumber(ARGV[3]), tonumber(ARGV[4])
if day > a.day then a.day = day; a.dc = 0; a.dcr = 0 end
if month > a.mon then a.mon = month; a.mc = 0; a.mcr = 0 end
local n = (#ARGV - 13) / 2
local total = 0
for i = 0, n - 1 do total = total + tonumber(ARGV[15 + 2 * i]) end
local sl = tonumber(ARGV[6])
if sl > 0 and a.sp + total > sl then
  return {'SPEND', fmt(total), fmt(math.max(sl - a.sp, 0)), fmt(sl), fmt(a.sp)}
end
local function quota(limit, used, need, what)
  if limit > 0 and used + need > limit then
    return {'QUOTA', fmt(need), fmt(math.max(limit - used, 0)), fmt(limit), what}
  end
end
local r = quota(tonumber(ARGV[7]), a.dc, n, 'daily call') or quota(tonumber(ARGV[8]), a.mc, n, 'monthly call')
  or quota(tonumber(ARGV[9]), a.dcr, total, 'daily credit') or quota(tonumber(ARGV[10]), a.mcr, total, 'monthly credit')
if r then return r end
if a.bal < total then return {'INSUF', fmt(total), fmt(a.bal)} end
a.sp = a.sp + total
a.calls = a.calls + n
a.dc = a.dc + n; a.mc = a.mc + n
a.dcr = a.dcr + total; a.mcr = a.mcr + total
a.last = ARGV[5]
local cf = {'k', ARGV[1], 'd', fmt(a.day), 'm', fmt(a.mon), 'n', fmt(n), 'c', ARGV[2]}
local seq = 0
for i = 0, n - 1 do
  local amt = tonumber(ARGV[15 + 2 * i])
  a.bal = a.bal - amt
  seq = entry(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[5], 'charge', -amt, a.bal, ARGV[14 + 2 * i], ARGV[2], i,
    ARGV[11], '', ARGV[12], ARGV[13])
  cf[#cf + 1] = 'a' .. i
  cf[#cf + 1] = fmt(amt)
end
redis.call('HSET', KEYS[2], unpack(cf))
writeacct(KEYS[1], a)
return ok(a, seq)
`)

// Refund: KEYS acct, call, ledger, seq, lk. ARGV keyid, callid, item,
// amount (0: the whole item), now, tool, request id, actor, note.
var scRefund = newScript("refund", `
local c = redis.call('HMGET', KEYS[2], 'k', 'd', 'm', 'n', 'c')
if not c[1] or c[1] ~= ARGV[1] then return {'NOTFOUND'} end
local a = readacct(KEYS[1])
if not a then return {'NOTFOUND'} end
local i = tonumber(ARGV[3])
if i < 0 or i >= tonumber(c[4]) then return {'NOTFOUND'} end
if redis.call('HEXISTS', KEYS[2], 'r' .. i) == 1 then return ok(a, 0) end
local charged = tonumber(redis.call('HGET', KEYS[2], 'a' .. i))
local amount = tonumber(ARGV[4])
if amount == 0 then amount = charged end
if amount > charged then return {'TOOMUCH', fmt(amount), fmt(charged)} end
local seq = refunditem(a, KEYS[2], c, i, amount, charged, KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[5], ARGV[6],
  ARGV[7], ARGV[8], ARGV[9])
writeacct(KEYS[1], a)
return ok(a, seq)
`)

// Void settles a Reserve whose reply was lost: KEYS acct, call, ledger,
// seq, lk; ARGV keyid, callid, now, actor, note. If the call was charged,
// every item not yet refunded is refunded in full; if it never ran, a
// tombstone takes its call id so a late copy of it cannot charge.
var scVoid = newScript("void", `
local c = redis.call('HMGET', KEYS[2], 'k', 'd', 'm', 'n', 'c')
if not c[1] then
  redis.call('HSET', KEYS[2], 'k', '', 'n', '0', 'void', '1')
  return {'TOMBSTONE'}
end
if c[1] ~= ARGV[1] then return {'OTHER'} end
local a = readacct(KEYS[1])
if not a then return {'NOTFOUND'} end
local seq = 0
for i = 0, tonumber(c[4]) - 1 do
  if redis.call('HEXISTS', KEYS[2], 'r' .. i) == 0 then
    local charged = tonumber(redis.call('HGET', KEYS[2], 'a' .. i))
    seq = refunditem(a, KEYS[2], c, i, charged, charged, KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[3], '', '',
      ARGV[4], ARGV[5])
  end
end
if seq > 0 then writeacct(KEYS[1], a) end
return ok(a, seq)
`)

// TopUp: KEYS acct, ledger, seq, lk. ARGV keyid, amount (signed), kind,
// now, request id, actor, note, max balance.
var scTopUp = newScript("topup", `
local a = readacct(KEYS[1])
if not a then return {'NOTFOUND'} end
if a.rv and ARGV[3] ~= 'adjustment' then return {'REVOKED'} end
local amount = tonumber(ARGV[2])
if a.bal + amount > tonumber(ARGV[8]) then return {'TOOLARGE'} end
a.bal = a.bal + amount
local seq = entry(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[4], ARGV[3], amount, a.bal, '', '', 0, ARGV[5], '',
  ARGV[6], ARGV[7])
redis.call('HSET', KEYS[1], 'bal', fmt(a.bal))
return ok(a, seq)
`)

// Transfer: KEYS acct from, acct to, ledger, seq, lk from, lk to. ARGV
// from, to, amount, now, request id, actor, note, max balance.
var scTransfer = newScript("transfer", `
local src = readacct(KEYS[1])
if not src then return {'NOTFOUND', 'from'} end
local dst = readacct(KEYS[2])
if not dst then return {'NOTFOUND', 'to'} end
if src.rv then return {'REVOKED', 'from'} end
if dst.rv then return {'REVOKED', 'to'} end
local amount = tonumber(ARGV[3])
if src.bal < amount then return {'INSUF', fmt(amount), fmt(src.bal)} end
if dst.bal + amount > tonumber(ARGV[8]) then return {'TOOLARGE'} end
src.bal = src.bal - amount
dst.bal = dst.bal + amount
local s1 = entry(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[4], 'transfer_out', -amount, src.bal, '', '', 0, ARGV[5],
  ARGV[2], ARGV[6], ARGV[7])
local s2 = entry(KEYS[3], KEYS[4], KEYS[6], ARGV[2], ARGV[4], 'transfer_in', amount, dst.bal, '', '', 0, ARGV[5],
  ARGV[1], ARGV[6], ARGV[7])
redis.call('HSET', KEYS[1], 'bal', fmt(src.bal))
redis.call('HSET', KEYS[2], 'bal', fmt(dst.bal))
local r = ok(src, s1)
for _, v in ipairs(acctfields(dst, s2)) do r[#r + 1] = v end
return r
`)

// CreateKey (and ImportKey): KEYS keys, hashes, aliases, acct, kver,
// ledger, seq, lk. ARGV id, hex hash, alias, key JSON, initial, now,
// request id, actor, note, channel, revoked, then the opening counters
// spent, calls, last, day, dc, dcr, mon, mc, mcr.
var scCreateKey = newScript("createkey", `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return {'EXISTS', 'id'} end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return {'EXISTS', 'hash'} end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return {'CONFLICT'} end
local ver = redis.call('INCR', KEYS[5])
local rec = fmt(ver) .. ':' .. ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], rec)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], ARGV[1]) end
local a = {bal = 0, sp = tonumber(ARGV[12]), calls = tonumber(ARGV[13]), last = ARGV[14], day = tonumber(ARGV[15]),
  dc = tonumber(ARGV[16]), dcr = tonumber(ARGV[17]), mon = tonumber(ARGV[18]), mc = tonumber(ARGV[19]),
  mcr = tonumber(ARGV[20])}
local seq = 0
local initial = tonumber(ARGV[5])
if initial > 0 then
  a.bal = initial
  seq = entry(KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[6], 'grant', initial, a.bal, '', '', 0, ARGV[7], '', ARGV[8],
    ARGV[9])
end
writeacct(KEYS[4], a)
redis.call('HSET', KEYS[4], 'rv', ARGV[11])
redis.call('PUBLISH', ARGV[10], rec)
local r = ok(a, seq)
r[#r + 1] = rec
return r
`)

// SetKey replaces a key record if it is still the one read (compare and
// set): KEYS keys, hashes, aliases, acct, kver. ARGV id, expected record,
// new JSON, old hash, new hash, old alias, new alias, revoked, channel.
var scSetKey = newScript("setkey", `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return {'NOTFOUND'} end
if cur ~= ARGV[2] then return {'RETRY'} end
if ARGV[5] ~= ARGV[4] and redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return {'EXISTS', 'hash'} end
if ARGV[7] ~= '' and ARGV[7] ~= ARGV[6] then
  local o = redis.call('HGET', KEYS[3], ARGV[7])
  if o and o ~= ARGV[1] then return {'CONFLICT'} end
end
if ARGV[5] ~= ARGV[4] then
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
end
if ARGV[7] ~= ARGV[6] then
  if ARGV[6] ~= '' and redis.call('HGET', KEYS[3], ARGV[6]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[6]) end
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], ARGV[7], ARGV[1]) end
end
if ARGV[8] == '1' then redis.call('HSET', KEYS[4], 'rv', '1') end
local ver = redis.call('INCR', KEYS[5])
local rec = fmt(ver) .. ':' .. ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], rec)
redis.call('PUBLISH', ARGV[9], rec)
return {'OK', rec}
`)

// LookupIndex resolves an index (hashes or aliases) to a key record in
// one round trip: KEYS index, keys; ARGV field.
var scLookup = newScript("lookup", `
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return {'NOTFOUND'} end
local rec = redis.call('HGET', KEYS[2], id)
if not rec then return {'NOTFOUND'} end
return {'OK', rec}
`)

// AppendRecords appends usage records or audit events: KEYS stream,
// counter; ARGV max length (-1: keep all), then one JSON document each.
var scAppend = newScript("append", `
local n = #ARGV - 1
local last = redis.call('INCRBY', KEYS[2], n)
local maxlen = tonumber(ARGV[1])
for i = 1, n do
  local id = fmt(last - n + i) .. '-0'
  if maxlen >= 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, 'j', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[1], id, 'j', ARGV[i + 1])
  end
end
return {'OK', fmt(last)}
`)

// CreateAdmin: KEYS admins, admin hashes; ARGV id, hex hash, JSON.
var scCreateAdmin = newScript("createadmin", `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return {'EXISTS'}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return {'OK'}
`)

// SetAdmin: compare and set of an admin key's JSON. KEYS admins; ARGV id,
// expected, new.
var scSetAdmin = newScript("setadmin", `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return {'NOTFOUND'} end
if cur ~= ARGV[2] then return {'RETRY'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {'OK'}
`)

// scripts lists every script, for tests that load them all.
var scripts = []*script{scReserve, scRefund, scVoid, scTopUp, scTransfer, scCreateKey, scSetKey, scLookup, scAppend,
	scCreateAdmin, scSetAdmin}

// statusErr turns a refusal status other than the ones an operation
// handles into an error (a script bug or an unexpected state).
func statusErr(op string, r reply) error {
	return fmt.Errorf("%s: unexpected script status %s", op, strings.Join(r, " "))
}
