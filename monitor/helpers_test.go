package monitor_test

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

// clock is a manual clock for Recorders.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// xssName is a partition name that would run script if parsed as HTML.
const xssName = "<script>alert(1)</script>"

// sampleReport is a small, fixed report: partitions acme and globex, a
// leak, a closed connection or two.
func sampleReport() monitor.Report {
	c := newClock(at1430)
	r := monitor.NewRecorderWithClock(monitor.RecorderConfig{}, c.Now)
	acme := r.Partition("acme")
	for range 3 {
		acme.RecordAcquire(2*time.Millisecond, monitor.ResultSuccess)
	}
	acme.RecordAcquire(time.Second, monitor.ResultTimeout)
	acme.RecordRelease(10 * time.Millisecond)
	acme.RecordRelease(30 * time.Millisecond)
	for _, hit := range []bool{true, true, true, false} {
		acme.RecordStatementCache(hit)
	}
	acme.RecordLeak()
	globex := r.Partition("globex")
	globex.RecordAcquire(0, monitor.ResultSuccess)
	globex.RecordAcquire(0, monitor.ResultQueueFull)
	c.Advance(2 * time.Second)
	return monitor.Report{
		Pool: monitor.PoolState{
			MinSize: 2, MaxSize: 10, Size: 4, Idle: 1, InUse: 3, Waiting: 1,
			Created: 5, ConnectErrors: 1,
			CircuitOpen: true, CircuitOpens: 2, CircuitRefused: 7,
			Closed: map[string]int64{"idle": 1, "lifetime": 0},
			Partitions: []monitor.PartitionState{
				{Name: "acme", Idle: 1, InUse: 2, Waiting: 1},
				{Name: "globex", InUse: 1},
			},
			Config: map[string]any{"MaxSize": 10, "AcquireTimeout": "1s"},
		},
		Metrics: r.Snapshot(),
		Leaks: []monitor.Leak{{
			Partition: "acme", Kind: monitor.LeakTx, AcquiredAt: at1430,
			Held: monitor.Duration(6 * time.Minute), Stack: "goroutine 7 [running]:\nmain.handler()\n\t/app/main.go:42",
		}},
	}
}

// busyReport is five minutes of made-up traffic on three partitions, one
// of them named like a script, with two leaks: the dashboard's test data.
func busyReport() monitor.Report {
	c := newClock(at1430)
	r := monitor.NewRecorderWithClock(monitor.RecorderConfig{}, c.Now)
	rnd := rand.New(rand.NewPCG(1, 2))
	parts := []struct {
		p     *monitor.PartitionRecorder
		share float64
	}{{r.Partition("acme"), 0.55}, {r.Partition("globex"), 0.3}, {r.Partition(xssName), 0.15}}
	borrowed := make([]int, len(parts))
	for s := range 300 {
		c.Advance(time.Second)
		load := 40 + 25*math.Sin(float64(s)/30) + 8*rnd.Float64()
		target := 6 + 4*math.Sin(float64(s)/45)
		for i, pt := range parts {
			n := int(load * pt.share)
			for range n {
				wait := time.Duration(rnd.ExpFloat64() * float64(300*time.Microsecond))
				if s > 180 && s < 200 { // a burst of contention
					wait *= 40
				}
				pt.p.RecordAcquire(wait, monitor.ResultSuccess)
				pt.p.RecordStatementCache(rnd.Float64() < 0.92)
			}
			if s > 185 && s < 195 && i == 1 {
				for range 4 {
					pt.p.RecordAcquire(2*time.Second, monitor.ResultTimeout)
				}
			}
			want := int(target * pt.share * 2)
			releases := n + borrowed[i] - want
			for range max(releases, 0) {
				hold := (2 + 20*rnd.ExpFloat64()) * float64(i+1) * float64(time.Millisecond)
				pt.p.RecordRelease(time.Duration(hold))
			}
			borrowed[i] += n - max(releases, 0)
		}
		r.Snapshot()
	}
	parts[1].p.RecordLeak()
	parts[2].p.RecordLeak()
	snap := r.Snapshot()
	rep := monitor.Report{
		Pool: monitor.PoolState{
			MinSize: 4, MaxSize: 24, Dialing: 0, Waiting: 2, Queued: 1,
			Created: 31, ConnectErrors: 2,
			Closed: map[string]int64{"idle": 9, "lifetime": 4, "errors": 1, "validation": 1},
			Config: map[string]any{"MinSize": 4, "MaxSize": 24, "AcquireTimeout": "2s", "LeakThreshold": "5m"},
		},
		Metrics: snap,
		Leaks: []monitor.Leak{
			{Partition: "globex", Kind: monitor.LeakRows, AcquiredAt: c.Now().Add(-7 * time.Minute),
				Held:  monitor.Duration(7 * time.Minute),
				Stack: "goroutine 42 [running]:\nexample.com/app/report.(*Service).Monthly()\n\t/src/app/report/monthly.go:88 +0x1f4"},
			{Partition: xssName, Kind: monitor.LeakTx, AcquiredAt: c.Now().Add(-5*time.Minute - 12*time.Second),
				Held: monitor.Duration(5*time.Minute + 12*time.Second)},
		},
	}
	idle := []int{3, 2, 1}
	for i, m := range snap.Partitions {
		ps := monitor.PartitionState{Name: m.Partition, InUse: int(m.Borrowed), Idle: idle[i%3]}
		if m.Partition == "globex" {
			ps.Waiting = 2
		}
		rep.Pool.Partitions = append(rep.Pool.Partitions, ps)
		rep.Pool.InUse += ps.InUse
		rep.Pool.Idle += ps.Idle
	}
	rep.Pool.Size = rep.Pool.InUse + rep.Pool.Idle
	return rep
}
