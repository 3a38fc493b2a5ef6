package resilience

// Breakers are the circuit breakers of a gateway's backends, in
// configuration order: what the admin API's /admin/circuit shows and
// resets.
type Breakers []*Breaker

// Circuits returns every breaker's snapshot.
func (bs Breakers) Circuits() []Snapshot {
	out := make([]Snapshot, len(bs))
	for i, b := range bs {
		out[i] = b.Snapshot()
	}
	return out
}

// ResetCircuit closes the breaker of the named backend, or every breaker
// when name is empty. It returns the names reset; none when no backend has
// that name.
func (bs Breakers) ResetCircuit(name string) []string {
	var reset []string
	for _, b := range bs {
		if name == "" || b.Name() == name {
			b.Reset()
			reset = append(reset, b.Name())
		}
	}
	return reset
}
