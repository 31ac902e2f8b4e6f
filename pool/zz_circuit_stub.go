package pool

// CircuitOpen is a stand-in until the circuit breaker lands (h-breaker).
func (p *Pool[T]) CircuitOpen() bool { return false }
