package gate

// order lists the checks in the order Chain.Run runs them. Like CoreDNS's
// plugin.cfg, each check may rely on everything before it and must not care
// about anything after it, and the first denial wins, so the order decides
// which reason a call failing several checks gets. It follows paygate-mcp's
// gate, so clients see the same reasons.
func order(o Options) []Check {
	p := o.Policy
	return []Check{
		// Without a credential there is nothing to look up.
		credential{},
		// Resolve the credential to a key and its account (sets c.Key,
		// c.Account); every later check reads them. Revoked and unknown keys
		// are indistinguishable to the client.
		&auth{keys: o.Keys},
		// Expiry before suspension: a key that can never work again is
		// reported as such, even if it is also suspended.
		expiry{},
		// Suspension is reversible, so it comes after the permanent states.
		suspended{},
		// Where the call comes from is a property of the key, checked before
		// what it asks for; this ends the authentication prefix.
		ipAllow{},

		// What the call asks for: a tool the key may not use is refused
		// before it consumes any rate-limit slot.
		acl{},
		// The key's own calls-per-minute, counting every batch item. It
		// comes before the per-tool limit so X-RateLimit-* headers reflect
		// each call that got this far, and before the money checks, which
		// are the more expensive to answer wrongly.
		&keyRate{policy: p, limiter: o.Limiter},
		// Per-(key, tool) calls-per-minute, per item.
		&toolRate{policy: p, limiter: o.Limiter},
		// In-flight caps per key and per tool (concurrency.go). It is the
		// one check that takes something: a slot, given back when the
		// pipeline settles the call (Call.Settle, on every path after this
		// check passed, later denials included). It runs after the checks
		// that only count, so a call they refuse never holds a slot, and
		// before the money checks, so a busy key hears "retry shortly"
		// (-32005) rather than a payment problem.
		concurrency{cc: o.Concurrency},
		// Price every item and sum them into c.Total: the money checks below
		// compare against it. It never denies.
		&price{policy: p},
		// Pre-checks against the account snapshot read at authentication,
		// in paygate's documented order: spending limit, then quotas, then
		// balance. store.Ledger.Reserve repeats all three atomically; these
		// only make the common denial cheap and its reason deterministic.
		spending{},
		&quota{policy: p},
		balance{},
	}
}

// authChecks is how many checks at the head of order are about the key
// itself; Chain.Authenticate runs only those.
const authChecks = 5
