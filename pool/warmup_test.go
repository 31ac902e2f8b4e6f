package pool_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// dialTime is how long a slowFactory's dial takes on the fake clock.
const dialTime = 100 * time.Millisecond

// slowFactory is a factory whose dials take dialTime.
type slowFactory struct{ *factory }

func (f slowFactory) Create(ctx context.Context) (*fakeConn, error) {
	t := time.NewTimer(dialTime)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return f.factory.Create(ctx)
}

// newSlowPool returns a pool of f's connections, each dialed in dialTime,
// closed with the test.
func newSlowPool(t *testing.T, f *factory, cfg pool.Config) *pool.Pool[*fakeConn] {
	t.Helper()
	p, err := pool.New[*fakeConn](slowFactory{f}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// simDays drives a simulated day on a synctest bubble's fake clock, which
// starts at midnight UTC.
type simDays struct {
	t        *testing.T
	midnight time.Time
}

func newSimDays(t *testing.T) simDays {
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour)
	if !now.Equal(midnight) {
		t.Fatalf("the bubble's clock starts at %v, not at midnight UTC", now)
	}
	return simDays{t, midnight}
}

// at advances the fake clock to the time of day tod of day day (0 is the
// first), and lets the pool's goroutines settle.
func (s simDays) at(day int, tod time.Duration) {
	s.t.Helper()
	d := time.Until(s.midnight.Add(time.Duration(day)*24*time.Hour + tod))
	if d < 0 {
		s.t.Fatalf("day %d %v is %v in the past", day, tod, -d)
	}
	time.Sleep(d)
	synctest.Wait()
}

// hm returns the time of day h:m.
func hm(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

// burst starts n borrowers at once, each holding its connection for hold,
// and returns how many of their acquisitions waited for a dial (took fake
// time: nothing else in these tests does).
func burst(t *testing.T, p *pool.Pool[*fakeConn], n int, hold time.Duration) int {
	t.Helper()
	var waited atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			start := time.Now()
			c, err := p.Acquire(context.Background(), pool.PriorityNormal)
			if err != nil {
				t.Error(err)
				return
			}
			if time.Since(start) > 0 {
				waited.Add(1)
			}
			time.Sleep(hold)
			c.Release()
		})
	}
	wg.Wait()
	synctest.Wait()
	return int(waited.Load())
}

// warmupConfig is the configuration of these tests: MinSize 1, hours of
// day in UTC, a maintenance pass a minute.
func warmupConfig(on bool) pool.Config {
	return pool.Config{MinSize: 1, MaxSize: 10, MaintenanceInterval: time.Minute,
		PredictiveWarmup: on, WarmupLocation: time.UTC}
}

func TestPredictiveWarmupOpensConnectionsBeforeABusyHour(t *testing.T) {
	const borrowers = 8
	waited := map[bool][2]int{} // by PredictiveWarmup: the acquisitions that waited for a dial, day 1 and day 2
	for _, on := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			s := newSimDays(t)
			f := &factory{}
			p := newSlowPool(t, f, warmupConfig(on))
			var w [2]int
			for day := range 2 {
				s.at(day, hm(8, 49)+30*time.Second)
				st := p.Stats()
				if st.Size != 1 {
					t.Errorf("on %v, day %d, 08:49:30 (before the lead): size %d, want MinSize 1", on, day+1, st.Size)
				}
				s.at(day, hm(8, 59)+30*time.Second)
				st = p.Stats()
				wantSize, wantTarget := 1, 1
				if on && day == 1 {
					wantSize, wantTarget = borrowers, borrowers
				}
				if !on {
					wantTarget = 0
				}
				if st.Size != wantSize || st.Idle != wantSize || st.WarmupTarget != wantTarget {
					t.Errorf("on %v, day %d, 08:59:30: size %d, idle %d, warm-up target %d; want %d open and idle, target %d",
						on, day+1, st.Size, st.Idle, st.WarmupTarget, wantSize, wantTarget)
				}
				s.at(day, hm(9, 0)+30*time.Second)
				w[day] = burst(t, p, borrowers, 20*time.Second)
				idle := p.Stats().Closed[pool.CloseIdle]

				// While the target holds, the idle reaper keeps them,
				// idle past IdleTimeout as they are.
				s.at(day, hm(9, 30)+30*time.Second)
				if st := p.Stats(); on && day == 1 && (st.Size != borrowers || st.Closed[pool.CloseIdle] != idle) {
					t.Errorf("day 2, 09:30:30, target %d: size %d, %d closed idle since 09:01; want %d and none",
						st.WarmupTarget, st.Size, st.Closed[pool.CloseIdle]-idle, borrowers)
				}
				// After the hour, they age out by IdleTimeout: those
				// dialed last (replacing connections past MaxLifetime,
				// while the target held) by 10:10.
				s.at(day, hm(10, 10)+30*time.Second)
				if st := p.Stats(); st.Size != 1 || (on && st.WarmupTarget != 1) {
					t.Errorf("on %v, day %d, 10:10:30: size %d, target %d; want 1 and 1", on, day+1, st.Size, st.WarmupTarget)
				}
			}
			if prof := p.Profile(); on && prof[9] != borrowers {
				t.Errorf("profile %v: hour 9 is %d, want %d", prof, prof[9], borrowers)
			}
			waited[on] = w
			if err := p.CheckCounts(); err != nil {
				t.Error(err)
			}
		})
	}
	off, on := waited[false], waited[true]
	t.Logf("acquisitions (of %d at 09:00:30) that waited for a dial: day 1: off %d, on %d; day 2: off %d, on %d",
		borrowers, off[0], on[0], off[1], on[1])
	if off[0] != borrowers-1 || on[0] != borrowers-1 || off[1] != borrowers-1 {
		t.Errorf("waited for a dial: %v off, %v on; want %d on day 1, and on day 2 without warm-up", off, on, borrowers-1)
	}
	if on[1] != 0 {
		t.Errorf("%d acquisitions waited for a dial on day 2 with warm-up, want 0", on[1])
	}
}

func TestPredictiveWarmupLeadSaysWhenConnectionsOpen(t *testing.T) {
	for _, tc := range []struct {
		lead  time.Duration
		opens time.Duration // time of day the target rises
	}{
		{0, hm(8, 50)}, // DefaultWarmupLead
		{time.Minute, hm(8, 59)},
		{2 * time.Hour, hm(7, 0)},
		{5 * time.Hour, hm(4, 0)},
	} {
		t.Run(tc.lead.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSimDays(t)
				cfg := warmupConfig(true)
				cfg.WarmupLead = tc.lead
				p := newSlowPool(t, &factory{}, cfg)
				s.at(0, hm(9, 0)+30*time.Second)
				burst(t, p, 4, 20*time.Second)
				s.at(0, hm(10, 0)+30*time.Second) // hour 9 recorded
				before, after := 24*time.Hour+tc.opens-30*time.Second, 24*time.Hour+tc.opens+30*time.Second
				s.at(0, before)
				if st := p.Stats(); st.WarmupTarget != 1 || st.Size != 1 {
					t.Errorf("lead %v, %v before: target %d, size %d; want 1 and 1", tc.lead, 30*time.Second, st.WarmupTarget, st.Size)
				}
				s.at(0, after)
				if st := p.Stats(); st.WarmupTarget != 4 || st.Size != 4 {
					t.Errorf("lead %v, %v after: target %d, size %d; want 4 and 4", tc.lead, 30*time.Second, st.WarmupTarget, st.Size)
				}
			})
		})
	}
}

func TestPredictiveWarmupTargetIsCappedAtMaxSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimDays(t)
		p := newSlowPool(t, &factory{}, warmupConfig(true))
		s.at(0, hm(9, 0)+30*time.Second)
		burst(t, p, 8, 20*time.Second)
		s.at(0, hm(10, 0)+30*time.Second)
		if err := p.Resize(5); err != nil {
			t.Fatal(err)
		}
		s.at(1, hm(9, 0))
		if st := p.Stats(); st.WarmupTarget != 5 || st.Size != 5 {
			t.Errorf("MaxSize 5, 8 borrowers the day before: target %d, size %d; want 5 and 5", st.WarmupTarget, st.Size)
		}
	})
}

func TestPredictiveWarmupIsOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimDays(t)
		f := &factory{}
		// No MaxLifetime: no dial but those of the borrowers.
		p := newSlowPool(t, f, pool.Config{MinSize: 1, MaintenanceInterval: time.Minute, MaxLifetime: -1})
		if cfg := p.Config(); cfg.PredictiveWarmup || cfg.WarmupLead != pool.DefaultWarmupLead || cfg.WarmupLocation != time.Local {
			t.Errorf("defaults: PredictiveWarmup %v, WarmupLead %v, WarmupLocation %v; want false, %v, Local",
				cfg.PredictiveWarmup, cfg.WarmupLead, cfg.WarmupLocation, pool.DefaultWarmupLead)
		}
		s.at(0, hm(9, 0)+30*time.Second)
		burst(t, p, 8, 20*time.Second)
		s.at(0, hm(12, 0))
		created := p.Stats().Created
		s.at(1, hm(9, 0)+30*time.Second)
		st := p.Stats()
		if st.Created != created || st.Size != 1 || st.WarmupTarget != 0 {
			t.Errorf("day 2, 09:00:30: %d dials since day 1, size %d, target %d; want no dial, 1, 0",
				st.Created-created, st.Size, st.WarmupTarget)
		}
		if prof := p.Profile(); prof != [24]int{} {
			t.Errorf("profile %v with PredictiveWarmup off, want none", prof)
		}
	})
}

// TestPredictiveWarmupForgetsAnHourThatStopsBeingBusy checks that an hour
// busy once fades by half each quiet day, and that the pool's own work (warm-up's
// dials, keepalive pings of the connections it opened) never counts as
// borrowers.
func TestPredictiveWarmupForgetsAnHourThatStopsBeingBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimDays(t)
		p := newSlowPool(t, &factory{}, warmupConfig(true))
		s.at(0, hm(9, 0)+30*time.Second)
		burst(t, p, 8, 20*time.Second)
		for day, want := range []int{8, 4, 2, 1, 1} { // the target at 09:00 of days 2 to 6 (1 is MinSize)
			s.at(day+1, hm(9, 0))
			if st := p.Stats(); st.WarmupTarget != want || st.Size != want {
				t.Errorf("day %d, 09:00: target %d, size %d; want %d", day+2, st.WarmupTarget, st.Size, want)
			}
		}
		if prof := p.Profile(); prof != [24]int{} {
			t.Errorf("profile %v after five quiet days, want all 0", prof)
		}
	})
}

func TestPredictiveWarmupConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		lead    time.Duration
		wantErr string // "" for valid
	}{
		{-time.Minute, "WarmupLead is -1m0s, must not be negative"},
		{24 * time.Hour, "WarmupLead is 24h0m0s, must be less than 24h"},
		{48 * time.Hour, "must be less than 24h"},
		{24*time.Hour - time.Nanosecond, ""},
		{time.Hour, ""},
	} {
		err := pool.Config{PredictiveWarmup: true, WarmupLead: tc.lead}.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("WarmupLead %v: %v, want valid", tc.lead, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("WarmupLead %v: error %v, want one containing %q", tc.lead, err, tc.wantErr)
		}
	}
	if _, err := pool.New[*fakeConn](&factory{}, pool.Config{WarmupLead: 25 * time.Hour}); err == nil {
		t.Error("New accepted a WarmupLead of 25h")
	}
}
