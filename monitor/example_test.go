package monitor_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

func ExampleRecorder() {
	rec := monitor.NewRecorder(monitor.RecorderConfig{})
	acme := rec.Partition("acme") // look up once, record often

	acme.RecordAcquire(2*time.Millisecond, monitor.ResultSuccess)
	acme.RecordStatementCache(true)
	acme.RecordRelease(15 * time.Millisecond)
	acme.RecordAcquire(time.Second, monitor.ResultTimeout)

	s := rec.Snapshot()
	fmt.Println("attempts:", s.Total.Attempts, "successes:", s.Total.Successes, "timeouts:", s.Total.Timeouts)
	fmt.Println("max wait:", s.Total.Wait.Max, "borrowed:", s.Total.Borrowed)
	// Output:
	// attempts: 2 successes: 1 timeouts: 1
	// max wait: 1s borrowed: 0
}

func ExampleNewHandler() {
	rec := monitor.NewRecorder(monitor.RecorderConfig{})
	report := func() monitor.Report {
		return monitor.Report{
			Pool:    monitor.PoolState{MaxSize: 10, Size: 3, InUse: 2, Idle: 1},
			Metrics: rec.Snapshot(),
		}
	}
	h := monitor.NewHandler(monitor.HandlerConfig{Report: report})
	// Serve it with http.Handle("/debug/sqlpool/", http.StripPrefix("/debug/sqlpool", h)).

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/size", nil))
	fmt.Print(w.Body)
	// Output:
	// {
	//   "size": 3,
	//   "min_size": 0,
	//   "max_size": 10,
	//   "idle": 1,
	//   "in_use": 2,
	//   "dialing": 0,
	//   "utilization": 0.2
	// }
}
