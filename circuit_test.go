package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// TestCircuitBreakerFailsQueriesFastAndRecovers takes the database down
// (every connection killed, every dial failing with an error that wraps
// driver.ErrBadConn, the worst case for database/sql's retries) and checks,
// through database/sql, that once the circuit opens queries fail at once
// with ErrCircuitOpen, never driver.ErrBadConn, and that queries succeed
// again by themselves once the database is back. It logs the refusal
// latency and the time to recover.
func TestCircuitBreakerFailsQueriesFastAndRecovers(t *testing.T) {
	const breakFor = 50 * time.Millisecond
	db, c, d := fakeDB(t, drivertest.Options{ConnectLatency: time.Millisecond},
		sqlpool.Config{MaxSize: 4, BreakAfter: 3, BreakFor: breakFor})
	ctx := context.Background()
	queryInt(t, ctx, db, "SELECT 1")

	down := fmt.Errorf("dial tcp 10.0.0.7:5432: connect: connection refused (%w)", driver.ErrBadConn)
	d.SetFaults(drivertest.Faults{ConnectErr: down})
	d.KillAll()
	// The failures that open the circuit: the dead idle connection, then
	// failed dials, each an error of its own.
	opened := false
	for i := 0; i < 10 && !opened; i++ {
		_, err := db.ExecContext(ctx, "SELECT 1")
		switch {
		case err == nil:
			t.Fatal("a query succeeded with the database down")
		case errors.Is(err, driver.ErrBadConn):
			t.Fatalf("query %d: %v matches driver.ErrBadConn", i, err)
		}
		opened = errors.Is(err, sqlpool.ErrCircuitOpen)
	}
	if !opened {
		t.Fatalf("the circuit did not open: %+v", c.Stats().Stats)
	}

	const n = 200
	refusals := make([]time.Duration, 0, n)
	dialsBefore := d.Stats().ConnectErrors
	began := time.Now()
	for range n {
		start := time.Now()
		_, err := db.ExecContext(ctx, "SELECT 1")
		refusals = append(refusals, time.Since(start))
		var ce *sqlpool.CircuitOpenError
		if !errors.Is(err, sqlpool.ErrCircuitOpen) || !errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) {
			t.Fatalf("err = %v, want ErrCircuitOpen and not driver.ErrBadConn", err)
		}
		if ce.BreakFor != breakFor || !errors.Is(ce.LastErr, down) {
			t.Fatalf("CircuitOpenError %+v: want BreakFor %v and the last dial error", ce, breakFor)
		}
	}
	elapsed := time.Since(began)
	// Only the probes dial meanwhile, one per BreakFor at most.
	if dials, most := d.Stats().ConnectErrors-dialsBefore, int64(elapsed/breakFor)+1; dials > most {
		t.Errorf("%d dials during %v of refusals, want at most %d (probes only)", dials, elapsed, most)
	}
	slices.Sort(refusals)
	t.Logf("refusal latency via database/sql over %d queries: median %v, max %v", n, refusals[n/2], refusals[n-1])
	s := c.Stats()
	if !s.CircuitOpen || s.CircuitOpens != 1 || s.CircuitRefused < n {
		t.Errorf("circuit open %v, opens %d, refused %d; want open, 1, at least %d", s.CircuitOpen, s.CircuitOpens, s.CircuitRefused, n)
	}

	d.SetFaults(drivertest.Faults{}) // the database is back
	back := time.Now()
	deadline := back.Add(10 * time.Second)
	var err error
	for {
		if _, err = db.ExecContext(ctx, "SELECT 1"); err == nil {
			break
		}
		if !errors.Is(err, sqlpool.ErrCircuitOpen) {
			t.Fatalf("while recovering: %v, want ErrCircuitOpen or success", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no query succeeded within 10s of the database coming back: %v", err)
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
	t.Logf("first successful query %v after the database came back (BreakFor %v)", time.Since(back), breakFor)
	if s := c.Stats(); s.CircuitOpen || s.CircuitOpens != 1 {
		t.Errorf("after recovery: circuit open %v, opens %d; want closed, 1", s.CircuitOpen, s.CircuitOpens)
	}
	for range 10 {
		queryInt(t, ctx, db, "SELECT 1")
	}
}

func TestCircuitBreakerConfigIsValidated(t *testing.T) {
	for _, tc := range []struct {
		cfg  sqlpool.Config
		want string
	}{
		{sqlpool.Config{BreakAfter: -1}, "BreakAfter"},
		{sqlpool.Config{BreakAfter: 1, BreakFor: -time.Second}, "BreakFor"},
	} {
		_, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("x"), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Wrap(%+v) err = %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}

// openCircuit takes d's database down and queries db until the circuit
// opens, then once more: at least one refusal.
func openCircuit(t *testing.T, db *sql.DB, d *drivertest.Driver) {
	t.Helper()
	d.SetFaults(drivertest.Faults{ConnectErr: errors.New("connection refused")})
	d.KillAll()
	for range 10 {
		if _, err := db.ExecContext(context.Background(), "SELECT 1"); errors.Is(err, sqlpool.ErrCircuitOpen) {
			return
		}
	}
	t.Fatal("the circuit did not open")
}

func TestCircuitBreakerStateReachesTheJSONAndCSVExports(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 2, BreakAfter: 1, BreakFor: time.Hour})
	queryInt(t, context.Background(), db, "SELECT 1")
	openCircuit(t, db, d)
	refused := c.Stats().CircuitRefused
	for _, tc := range []struct{ path, want string }{
		{"/api/stats", `"circuit_open": true`},
		{"/api/stats", `"circuit_opens": 1,`},
		{"/api/stats", fmt.Sprintf(`"circuit_refused": %d`, refused)},
		{"/api/export?format=csv", "circuit_open,,,1\n"},
		{"/api/export?format=csv", "circuit_opens_total,,,1\n"},
		{"/api/export?format=csv", fmt.Sprintf("circuit_refused_total,,,%d\n", refused)},
		{"/api/config", `"BreakFor": "1h0m0s"`},
	} {
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d, lacks %s:\n%.2000s", tc.path, rec.Code, tc.want, rec.Body)
		}
	}
}
