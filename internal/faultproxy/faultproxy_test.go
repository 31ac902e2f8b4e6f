package faultproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sqlpool/sqlpool/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes each line it receives and reports how each connection
// ended.
type echoServer struct {
	ln       net.Listener
	accepted atomic.Int64
	received chan string // every line received, before it is echoed
	ended    chan error  // each connection's read error
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn // guarded by mu
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, received: make(chan string, 100), ended: make(chan error, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						s.ended <- err
						return
					}
					s.received <- line
					if _, err := c.Write([]byte(line)); err != nil {
						s.ended <- err
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused returns the error of a round trip on a new connection: the dial's,
// or the read's when the proxy accepted and then reset it.
func refused(p *faultproxy.Proxy) error {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = roundTrip(c, "hello", 5*time.Second)
	return err
}

// roundTrip sends line and returns what comes back within timeout.
func roundTrip(c net.Conn, line string, timeout time.Duration) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return readLine(c, timeout)
}

func readLine(c net.Conn, timeout time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var buf []byte
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			return string(buf), err
		}
		if b[0] == '\n' {
			return string(buf), nil
		}
		buf = append(buf, b[0])
	}
}

func mustRoundTrip(t *testing.T, c net.Conn, line string) {
	t.Helper()
	got, err := roundTrip(c, line, 5*time.Second)
	if err != nil || got != line {
		t.Fatalf("round trip of %q: got %q, %v", line, got, err)
	}
}

// expectTimeout checks that nothing arrives on c for a while.
func expectTimeout(t *testing.T, c net.Conn) {
	t.Helper()
	if got, err := readLine(c, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a stalled connection: %q, %v; want a timeout", got, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProxyForwards(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	a, b := dial(t, p), dial(t, p)
	mustRoundTrip(t, a, "hello")
	mustRoundTrip(t, b, "world")
	mustRoundTrip(t, a, "again")
	if st := p.Stats(); st.Accepted != 2 || st.Active != 2 {
		t.Errorf("stats %+v, want 2 accepted and 2 active", st)
	}
	if p.Target() != s.ln.Addr().String() {
		t.Errorf("Target() = %s", p.Target())
	}
}

func TestStallHoldsBytesUntilResume(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c := dial(t, p)
	mustRoundTrip(t, c, "before")
	<-s.received
	p.Stall(faultproxy.Both)
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	expectTimeout(t, c)
	select {
	case line := <-s.received:
		t.Fatalf("the server received %q during a stall", line)
	default:
	}
	p.Resume()
	if got, err := readLine(c, 5*time.Second); err != nil || got != "held" {
		t.Fatalf("after Resume: %q, %v; want the held line", got, err)
	}
	mustRoundTrip(t, c, "after")
}

func TestStallReachesNoServerWithNewConnections(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	p.Stall(0)      // Both
	c := dial(t, p) // the proxy accepts: only the bytes are black-holed
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	expectTimeout(t, c)
	if n := s.accepted.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections during a stall", n)
	}
	p.Resume()
	if got, err := readLine(c, 5*time.Second); err != nil || got != "hello" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
}

func TestStallDownstreamLetsRequestsThrough(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c := dial(t, p)
	mustRoundTrip(t, c, "warm")
	<-s.received
	p.Stall(faultproxy.Downstream)
	if _, err := c.Write([]byte("request\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-s.received:
		if line != "request\n" {
			t.Fatalf("server received %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the server")
	}
	expectTimeout(t, c) // the response is held
	p.Resume()
	if got, err := readLine(c, 5*time.Second); err != nil || got != "request" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
}

func TestStallUpstreamHoldsRequests(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c := dial(t, p)
	mustRoundTrip(t, c, "warm")
	<-s.received
	p.Stall(faultproxy.Upstream)
	p.Stall(faultproxy.Upstream) // idempotent
	if _, err := c.Write([]byte("request\n")); err != nil {
		t.Fatal(err)
	}
	expectTimeout(t, c)
	if len(s.received) != 0 {
		t.Fatal("the server received a request during an upstream stall")
	}
	p.Resume()
	if got, err := readLine(c, 5*time.Second); err != nil || got != "request" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
}

func TestDropClosesBothSides(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c := dial(t, p)
	mustRoundTrip(t, c, "hello")
	p.Drop()
	if _, err := readLine(c, 5*time.Second); err != io.EOF {
		t.Errorf("client read after Drop: %v, want io.EOF", err)
	}
	if err := <-s.ended; err != io.EOF {
		t.Errorf("server read after Drop: %v, want io.EOF", err)
	}
	if n := p.Stats().Active; n != 0 {
		t.Errorf("%d active connections after Drop", n)
	}
	mustRoundTrip(t, dial(t, p), "new connections work")
}

func TestResetAbortsBothSides(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c := dial(t, p)
	mustRoundTrip(t, c, "hello")
	p.Reset()
	if _, err := readLine(c, 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after Reset: %v, want ECONNRESET", err)
	}
	if err := <-s.ended; !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read after Reset: %v, want ECONNRESET", err)
	}
	mustRoundTrip(t, dial(t, p), "new connections work")
}

func TestResetOfAStalledConnection(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	c := dial(t, p)
	mustRoundTrip(t, c, "hello")
	p.Stall(faultproxy.Both)
	c.Write([]byte("held\n"))
	p.Reset()
	if _, err := readLine(c, 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after Reset: %v, want ECONNRESET", err)
	}
	p.Resume()
	mustRoundTrip(t, dial(t, p), "new connections work")
}

func TestRefuseResetsNewConnectionsOnly(t *testing.T) {
	s := newEchoServer(t)
	p := newProxy(t, s.ln.Addr().String())
	old := dial(t, p)
	mustRoundTrip(t, old, "hello")
	p.Refuse()
	if refused(p) == nil {
		t.Error("a connection made while refusing works")
	}
	mustRoundTrip(t, old, "current connections still work")
	p.Resume()
	mustRoundTrip(t, dial(t, p), "new connections work again")
}

func TestUnreachableTargetClosesTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := newProxy(t, target)
	if refused(p) == nil {
		t.Error("a connection to an unreachable target works")
	}
	waitFor(t, "the dial error", func() bool { return p.Stats().DialErrors == 1 })
}

// TestCloseEndsEverything closes a proxy with a stalled connection holding
// bytes, one waiting to reach the server and one idle: Close returns and no
// goroutine is left (TestMain checks).
func TestCloseEndsEverything(t *testing.T) {
	s := newEchoServer(t)
	p, err := faultproxy.New(s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	idle := dial(t, p)
	mustRoundTrip(t, idle, "hello")
	held := dial(t, p)
	mustRoundTrip(t, held, "hello")
	p.Stall(faultproxy.Both)
	held.Write([]byte("held\n"))
	waiting := dial(t, p)
	waiting.Write([]byte("waiting\n"))
	waitFor(t, "three connections", func() bool { return p.Stats().Active == 3 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range []net.Conn{idle, held, waiting} {
		if _, err := readLine(c, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read after Close: %v, want the connection closed", err)
		}
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy accepts connections after Close")
	}
}
