package pool

import "fmt"

// PoissonAtLeast exposes the tail of the Poisson distribution that
// FailFastBelow uses.
var PoissonAtLeast = poissonAtLeast

// CheckCounts reports an error when the pool's connection counts break the
// invariants stated in slots.go.
func (p *Pool[T]) CheckCounts() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var closed int64
	for _, n := range p.stats.closed {
		closed += n
	}
	switch {
	case p.total != p.dialing+len(p.idle)+p.inUse:
		return fmt.Errorf("total %d != dialing %d + idle %d + in use %d", p.total, p.dialing, len(p.idle), p.inUse)
	case p.stats.created-closed != int64(len(p.idle)+p.inUse):
		return fmt.Errorf("created %d - closed %d != idle %d + in use %d", p.stats.created, closed, len(p.idle), p.inUse)
	case p.dialing < 0 || p.inUse < 0 || p.dialing > p.cfg.MaxConcurrentConnects:
		return fmt.Errorf("dialing %d (MaxConcurrentConnects %d), in use %d", p.dialing, p.cfg.MaxConcurrentConnects, p.inUse)
	}
	return nil
}
