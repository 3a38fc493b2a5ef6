package credits

// Rule prices one tool call.
//
// The price of a call is PerCall + ceil(input KB) × PerKBInput, where input
// KB is the size of the call's arguments in units of 1024 bytes, rounded up
// and at least 1 when PerKBInput is set (paygate-mcp's documented rule:
// "small inputs round up to at least 1 KB").
type Rule struct {
	PerCall    Credits
	PerKBInput Credits
}

// Price returns the price of a call whose raw arguments are argBytes long.
func (r Rule) Price(argBytes int) (Credits, error) {
	if r.PerKBInput == 0 {
		return r.PerCall, Validate(r.PerCall)
	}
	kb := Credits((argBytes + 1023) / 1024)
	if kb < 1 {
		kb = 1
	}
	extra, err := Mul(kb, r.PerKBInput)
	if err != nil {
		return 0, err
	}
	return Add(r.PerCall, extra)
}
