package sqlpool_test

import (
	"context"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

// TestAConnectionParkedInAHandleServesAnotherHandle parks the only
// connection in one logical handle (an *sql.Conn closed after its query)
// and checks that another handle's query takes it from there, at once,
// rather than waiting for a connection that nobody will release.
func TestAConnectionParkedInAHandleServesAnotherHandle(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, AcquireTimeout: 5 * time.Second})
	ctx := context.Background()
	a, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.Conn(ctx) // a second handle: a still holds the first
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "SET k v"); err != nil {
		t.Fatal(err)
	}
	a.Close() // a's handle parks the connection
	if s := c.Stats(); s.Idle != 1 || s.InUse != 0 {
		t.Fatalf("parked: Idle %d InUse %d, want 1 0", s.Idle, s.InUse)
	}
	ctx2, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := b.ExecContext(ctx2, "SET k v"); err != nil {
		t.Fatalf("the other handle's query: %v; want the parked connection", err)
	}
	b.Close()
	before := c.Stats().Acquires
	for range 10 { // the same handle again and again: retaken, counted
		if _, err := db.ExecContext(ctx, "SET k v"); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.Created != 1 || d.Stats().Connects != 1 {
		t.Fatalf("%d connections dialed, want 1", s.Created)
	}
	if s.Acquires-before != 10 || s.Partitions["default"].Acquires != 12 || s.Partitions["default"].InUse != 0 {
		t.Fatalf("pool Acquires +%d, default partition %+v; want +10, and 12 borrowings, none in progress", s.Acquires-before, s.Partitions["default"])
	}
}
