package pool

import (
	"context"
	"errors"
	"sync"
)

// errClosing is check's error when the pool closed before it could start.
var errClosing = errors.New("sqlpool: pool closing")

// check validates c, counted in use, within ValidationTimeout and ctx even
// when Factory.Validate ignores its context (lib/pq's Ping does while the
// network stalls): Validate runs on a goroutine counted in background, and
// check gives up on it at the timeout or when ctx ends. It then reports
// abandoned: c is counted closed with CloseValidation, its slot freed (or
// kept as closeConn's keep says, keepNone when ctx ended; dial reports
// it), the borrowing's outcome o recorded, and the goroutine closes it
// when Validate returns (unless maintenance reclaimed it). It returns
// errClosing, doing nothing, when the pool is closed: the caller puts c
// back, which closes it.
func (p *Pool[T]) check(ctx context.Context, c *Conn[T], keep int, o outcome) (abandoned, dial bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false, false, errClosing
	}
	p.background.Add(1) // under mu, so never after Close began to wait
	p.mu.Unlock()
	v := &validation{done: make(chan struct{})}
	vctx, cancel := context.WithTimeout(ctx, p.cfg.ValidationTimeout)
	go func() {
		defer p.background.Done()
		defer cancel() // only once finished: check takes vctx's end for a timeout
		err := p.f.Validate(vctx, c.value)
		v.mu.Lock()
		if v.abandoned {
			closeIt := v.closeIt
			v.mu.Unlock()
			if closeIt {
				p.f.Close(c.value, CloseValidation)
			}
			return
		}
		v.finished, v.err = true, err
		close(v.done)
		v.mu.Unlock()
	}()
	select {
	case <-v.done:
		return false, false, v.err
	case <-vctx.Done():
	}
	v.mu.Lock()
	if v.finished {
		v.mu.Unlock()
		return false, false, v.err
	}
	blame := ctx.Err() == nil // else the caller's cancellation cut it short
	if !blame {
		keep = keepNone
	}
	v.abandoned = true
	v.closeIt, dial = p.retire(c, CloseValidation, keep, o, blame)
	v.mu.Unlock()
	return true, dial, nil
}

// validation is a Factory.Validate running on its own goroutine, which
// check may abandon.
type validation struct {
	done chan struct{} // closed when it finished and was not abandoned

	mu        sync.Mutex
	finished  bool  // guarded by mu
	abandoned bool  // guarded by mu
	closeIt   bool  // guarded by mu: abandoned, and the goroutine closes the connection
	err       error // Validate's, set with finished
}
