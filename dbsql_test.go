package sqlpool_test

// These tests pin the database/sql behaviour that sqlpool's design relies on
// (see doc.go). They use a bare recording driver, not sqlpool: if a Go release
// changes database/sql/sql.go in one of these ways, they fail and say which
// assumption broke.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

type tenantKey struct{}

func tenantOf(ctx context.Context) string {
	s, _ := ctx.Value(tenantKey{}).(string)
	return s
}

func withTestTenant(name string) context.Context {
	return context.WithValue(context.Background(), tenantKey{}, name)
}

// recorder is a driver.Connector whose connections log database/sql's calls.
type recorder struct {
	resetErr error

	mu     sync.Mutex
	events []string // guarded by mu
}

func (r *recorder) log(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func (r *recorder) Connect(ctx context.Context) (driver.Conn, error) {
	r.log("Connect:" + tenantOf(ctx))
	return &recConn{r}, nil
}

func (r *recorder) Driver() driver.Driver { return nil }

type recConn struct{ r *recorder }

func (c *recConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (c *recConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }
func (c *recConn) Close() error                        { c.r.log("Close"); return nil }
func (c *recConn) IsValid() bool                       { c.r.log("IsValid"); return true }
func (c *recConn) ResetSession(ctx context.Context) error {
	c.r.log("ResetSession:" + tenantOf(ctx))
	return c.r.resetErr
}
func (c *recConn) QueryContext(ctx context.Context, _ string, _ []driver.NamedValue) (driver.Rows, error) {
	c.r.log("Query:" + tenantOf(ctx))
	return emptyRows{}, nil
}

type emptyRows struct{}

func (emptyRows) Columns() []string         { return nil }
func (emptyRows) Close() error              { return nil }
func (emptyRows) Next([]driver.Value) error { return io.EOF }

func query(t *testing.T, db *sql.DB, ctx context.Context) {
	t.Helper()
	rows, err := db.QueryContext(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
}

func TestDatabaseSQLCallsIsValidOnReleaseAndResetSessionWithTheNextCallersContext(t *testing.T) {
	r := &recorder{}
	db := sql.OpenDB(r)
	defer db.Close()
	db.SetMaxIdleConns(1)
	query(t, db, withTestTenant("a"))
	query(t, db, withTestTenant("b"))
	want := []string{"Connect:a", "Query:a", "IsValid", "ResetSession:b", "Query:b", "IsValid"}
	if got := r.take(); !slices.Equal(got, want) {
		t.Errorf("database/sql called %v, want %v", got, want)
	}
}

func TestDatabaseSQLClosesEveryReleasedConnWithZeroIdle(t *testing.T) {
	r := &recorder{}
	db := sql.OpenDB(r)
	defer db.Close()
	db.SetMaxIdleConns(0)
	query(t, db, withTestTenant("a"))
	want := []string{"Connect:a", "Query:a", "IsValid", "Close"}
	if got := r.take(); !slices.Equal(got, want) {
		t.Errorf("database/sql called %v, want %v", got, want)
	}
}

func TestDatabaseSQLIgnoresResetSessionErrorsOtherThanErrBadConn(t *testing.T) {
	r := &recorder{resetErr: errors.New("not a bad conn")}
	db := sql.OpenDB(r)
	defer db.Close()
	db.SetMaxIdleConns(1)
	query(t, db, withTestTenant("a"))
	query(t, db, withTestTenant("b")) // no error although ResetSession failed
	want := []string{"Connect:a", "Query:a", "IsValid", "ResetSession:b", "Query:b", "IsValid"}
	if got := r.take(); !slices.Equal(got, want) {
		t.Errorf("database/sql called %v, want %v", got, want)
	}
}

func TestDatabaseSQLOpenerConnectsWithABackgroundContextForAWaiter(t *testing.T) {
	r := &recorder{}
	db := sql.OpenDB(r)
	defer db.Close()
	db.SetMaxOpenConns(1)
	held, err := db.Conn(withTestTenant("a"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		rows, err := db.QueryContext(withTestTenant("b"), "q")
		if err == nil {
			rows.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for db.Stats().WaitCount == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second query never queued in database/sql")
		}
		time.Sleep(time.Millisecond)
	}
	// Discard the held connection: database/sql's opener goroutine dials a
	// new one and hands it straight to the waiter.
	held.Raw(func(any) error { return driver.ErrBadConn })
	held.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := r.take()
	if !slices.Contains(got, "Connect:") || slices.Contains(got, "Connect:b") {
		t.Errorf("database/sql called %v: want the waiter's connection dialed with a background context", got)
	}
	if slices.Contains(got, "ResetSession:b") {
		t.Errorf("database/sql called %v: a fresh connection handed to a waiter gets no ResetSession", got)
	}
}
