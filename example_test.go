package sqlpool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// The examples that print run on drivertest's fake driver, whose statements
// are a tiny command language ("SELECT x" echoes x, "CONNID" returns the
// physical connection's number, "SETTENANT x" and "TENANT" set and read a
// session variable). With a real driver only the driver and the SQL change.

func ExampleOpenDB() {
	// Any driver.Driver: &pq.Driver{}, &mysql.MySQLDriver{}, &sqlite3.SQLiteDriver{}...
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.NewConnector(d, "example", sqlpool.Config{
		MaxSize:        8,
		AcquireTimeout: 2 * time.Second,
	})
	if err != nil {
		log.Fatal(err) // the error names the Config field at fault
	}
	db := sqlpool.OpenDB(c) // database/sql keeps idle handles only; waiting happens in sqlpool
	defer db.Close()        // closes c too

	var answer int
	if err := db.QueryRowContext(context.Background(), "SELECT 42").Scan(&answer); err != nil {
		log.Fatal(err)
	}
	fmt.Println(answer)
	// Output: 42
}

func ExampleWrap() {
	// A driver.Connector you already have: mysql.NewConnector(cfg),
	// pq.NewConnector(dsn), pgx's stdlib.GetConnector(cfg)...
	base := drivertest.New(drivertest.Options{}).Connector("example")

	c, err := sqlpool.Wrap(base, sqlpool.Config{MaxSize: 4})
	if err != nil {
		log.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()

	ctx := context.Background()
	for range 3 { // one after another: the same physical connection each time
		var id int
		if err := db.QueryRowContext(ctx, "CONNID").Scan(&id); err != nil {
			log.Fatal(err)
		}
		fmt.Println("physical connection", id)
	}
	fmt.Println("dialed:", c.Stats().Created)
	// Output:
	// physical connection 1
	// physical connection 1
	// physical connection 1
	// dialed: 1
}

func ExampleRegister() {
	// Once per process, typically in an init function: like sql.Register,
	// Register panics when the name is taken (the check is there because
	// examples may run several times in one test binary).
	if !slices.Contains(sql.Drivers(), "sqlpool-example") {
		sqlpool.Register("sqlpool-example", drivertest.New(drivertest.Options{}), sqlpool.Config{MaxSize: 4})
	}

	// For tools that take only a driver name. Each sql.Open gets its own
	// pool; prefer NewConnector and OpenDB where you can.
	db, err := sql.Open("sqlpool-example", "dsn-of-the-wrapped-driver")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	var s string
	if err := db.QueryRow("SELECT hello").Scan(&s); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)
	// Output: hello
}

// Partitions route each operation by the tenant in its context. A connection
// is set up for a tenant (SetupSQL, with the tenant as $1 or ?) before it
// serves that tenant, and reset (ResetSQL) before it serves another one: here
// two tenants share one physical connection and each always sees its own
// session state.
func ExampleConfig_partitions() {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.NewConnector(d, "example", sqlpool.Config{
		MaxSize: 1,
		Routing: partition.RouterConfig{
			Template: partition.Config{ // every tenant's partition, created on first use
				MaxSize:  1,
				SetupSQL: "SETTENANT ?", // PostgreSQL: SELECT set_config('app.tenant', $1, false)
				ResetSQL: "SETTENANT none",
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()

	for _, tenant := range []string{"acme", "globex", "acme"} {
		ctx := sqlpool.WithTenant(context.Background(), tenant)
		var id int
		var session string
		if err := db.QueryRowContext(ctx, "CONNID").Scan(&id); err != nil {
			log.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "TENANT").Scan(&session); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: connection %d, session set up for %s\n", tenant, id, session)
	}
	acme := c.Stats().Partitions["acme"]
	fmt.Printf("acme: %d borrowings, %d fresh, %d relabeled, %d already labeled\n",
		acme.Acquires, acme.Fresh, acme.Relabels, acme.Labeled)
	// Output:
	// acme: connection 1, session set up for acme
	// globex: connection 1, session set up for globex
	// acme: connection 1, session set up for acme
	// acme: 4 borrowings, 1 fresh, 1 relabeled, 2 already labeled
}

// Row-level security on PostgreSQL: the policy reads the tenant that each
// partition's session setup sets, so a query tagged for one tenant sees only
// that tenant's rows. The role must not be a superuser or the table's owner
// (or the table needs FORCE ROW LEVEL SECURITY), or the policy does not apply.
//
//	CREATE TABLE orders (tenant text NOT NULL, id bigint, total numeric);
//	ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
//	CREATE POLICY by_tenant ON orders USING (tenant = current_setting('app.tenant', true));
//	GRANT SELECT, INSERT ON orders TO app;
func ExampleConfig_rowLevelSecurity() {
	c, err := sqlpool.NewConnector(&pq.Driver{}, "postgres://app@db.internal/shop", sqlpool.Config{
		MaxSize: 20,
		Routing: partition.RouterConfig{
			Template: partition.Config{
				MaxSize:          5, // no tenant takes more than 5 of the 20 connections
				StatementTimeout: 2 * time.Second,
				// $1 is the partition's name: the tenant. Read it in policies
				// directly or through a STABLE function, never an IMMUTABLE one.
				SetupSQL: "SELECT set_config('app.tenant', $1, false)",
				ResetSQL: "SELECT set_config('app.tenant', '', false)",
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()

	ctx := sqlpool.WithTenant(context.Background(), "acme")
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("acme's orders:", n) // only acme's rows, whatever the session served before

	// A transaction stays on its tenant's session: a statement in it whose
	// context is tagged for another tenant fails with ErrPartitionMismatch.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	other := sqlpool.WithTenant(context.Background(), "globex")
	if _, err := tx.ExecContext(other, "INSERT INTO orders VALUES ('globex', 1, 10)"); errors.Is(err, sqlpool.ErrPartitionMismatch) {
		fmt.Println("refused: start a transaction per tenant")
	}
}

// With every connection borrowed, a released connection goes to the longest
// waiter of the highest priority: here a High caller that arrived after a Low
// one is served first.
func ExampleWithPriority() {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.NewConnector(d, "example", sqlpool.Config{MaxSize: 1})
	if err != nil {
		log.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	ctx := context.Background()

	hold, err := db.BeginTx(ctx, nil) // takes the only connection
	if err != nil {
		log.Fatal(err)
	}

	var (
		mu     sync.Mutex
		served []string
		wg     sync.WaitGroup
	)
	wait := func(name string, p sqlpool.Priority) {
		defer wg.Done()
		tx, err := db.BeginTx(sqlpool.WithPriority(ctx, p), nil) // waits for the connection
		if err != nil {
			log.Fatal(err)
		}
		mu.Lock()
		served = append(served, name) // while holding the connection: in order of service
		mu.Unlock()
		tx.Rollback()
	}
	waitingCallers := func(n int) { // poll the pool until n callers wait
		for c.Stats().Waiting < n {
			time.Sleep(time.Millisecond)
		}
	}

	wg.Add(2)
	go wait("low", sqlpool.PriorityLow)
	waitingCallers(1)
	go wait("high", sqlpool.PriorityHigh)
	waitingCallers(2)

	hold.Rollback() // releases the connection
	wg.Wait()
	fmt.Println(served)
	// Output: [high low]
}

// Stats is one consistent snapshot of the pool, its partitions and its
// statement caches; database/sql's own DB.Stats counts handles and says little
// under sqlpool.
func ExampleConnector_Stats() {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.NewConnector(d, "example", sqlpool.Config{MaxSize: 4})
	if err != nil {
		log.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()

	acme := sqlpool.WithTenant(context.Background(), "acme")
	for range 3 {
		if _, err := db.ExecContext(acme, "SET greeting hello"); err != nil {
			log.Fatal(err)
		}
	}
	tx, err := db.BeginTx(acme, nil) // one borrowing still in progress
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()

	s := c.Stats()
	fmt.Printf("pool: %d of %d open, %d in use, %d idle, %d waiting\n", s.Size, s.MaxSize, s.InUse, s.Idle, s.Waiting)
	fmt.Printf("dialed: %d, timeouts: %d, queue full: %d\n", s.Created, s.Timeouts, s.QueueFull)
	fmt.Printf("acme: %d borrowings, %d in use\n", s.Partitions["acme"].Acquires, s.Partitions["acme"].InUse)
	fmt.Println("statement cache:", s.StatementCacheMode)
	// Output:
	// pool: 1 of 4 open, 1 in use, 0 idle, 0 waiting
	// dialed: 1, timeouts: 0, queue full: 0
	// acme: 4 borrowings, 1 in use
	// statement cache: explicit
}
