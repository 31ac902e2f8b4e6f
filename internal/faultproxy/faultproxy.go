// Package faultproxy is a TCP proxy for tests that breaks the network
// between a client and a server on command.
//
// A Proxy listens on a random port of 127.0.0.1 and forwards every
// connection it accepts to its target. Tests point a driver at Addr instead
// of the server, then:
//
//   - Drop closes every connection, on both sides, as a peer or a middlebox
//     that closes sockets would (FIN).
//   - Reset aborts every connection, on both sides, with a TCP RST
//     (SetLinger(0) before Close), as a firewall or a crashed host would.
//   - Stall black-holes the network: bytes stop flowing, in one direction or
//     both, on current and new connections, and nothing is closed, as in a
//     partition. New connections are accepted but reach the server only
//     after Resume. TCP stays healthy between the client and the proxy, so
//     only the client's own timeouts can notice.
//   - Refuse makes new connections fail at once (reset on accept), as a
//     server that is down would.
//   - Resume ends Stall and Refuse: held bytes flow again, in order.
//
// Close stops the proxy and every goroutine it started.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names which way bytes flow.
type Direction uint8

const (
	// Upstream is from the client to the server.
	Upstream Direction = 1 << iota
	// Downstream is from the server to the client.
	Downstream
	// Both is Upstream and Downstream.
	Both = Upstream | Downstream
)

// Proxy is a fault-injecting TCP proxy. Its methods are safe for concurrent
// use.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // canceled by Close: ends dials to the target
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every link's goroutines

	accepted atomic.Int64 // connections accepted
	dialErrs atomic.Int64 // dials to the target that failed

	mu      sync.Mutex
	closed  bool               // guarded by mu
	links   map[*link]struct{} // guarded by mu: live connections
	up      chan struct{}      // guarded by mu: closed, or open while Upstream is stalled
	down    chan struct{}      // guarded by mu: closed, or open while Downstream is stalled
	refuse  bool               // guarded by mu
	stalled Direction          // guarded by mu
}

// link is one proxied connection: the client's and, once dialed, the
// target's side.
type link struct {
	client net.Conn
	done   chan struct{} // closed when the link is closed

	mu     sync.Mutex
	server net.Conn // guarded by mu; nil until dialed
	closed bool     // guarded by mu
}

// New starts a proxy on a random port of 127.0.0.1 that forwards to target
// (host:port).
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		target: target,
		ln:     ln,
		links:  make(map[*link]struct{}),
		up:     closedChan(),
		down:   closedChan(),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Stats are a proxy's counters.
type Stats struct {
	Accepted   int64 // connections accepted since New
	Active     int   // connections open now
	DialErrors int64 // dials to the target that failed
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Accepted: p.accepted.Load(), Active: len(p.links), DialErrors: p.dialErrs.Load()}
}

// Drop closes every connection, on both sides.
func (p *Proxy) Drop() {
	for _, l := range p.takeLinks() {
		l.close(false)
	}
}

// Reset aborts every connection, on both sides, with a TCP RST.
func (p *Proxy) Reset() {
	for _, l := range p.takeLinks() {
		l.close(true)
	}
}

// Stall stops forwarding bytes in direction d (Both when d is 0), on every
// connection, current and new, until Resume. Nothing is closed. A byte read
// before the stall may still be delivered.
func (p *Proxy) Stall(d Direction) {
	if d == 0 {
		d = Both
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d&Upstream != 0 && p.stalled&Upstream == 0 {
		p.up = make(chan struct{})
	}
	if d&Downstream != 0 && p.stalled&Downstream == 0 {
		p.down = make(chan struct{})
	}
	p.stalled |= d
}

// Refuse makes the proxy reset every new connection as soon as it is
// accepted, until Resume. Current connections are left alone.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
}

// Resume ends any Stall and Refuse: held bytes are forwarded, in order, and
// new connections reach the target again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled&Upstream != 0 {
		close(p.up)
	}
	if p.stalled&Downstream != 0 {
		close(p.down)
	}
	p.stalled, p.refuse = 0, false
}

// Close stops accepting, closes every connection and waits for the proxy's
// goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	p.Drop()
	p.wg.Wait()
	return err
}

// takeLinks removes and returns every live link.
func (p *Proxy) takeLinks() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
		delete(p.links, l)
	}
	return links
}

// gate returns the channel that is closed while bytes flow in direction d.
func (p *Proxy) gate(d Direction) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d == Upstream {
		return p.up
	}
	return p.down
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		p.accepted.Add(1)
		l := &link{client: c, done: make(chan struct{})}
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			c.Close()
			return
		case p.refuse:
			p.mu.Unlock()
			l.close(true)
			continue
		}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// serve dials the target for l, once upstream bytes may flow, and forwards
// both ways until either side ends or l is closed.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer p.forget(l)
	select {
	case <-p.gate(Upstream): // a stalled network reaches no server
	case <-l.done:
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	var d net.Dialer
	s, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		p.dialErrs.Add(1)
		l.close(true)
		return
	}
	if !l.setServer(s) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pipe(l, l.client, s, Downstream)
	}()
	p.pipe(l, s, l.client, Upstream)
}

// pipe copies from src to dst, holding each chunk while direction d is
// stalled, until either side fails or l is closed; then it closes l.
func (p *Proxy) pipe(l *link, dst, src net.Conn, d Direction) {
	defer l.close(false)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.gate(d):
			case <-l.done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// An end of either side ends the link: the database protocols
			// proxied here never half-close.
			return
		}
	}
}

// forget removes l from the live links and closes it.
func (p *Proxy) forget(l *link) {
	l.close(false)
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// setServer records l's server side; it reports false, and closes s, when l
// was closed meanwhile.
func (l *link) setServer(s net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		s.Close()
		return false
	}
	l.server = s
	return true
}

// close closes both sides of l, with a RST when abort is set. Only the first
// call does anything.
func (l *link) close(abort bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	s := l.server
	l.mu.Unlock()
	close(l.done)
	for _, c := range []net.Conn{l.client, s} {
		if c == nil {
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok && abort {
			tc.SetLinger(0)
		}
		c.Close()
	}
}
