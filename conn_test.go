package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/mattn/go-sqlite3"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
)

func TestReleasedHandleGivesItsPhysicalConnectionBack(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	ctx := context.Background()
	queryInt(t, ctx, db, "SELECT 1")
	if s := c.Stats(); s.InUse != 0 || s.Idle != 1 {
		t.Fatalf("after a query: in use %d, idle %d; want 0 and 1", s.InUse, s.Idle)
	}
	rows, err := db.QueryContext(ctx, "ROWS 3")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.InUse != 1 {
		t.Errorf("open Rows: in use %d, want 1", s.InUse)
	}
	rows.Close()
	if s := c.Stats(); s.InUse != 0 || s.Size != 1 {
		t.Errorf("after Rows.Close: in use %d, size %d; want 0 and 1", s.InUse, s.Size)
	}
}

// TestRoutingSurvivesDatabaseSQLsOwnCap runs two tenants through a DB whose
// user capped database/sql's pool: database/sql then queues callers itself and
// dials with a background context, so only binding on the operation routes
// every acquisition to its caller's partition.
func TestRoutingSurvivesDatabaseSQLsOwnCap(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{Latency: 100 * time.Microsecond}, sqlpool.Config{MaxSize: 4})
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	const perWorker = 50
	var wg sync.WaitGroup
	for g := range 16 {
		tenant := []string{"a", "b"}[g%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := sqlpool.WithTenant(context.Background(), tenant)
			for range perWorker {
				if _, err := db.ExecContext(ctx, "SETTENANT "+tenant); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s := c.Stats()
	for _, p := range []string{"a", "b"} {
		if got := s.Partitions[p].Acquires; got != 8*perWorker {
			t.Errorf("partition %s: %d acquisitions, want %d", p, got, 8*perWorker)
		}
	}
	if got := s.Partitions[sqlpool.DefaultPartition].Acquires; got != 0 {
		t.Errorf("%d acquisitions routed to the default partition, want 0", got)
	}
}

func TestTransactionAndConnPinTheSession(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	ctx := context.Background()
	a := sqlpool.WithTenant(ctx, "a")
	b := sqlpool.WithTenant(ctx, "b")
	// Two idle connections, so a moved session would show.
	c1, _ := db.Conn(a)
	c2, _ := db.Conn(a)
	queryInt(t, a, c1, "CONNID")
	queryInt(t, a, c2, "CONNID")
	c1.Close()
	c2.Close()

	tx, err := db.BeginTx(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := queryInt(t, a, tx, "CONNID")
	var n int64
	if err := tx.QueryRowContext(b, "CONNID").Scan(&n); !errors.Is(err, sqlpool.ErrPartitionMismatch) {
		t.Errorf("tenant b's statement in tenant a's Tx: %v (ran on %d), want ErrPartitionMismatch", err, n)
	}
	if second := queryInt(t, ctx, tx, "CONNID"); second != first { // untagged: the Tx's own
		t.Errorf("an untagged statement in a Tx ran on connection %d, want %d", second, first)
	}
	if s := c.Stats(); s.InUse != 1 {
		t.Errorf("in use during Tx = %d, want 1", s.InUse)
	}
	tx.Rollback()

	conn, err := db.Conn(a)
	if err != nil {
		t.Fatal(err)
	}
	first = queryInt(t, ctx, conn, "CONNID") // binds to a, db.Conn's context
	if err := conn.QueryRowContext(b, "CONNID").Scan(&n); !errors.Is(err, sqlpool.ErrPartitionMismatch) {
		t.Errorf("tenant b's statement on tenant a's sql.Conn: %v (ran on %d), want ErrPartitionMismatch", err, n)
	}
	if second := queryInt(t, a, conn, "CONNID"); second != first {
		t.Errorf("a's statement on a's sql.Conn ran on connection %d, want %d", second, first)
	}
	conn.Close()
	s := c.Stats()
	if s.InUse != 0 {
		t.Errorf("in use after Conn.Close = %d, want 0", s.InUse)
	}
	if got := s.Partitions[sqlpool.DefaultPartition].Acquires; got != 0 {
		t.Errorf("%d acquisitions in the default partition, want 0: db.Conn(a) must bind to a", got)
	}
}

func TestConnBindsToItsContextsPartition(t *testing.T) {
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	a := sqlpool.WithTenant(context.Background(), "a")
	b := sqlpool.WithTenant(context.Background(), "b")
	conn, err := db.Conn(a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int64
	// The first statement, tagged for another tenant, must not bind a's
	// sql.Conn to b.
	if err := conn.QueryRowContext(b, "CONNID").Scan(&n); !errors.Is(err, sqlpool.ErrPartitionMismatch) {
		t.Errorf("tenant b's first statement on tenant a's sql.Conn: %v, want ErrPartitionMismatch", err)
	}
}

func TestAcquireTimeoutIsNotRetriedAsABadConnection(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, AcquireTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	held, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	queryInt(t, ctx, held, "SELECT 1") // bind the only connection
	_, err = db.ExecContext(ctx, "SELECT 1")
	if !errors.Is(err, sqlpool.ErrAcquireTimeout) {
		t.Fatalf("err = %v, want ErrAcquireTimeout", err)
	}
	if errors.Is(err, driver.ErrBadConn) {
		t.Error("an acquisition error matches driver.ErrBadConn")
	}
	var te *sqlpool.TimeoutError
	if !errors.As(err, &te) || te.InUse != 1 || te.MaxSize != 1 {
		t.Errorf("TimeoutError = %+v, want the pool's state", te)
	}
	if n := c.Stats().Timeouts; n != 1 {
		t.Errorf("%d timeouts for one operation, want 1 (database/sql retried it)", n)
	}
}

func TestCallerDeadlineMatchesBothErrors(t *testing.T) {
	db, _, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1})
	held, _ := db.Conn(context.Background())
	defer held.Close()
	queryInt(t, context.Background(), held, "SELECT 1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := db.ExecContext(ctx, "SELECT 1")
	if !errors.Is(err, sqlpool.ErrAcquireTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrAcquireTimeout and context.DeadlineExceeded", err)
	}
}

func TestQueueFullFailsAtOnce(t *testing.T) {
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1, MaxWaitQueue: 1})
	held, _ := db.Conn(context.Background())
	defer held.Close()
	queryInt(t, context.Background(), held, "SELECT 1")
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		db.ExecContext(ctx, "SELECT 1")
	}()
	waitFor(t, "a waiter", func() bool { return c.Stats().Waiting == 1 })
	if _, err := db.ExecContext(context.Background(), "SELECT 1"); !errors.Is(err, sqlpool.ErrQueueFull) {
		t.Errorf("err = %v, want ErrQueueFull", err)
	}
	cancel()
	<-waiting
}

func TestConnectErrorsAreNeverBadConnections(t *testing.T) {
	db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	d.SetFaults(drivertest.Faults{ConnectErr: driver.ErrBadConn})
	_, err := db.ExecContext(context.Background(), "SELECT 1")
	if err == nil || errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("err = %v, want a connect error that is not driver.ErrBadConn", err)
	}
	if n := d.Stats().ConnectErrors; n != 1 {
		t.Errorf("%d dials for one operation, want 1", n)
	}
}

// TestDatabaseRestartIsInvisible kills every pooled connection at once, as a
// database restart does: the next operations must all succeed.
func TestDatabaseRestartIsInvisible(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 4, MaintenanceInterval: time.Hour})
	ctx := context.Background()
	var conns []*sql.Conn
	for range 4 {
		cn, _ := db.Conn(ctx)
		queryInt(t, ctx, cn, "SELECT 1")
		conns = append(conns, cn)
	}
	for _, cn := range conns {
		cn.Close()
	}
	d.KillAll()
	for i := range 4 {
		if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatalf("operation %d after the restart: %v", i, err)
		}
	}
	if s := c.Stats(); s.Closed[0]+s.Closed[2]+s.Closed[3] < 1 {
		t.Errorf("no connection closed after the restart: %+v", s.Closed)
	}
}

func TestStatementFallsBackToTheConnectionsNamedValueChecker(t *testing.T) {
	opts := drivertest.Options{Disable: drivertest.StmtNamedValueChecker}
	bare, _ := bareDB(t, opts)
	wrapped, _, _ := fakeDB(t, opts, sqlpool.Config{})
	for name, db := range map[string]*sql.DB{"bare": bare, "sqlpool": wrapped} {
		stmt, err := db.Prepare("SELECT ?")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		// database/sql's default converter rejects Point; the driver's
		// connection-level checker accepts it.
		if err := stmt.QueryRow(drivertest.Point{X: 1, Y: 2}).Scan(&got); err != nil || got != "(1,2)" {
			t.Errorf("%s: prepared SELECT ? with a Point = %q, %v; want (1,2)", name, got, err)
		}
		if err := db.QueryRow("SELECT ?", drivertest.Point{X: 3, Y: 4}).Scan(&got); err != nil || got != "(3,4)" {
			t.Errorf("%s: SELECT ? with a Point = %q, %v; want (3,4)", name, got, err)
		}
		stmt.Close()
	}
}

func TestWithoutAnyCheckerArgumentsGetDatabaseSQLsDefaultConversion(t *testing.T) {
	opts := drivertest.Options{Disable: drivertest.StmtNamedValueChecker | drivertest.NamedValueChecker}
	wrapped, _, _ := fakeDB(t, opts, sqlpool.Config{})
	if _, err := wrapped.Exec("SELECT ?", drivertest.Point{}); err == nil {
		t.Error("a Point was accepted with no checker; database/sql's default converter rejects it")
	}
}

func TestStatementWithoutStmtExecContextUsesLegacyExec(t *testing.T) {
	opts := drivertest.Options{Disable: drivertest.StmtExecContext | drivertest.StmtQueryContext}
	db, _, _ := fakeDB(t, opts, sqlpool.Config{})
	stmt, err := db.Prepare("SET k ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if _, err := stmt.Exec("v"); err != nil {
		t.Fatalf("Exec on a statement without StmtExecContext: %v", err)
	}
}

func TestConnectionWithoutExecerContextIsPrepared(t *testing.T) {
	opts := drivertest.Options{Disable: drivertest.ExecerContext | drivertest.QueryerContext}
	db, _, d := fakeDB(t, opts, sqlpool.Config{})
	if _, err := db.Exec("SET k ?", "v"); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, context.Background(), db, "COUNT"); n != 1 {
		t.Errorf("COUNT = %d, want 1", n)
	}
	if s := d.Stats(); s.Prepares != 2 {
		t.Errorf("prepares %d, want 2 (ErrSkip reached database/sql, which prepared)", s.Prepares)
	}
	db.Exec("SET k ?", "w")
	if s := d.Stats(); s.Prepares != 2 || s.StmtCloses != 0 {
		t.Errorf("prepares %d, statement closes %d; want 2 and 0: the cache serves database/sql's prepares", s.Prepares, s.StmtCloses)
	}
}

func TestRollbackOfACanceledTransactionKeepsTheConnection(t *testing.T) {
	db, c, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	queryInt(t, context.Background(), db, "SELECT 1")
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SET k v"); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitFor(t, "the rollback", func() bool { return d.Stats().Rollbacks == 1 })
	waitFor(t, "the release", func() bool { return c.Stats().InUse == 0 })
	if s := d.Stats(); s.Connects != 1 || s.Closes != 0 {
		t.Errorf("connects %d, closes %d; want the connection kept", s.Connects, s.Closes)
	}
	if n := queryInt(t, context.Background(), db, "COUNT"); n != 0 {
		t.Errorf("COUNT = %d after rollback, want 0", n)
	}
}

func TestWithPriorityOrdersWaiters(t *testing.T) {
	// OnAcquire runs when a waiter gets the only connection, before it can
	// release it to the next: its order is the service order.
	order := make(chan string, 3)
	db, c, _ := fakeDB(t, drivertest.Options{}, sqlpool.Config{MaxSize: 1,
		Hooks: sqlpool.Hooks{OnAcquire: func(e sqlpool.AcquireEvent) { order <- e.Partition }}})
	bg := context.Background()
	held, _ := db.Conn(bg)
	queryInt(t, bg, held, "SELECT 1")
	<-order
	var wg sync.WaitGroup
	for i, p := range []sqlpool.Priority{sqlpool.PriorityLow, sqlpool.PriorityCritical} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := sqlpool.WithPriority(sqlpool.WithTenant(bg, p.String()), p)
			if _, err := db.ExecContext(ctx, "SELECT 1"); err != nil {
				t.Error(err)
			}
		}()
		waitFor(t, "waiter queued", func() bool { return c.Stats().Waiting == i+1 })
	}
	held.Close()
	wg.Wait()
	if first, second := <-order, <-order; first != "critical" || second != "low" {
		t.Errorf("served %s then %s, want critical then low", first, second)
	}
}

func TestRawReachesTheDriversConnection(t *testing.T) {
	db, _, d := fakeDB(t, drivertest.Options{}, sqlpool.Config{})
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		raw, err := sqlpool.Raw(ctx, dc)
		if err != nil {
			return err
		}
		if raw == nil || raw == dc || strings.HasPrefix(fmt.Sprintf("%T", raw), "*sqlpool.") {
			return fmt.Errorf("Raw returned %T, want the fake driver's connection", raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlpool.Raw(ctx, d); err == nil {
		t.Error("Raw of a value that is no sqlpool connection: no error")
	}
}

func TestCloseClosesEveryPhysicalConnection(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c, err := sqlpool.Wrap(d.Connector("x"), sqlpool.Config{MinSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.Exec("SELECT 1")
		}()
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := d.Stats().Open; n != 0 {
		t.Errorf("%d physical connections open after DB.Close, want 0", n)
	}
	if _, err := c.Connect(context.Background()); !errors.Is(err, sqlpool.ErrClosed) {
		t.Errorf("Connect after Close: %v, want ErrClosed", err)
	}
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	for _, tc := range []struct {
		cfg  sqlpool.Config
		want string
	}{
		{sqlpool.Config{MaxSize: -1}, "MaxSize"},
		{sqlpool.Config{MinSize: 3, MaxSize: 2}, "MinSize"},
		{sqlpool.Config{InitialSize: 11}, "InitialSize"},
		{sqlpool.Config{MaxWaitQueue: -1}, "MaxWaitQueue"},
		{sqlpool.Config{StatementCacheMaxTotal: -1}, "StatementCacheMaxTotal"},
		{sqlpool.Config{StatementCacheMode: 9}, "StatementCacheMode"},
		{sqlpool.Config{ConnectTimeout: -time.Second}, "ConnectTimeout"},
	} {
		_, err := sqlpool.Wrap(d.Connector("x"), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Wrap with %+v: err = %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestMalformedDSNGivesTheDriversError(t *testing.T) {
	_, err := sqlpool.NewConnector(&mysql.MySQLDriver{}, "not a dsn", sqlpool.Config{})
	if err == nil || strings.Contains(err.Error(), "sqlpool") {
		t.Errorf("err = %v, want the driver's own error", err)
	}
}

func TestSQLiteInMemoryDatabaseIsRefusedUnlessPinned(t *testing.T) {
	if _, err := sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, ":memory:", sqlpool.Config{}); err == nil || !strings.Contains(err.Error(), "in-memory") {
		t.Errorf("err = %v, want a refusal naming the in-memory database", err)
	}
	c, err := sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, ":memory:", sqlpool.Config{MaxSize: 1, MaxLifetime: -1, IdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = sqlpool.NewConnector(&sqlite3.SQLiteDriver{}, "file:x?mode=memory&cache=shared", sqlpool.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestRegisterMakesSQLOpenWork(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	name := fmt.Sprintf("sqlpool-fake-%d", time.Now().UnixNano()) // -count=N registers anew
	sqlpool.Register(name, d, sqlpool.Config{MaxSize: 2})
	db, err := sql.Open(name, "dsn")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queryInt(t, context.Background(), db, "SELECT 1")
	if _, ok := db.Driver().(driver.DriverContext); !ok {
		t.Error("the registered driver has no OpenConnector")
	}
	if s := d.Stats(); s.Connects != 1 {
		t.Errorf("connects = %d, want 1", s.Connects)
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
