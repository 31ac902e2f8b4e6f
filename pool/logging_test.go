package pool_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Background dials (MinSize) that fail are logged once per run of failures,
// and the recovery once, to Config.Logger.
func TestBackgroundDialFailuresAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		f := &factory{}
		f.mu.Lock()
		f.connectErr = errors.New("server down")
		f.mu.Unlock()
		p := newPool(t, f, pool.Config{MinSize: 1, MaintenanceInterval: time.Second,
			Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		time.Sleep(5 * time.Second) // five maintenance passes, on the bubble's fake clock
		synctest.Wait()
		if n := strings.Count(buf.String(), "background dial failed"); n != 1 {
			t.Errorf("%d failure records over five failed passes, want 1:\n%s", n, buf.String())
		}
		if !strings.Contains(buf.String(), "server down") {
			t.Errorf("the record does not carry the dial's error:\n%s", buf.String())
		}
		f.mu.Lock()
		f.connectErr = nil
		f.mu.Unlock()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !strings.Contains(buf.String(), "succeed again") {
			t.Errorf("no record of the recovery:\n%s", buf.String())
		}
		if s := p.Stats(); s.Size != 1 {
			t.Errorf("size %d after recovery, want MinSize 1", s.Size)
		}
	})
}
