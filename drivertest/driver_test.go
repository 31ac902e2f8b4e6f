//lint:file-ignore SA1019 the fake driver implements the legacy interfaces on purpose, to test their fallbacks

package drivertest_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/drivertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open returns a database on d, closed when t is done.
func open(t *testing.T, d *drivertest.Driver) *sql.DB {
	t.Helper()
	db := sql.OpenDB(d.Connector("test"))
	t.Cleanup(func() { db.Close() })
	return db
}

// connect opens a driver connection to d, closed when t is done.
func connect(t *testing.T, d *drivertest.Driver) driver.Conn {
	t.Helper()
	c, err := d.Connector("test").Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// queryAll returns the rows of query.
func queryAll(t *testing.T, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) [][]any {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var all [][]any
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		all = append(all, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return all
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

func TestDisableRemovesExactlyThatInterface(t *testing.T) {
	optional := []struct {
		bit  drivertest.Interface
		of   string // the kind of value that implements it
		impl []func(any) bool
	}{
		{drivertest.Pinger, "conn", []func(any) bool{is[driver.Pinger]}},
		{drivertest.ExecerContext, "conn", []func(any) bool{is[driver.ExecerContext], is[driver.Execer]}},
		{drivertest.QueryerContext, "conn", []func(any) bool{is[driver.QueryerContext], is[driver.Queryer]}},
		{drivertest.ConnPrepareContext, "conn", []func(any) bool{is[driver.ConnPrepareContext]}},
		{drivertest.ConnBeginTx, "conn", []func(any) bool{is[driver.ConnBeginTx]}},
		{drivertest.NamedValueChecker, "conn", []func(any) bool{is[driver.NamedValueChecker]}},
		{drivertest.SessionResetter, "conn", []func(any) bool{is[driver.SessionResetter]}},
		{drivertest.Validator, "conn", []func(any) bool{is[driver.Validator]}},
		{drivertest.StmtExecContext, "stmt", []func(any) bool{is[driver.StmtExecContext]}},
		{drivertest.StmtQueryContext, "stmt", []func(any) bool{is[driver.StmtQueryContext]}},
		{drivertest.ColumnConverter, "stmt", []func(any) bool{is[driver.ColumnConverter]}},
		{drivertest.StmtNamedValueChecker, "stmt", []func(any) bool{is[driver.NamedValueChecker]}},
		{drivertest.RowsNextResultSet, "rows", []func(any) bool{is[driver.RowsNextResultSet]}},
		{drivertest.RowsColumnTypeDatabaseTypeName, "rows", []func(any) bool{is[driver.RowsColumnTypeDatabaseTypeName]}},
		{drivertest.RowsColumnTypeScanType, "rows", []func(any) bool{is[driver.RowsColumnTypeScanType]}},
		{drivertest.RowsColumnTypeNullable, "rows", []func(any) bool{is[driver.RowsColumnTypeNullable]}},
		{drivertest.DriverContext, "driver", []func(any) bool{is[driver.DriverContext]}},
	}
	var all drivertest.Interface
	for _, o := range optional {
		all |= o.bit
	}
	if all != drivertest.All {
		t.Fatalf("All = %v, want %v", drivertest.All, all)
	}

	// Every combination of the bits of each kind of value.
	byKind := make(map[string][]drivertest.Interface)
	for _, o := range optional {
		byKind[o.of] = append(byKind[o.of], o.bit)
	}
	disables := []drivertest.Interface{drivertest.All}
	for _, bits := range byKind {
		for set := range 1 << len(bits) {
			var disable drivertest.Interface
			for i, bit := range bits {
				if set&(1<<i) != 0 {
					disable |= bit
				}
			}
			disables = append(disables, disable)
		}
	}
	if len(disables) != 1+256+16+16+2 {
		t.Fatalf("testing %d combinations", len(disables))
	}

	for _, disable := range disables {
		d := drivertest.New(drivertest.Options{Disable: disable})
		connector := d.Connector("test")
		c := connect(t, d)
		s, err := c.Prepare("SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Query(nil) //nolint:staticcheck // the legacy method is always there
		if err != nil {
			t.Fatal(err)
		}
		values := map[string]any{"conn": c, "stmt": s, "rows": r, "driver": connector.Driver()}
		for _, o := range optional {
			want := disable&o.bit == 0
			for _, impl := range o.impl {
				if got := impl(values[o.of]); got != want {
					t.Errorf("Disable: %v: the %s implements %v: %v, want %v", disable, o.of, o.bit, got, want)
				}
			}
		}
		r.Close()
		s.Close()
	}
}

func TestInterfaceString(t *testing.T) {
	for _, tt := range []struct {
		i    drivertest.Interface
		want string
	}{
		{0, "0"},
		{drivertest.Pinger, "Pinger"},
		{drivertest.ExecerContext | drivertest.DriverContext, "ExecerContext|DriverContext"},
	} {
		if got := tt.i.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", uint32(tt.i), got, tt.want)
		}
	}
}

func TestQueries(t *testing.T) {
	db := open(t, drivertest.New(drivertest.Options{}))
	for _, tt := range []struct {
		query string
		args  []any
		want  [][]any
	}{
		{"SELECT 1", nil, [][]any{{int64(1)}}},
		{"select ? ?", []any{"a", nil}, [][]any{{"a", nil}}},
		{"SELECT 2.5 abc TRUE false X'6869' NULL", nil, [][]any{{2.5, "abc", true, false, []byte("hi"), nil}}},
		{"SELECT ?", []any{drivertest.Point{X: 1, Y: 2}}, [][]any{{"(1,2)"}}},
		{"ROWS 3", nil, [][]any{{int64(1), "name-1", "note-1"}, {int64(2), "name-2", nil}, {int64(3), "name-3", "note-3"}}},
		{"ROWS ?", []any{0}, nil},
		{"GET missing", nil, nil},
		{"TENANT", nil, [][]any{{nil}}},
		{"COUNT", nil, [][]any{{int64(0)}}},
		{"SET k v", nil, nil},
	} {
		if got := queryAll(t, db, tt.query, tt.args...); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %v returned %v, want %v", tt.query, tt.args, got, tt.want)
		}
	}
}

func TestColumnTypes(t *testing.T) {
	db := open(t, drivertest.New(drivertest.Options{}))
	rows, err := db.QueryContext(t.Context(), "ROWS 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ct := range cts {
		nullable, _ := ct.Nullable()
		got = append(got, ct.Name()+" "+ct.DatabaseTypeName()+" "+ct.ScanType().String()+" "+map[bool]string{true: "NULL", false: "NOT NULL"}[nullable])
	}
	want := []string{"id INTEGER int64 NOT NULL", "name TEXT string NOT NULL", "note TEXT sql.NullString NULL"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got column types %q, want %q", got, want)
	}
}

func TestStore(t *testing.T) {
	db := open(t, drivertest.New(drivertest.Options{}))
	exec := func(query string, args ...any) (lastID, affected int64) {
		t.Helper()
		res, err := db.ExecContext(t.Context(), query, args...)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		lastID, _ = res.LastInsertId()
		affected, _ = res.RowsAffected()
		return lastID, affected
	}
	id1, n := exec("SET a ?", []byte("x"))
	if n != 1 {
		t.Errorf("SET affected %d rows, want 1", n)
	}
	id2, _ := exec("set t ? ?", 10, "ten")
	exec("SET t 9 nine")
	exec("SET t x ?", nil)
	if id2 <= id1 {
		t.Errorf("LastInsertId went from %d to %d, want it to increase", id1, id2)
	}
	check := func(query string, want [][]any, args ...any) {
		t.Helper()
		if got := queryAll(t, db, query, args...); !reflect.DeepEqual(got, want) {
			t.Errorf("%s returned %v, want %v", query, got, want)
		}
	}
	check("GET a", [][]any{{[]byte("x")}})
	check("GET t ?", [][]any{{"ten"}}, 10)
	check("SCAN t", [][]any{{"9", "nine"}, {"10", "ten"}, {"x", nil}})
	check("COUNT", [][]any{{int64(4)}})
	if _, n := exec("DEL t ?", 10); n != 1 {
		t.Errorf("DEL of a key affected %d rows, want 1", n)
	}
	if _, n := exec("DEL t 10"); n != 0 {
		t.Errorf("DEL of a missing key affected %d rows, want 0", n)
	}
	check("GET t 10", nil)
	if _, n := exec("SELECT 1"); n != 0 {
		t.Errorf("Exec of a query affected %d rows, want 0", n)
	}
}

func TestMulti(t *testing.T) {
	db := open(t, drivertest.New(drivertest.Options{}))
	rows, err := db.QueryContext(t.Context(), "MULTI")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for more := true; more; more = rows.NextResultSet() {
		cols, _ := rows.Columns()
		for rows.Next() {
			var v string
			rows.Scan(&v)
			got = append(got, cols[0]+"="+v)
		}
	}
	if want := []string{"a=1", "b=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MULTI returned %q, want %q", got, want)
	}
}

func TestSessionState(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	c1, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c1.ExecContext(t.Context(), "SETTENANT ?", "acme"); err != nil {
		t.Fatal(err)
	}
	if got := queryAll(t, c1, "TENANT"); !reflect.DeepEqual(got, [][]any{{"acme"}}) {
		t.Errorf("TENANT on the conn that set it returned %v, want acme", got)
	}
	if got := queryAll(t, c2, "TENANT"); !reflect.DeepEqual(got, [][]any{{nil}}) {
		t.Errorf("TENANT on another conn returned %v, want NULL", got)
	}
	var ids []any
	for _, c := range d.Conns() {
		ids = append(ids, c.ID())
	}
	got := []any{queryAll(t, c1, "CONNID")[0][0], queryAll(t, c2, "CONNID")[0][0]}
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("CONNID returned %v, want %v", got, ids)
	}
}

func TestErrors(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	for _, tt := range []struct {
		query string
		args  []any
		want  string
	}{
		{"FROB x", nil, "FROB"},
		{"", nil, "empty statement"},
		{"ROWS", nil, "ROWS n"},
		{"COUNT 1", nil, "COUNT"},
		{"ROWS x", nil, "ROWS needs a count"},
		{"SELECT ?", nil, "takes 1 arguments, got 0"},
		{"SELECT ?", []any{1, 2}, "takes 1 arguments, got 2"},
		{"SELECT ?", []any{sql.Named("n", 1)}, "named argument"},
		{"FAIL out of cheese", nil, "drivertest: out of cheese"},
	} {
		_, err := db.QueryContext(t.Context(), tt.query, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Query(%q, %v) returned error %v, want one containing %q", tt.query, tt.args, err, tt.want)
		}
		_, err = db.ExecContext(t.Context(), tt.query, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Exec(%q, %v) returned error %v, want one containing %q", tt.query, tt.args, err, tt.want)
		}
	}
	if _, err := db.PrepareContext(t.Context(), "FROB x"); err == nil || !strings.Contains(err.Error(), "FROB") {
		t.Errorf("Prepare of an unknown statement returned error %v, want one naming it", err)
	}
	if _, err := db.ExecContext(t.Context(), "BADCONN"); !errors.Is(err, driver.ErrBadConn) {
		t.Errorf("BADCONN returned %v, want driver.ErrBadConn", err)
	}
}

func TestNumInput(t *testing.T) {
	s, err := connect(t, drivertest.New(drivertest.Options{})).Prepare("SET k ? ?")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.NumInput(); n != 2 {
		t.Errorf("NumInput() = %d, want 2", n)
	}
}

func TestNamedValueChecker(t *testing.T) {
	for _, tt := range []struct {
		disable              drivertest.Interface
		direct, prepared, ok bool // whether Point works without and with Prepare
	}{
		{disable: 0, direct: true, prepared: true},
		{disable: drivertest.StmtNamedValueChecker, direct: true, prepared: true},
		{disable: drivertest.NamedValueChecker, direct: false, prepared: true},
		{disable: drivertest.NamedValueChecker | drivertest.StmtNamedValueChecker, direct: false, prepared: false},
	} {
		db := open(t, drivertest.New(drivertest.Options{Disable: tt.disable}))
		var s string
		err := db.QueryRowContext(t.Context(), "SELECT ?", drivertest.Point{X: 1, Y: 2}).Scan(&s)
		if got := err == nil && s == "(1,2)"; got != tt.direct {
			t.Errorf("Disable: %v: SELECT ? with a Point returned %q, %v", tt.disable, s, err)
		}
		stmt, err := db.PrepareContext(t.Context(), "SELECT ?")
		if err != nil {
			t.Fatal(err)
		}
		s = ""
		err = stmt.QueryRowContext(t.Context(), drivertest.Point{X: 3, Y: 4}).Scan(&s)
		if got := err == nil && s == "(3,4)"; got != tt.prepared {
			t.Errorf("Disable: %v: prepared SELECT ? with a Point returned %q, %v", tt.disable, s, err)
		}
		stmt.Close()
	}
}

func TestTransactions(t *testing.T) {
	db := open(t, drivertest.New(drivertest.Options{}))
	get := func(q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}, key string) [][]any {
		return queryAll(t, q, "GET ?", key)
	}

	tx, err := db.BeginTx(t.Context(), &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), "SET k committed"); err != nil {
		t.Fatal(err)
	}
	if got := get(tx, "k"); !reflect.DeepEqual(got, [][]any{{"committed"}}) {
		t.Errorf("the transaction does not see its own write: %v", got)
	}
	if got := get(db, "k"); got != nil {
		t.Errorf("a write is visible outside its transaction before commit: %v", got)
	}
	if got := queryAll(t, tx, "COUNT"); !reflect.DeepEqual(got, [][]any{{int64(1)}}) {
		t.Errorf("COUNT in the transaction returned %v, want 1", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := get(db, "k"); !reflect.DeepEqual(got, [][]any{{"committed"}}) {
		t.Errorf("after commit GET k returned %v", got)
	}

	tx, err = db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(t.Context(), "SET k rolledback")
	tx.ExecContext(t.Context(), "DEL k")
	if got := get(tx, "k"); got != nil {
		t.Errorf("the transaction sees a key it deleted: %v", got)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := get(db, "k"); !reflect.DeepEqual(got, [][]any{{"committed"}}) {
		t.Errorf("after rollback GET k returned %v", got)
	}

	tx, err = db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), "SET k v"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("SET in a read-only transaction returned %v, want a read-only error", err)
	}
	tx.Rollback()

	if _, err := db.BeginTx(t.Context(), &sql.TxOptions{Isolation: sql.LevelSnapshot}); err == nil {
		t.Errorf("BeginTx at level Snapshot succeeded")
	}
}

func TestBeginWithoutConnBeginTx(t *testing.T) {
	db := open(t, drivertest.New(drivertest.Options{Disable: drivertest.ConnBeginTx}))
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(t.Context(), "SET k v")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := queryAll(t, db, "GET k"); !reflect.DeepEqual(got, [][]any{{"v"}}) {
		t.Errorf("GET k returned %v after commit", got)
	}
	if _, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true}); err == nil {
		t.Errorf("database/sql began a read-only transaction without ConnBeginTx")
	}
}

func TestStatsCountEveryCall(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	ctx := t.Context()
	c, err := d.Connector("test").Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustNot := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.(driver.ExecerContext).ExecContext(ctx, "SET k v", nil)
	mustNot(err)
	_, err = c.(driver.QueryerContext).QueryContext(ctx, "GET k", nil)
	mustNot(err)
	_, err = c.(driver.QueryerContext).QueryContext(ctx, "FAIL counted anyway", nil)
	if err == nil {
		t.Fatal("FAIL succeeded")
	}
	s, err := c.(driver.ConnPrepareContext).PrepareContext(ctx, "GET ?")
	mustNot(err)
	_, err = s.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: "k"}})
	mustNot(err)
	mustNot(s.Close())
	if err := s.Close(); err == nil {
		t.Error("closing a statement twice succeeded")
	}
	tx, err := c.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
	mustNot(err)
	mustNot(tx.Commit())
	tx, err = c.Begin() //nolint:staticcheck // the legacy method counts too
	mustNot(err)
	mustNot(tx.Rollback())
	mustNot(c.(driver.Pinger).Ping(ctx))
	mustNot(c.(driver.SessionResetter).ResetSession(ctx))

	want := drivertest.ConnStats{Prepares: 1, StmtCloses: 2, Queries: 3, Execs: 1, Pings: 1, Resets: 1, Begins: 2, Commits: 1, Rollbacks: 1}
	conns := d.Conns()
	if len(conns) != 1 || conns[0].ID() != 1 {
		t.Fatalf("Conns() = %v, want one connection with ID 1", conns)
	}
	if got := conns[0].Stats(); got != want {
		t.Errorf("connection stats:\ngot  %+v\nwant %+v", got, want)
	}
	mustNot(c.Close())
	if err := c.Close(); err == nil {
		t.Error("closing a connection twice succeeded")
	}
	if _, err := c.Prepare("SELECT 1"); err == nil {
		t.Error("Prepare on a closed connection succeeded")
	}
	wantStats := drivertest.Stats{Connects: 1, Closes: 1, Prepares: 2, StmtCloses: 2, Queries: 3, Execs: 1, Pings: 1, Resets: 1, Begins: 2, Commits: 1, Rollbacks: 1}
	if got := d.Stats(); got != wantStats {
		t.Errorf("driver stats:\ngot  %+v\nwant %+v", got, wantStats)
	}
	if !conns[0].Stats().Closed {
		t.Error("the closed connection's stats say it is open")
	}
}

func TestStatsThroughDatabaseSQL(t *testing.T) {
	// Without ExecerContext, database/sql prepares, execs and closes.
	d := drivertest.New(drivertest.Options{Disable: drivertest.ExecerContext})
	db := open(t, d)
	if _, err := db.ExecContext(t.Context(), "SET k v"); err != nil {
		t.Fatal(err)
	}
	want := drivertest.Stats{Connects: 1, Open: 1, Prepares: 1, StmtCloses: 1, Execs: 1}
	if got := d.Stats(); got != want {
		t.Errorf("after one Exec:\ngot  %+v\nwant %+v", got, want)
	}
	if _, err := db.ExecContext(t.Context(), "SET k v"); err != nil {
		t.Fatal(err)
	}
	want = drivertest.Stats{Connects: 1, Open: 1, Prepares: 2, StmtCloses: 2, Execs: 2, Resets: 1}
	if got := d.Stats(); got != want {
		t.Errorf("after two Execs:\ngot  %+v\nwant %+v", got, want)
	}
	db.Close()
	want.Closes, want.Open = 1, 0
	if got := d.Stats(); got != want {
		t.Errorf("after Close:\ngot  %+v\nwant %+v", got, want)
	}
}

func TestConcurrentUseCountsExactly(t *testing.T) {
	const goroutines, each = 8, 50
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if _, err := db.ExecContext(t.Context(), "SET ? ? v", g, i); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.QueryContext(t.Context(), "COUNT"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	s := d.Stats()
	if s.Execs != goroutines*each || s.Queries != goroutines*each || s.Prepares != 0 {
		t.Errorf("stats %+v, want %d execs and queries and no prepares", s, goroutines*each)
	}
	if got := queryAll(t, db, "COUNT"); !reflect.DeepEqual(got, [][]any{{int64(goroutines * each)}}) {
		t.Errorf("COUNT returned %v, want %d", got, goroutines*each)
	}
}

func TestConnectErr(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	boom := errors.New("boom")
	d.SetFaults(drivertest.Faults{ConnectErr: boom})
	if err := db.PingContext(t.Context()); !errors.Is(err, boom) {
		t.Errorf("Ping returned %v, want %v", err, boom)
	}
	if s := d.Stats(); s.Connects != 0 || s.ConnectErrors == 0 {
		t.Errorf("stats %+v, want no connects and some connect errors", s)
	}
	d.SetFaults(drivertest.Faults{})
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("Ping after clearing the fault: %v", err)
	}
}

func TestPingErr(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	boom := errors.New("boom")
	d.SetFaults(drivertest.Faults{PingErr: boom})
	if err := db.PingContext(t.Context()); !errors.Is(err, boom) {
		t.Errorf("Ping returned %v, want %v", err, boom)
	}
	if s := d.Stats(); s.Pings != 1 {
		t.Errorf("stats %+v, want one ping", s)
	}
}

func TestBadConnAfter(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	c1, c2 := connect(t, d), connect(t, d)
	d.SetFaults(drivertest.Faults{BadConnAfter: 3})
	ping := func(c driver.Conn) error { return c.(driver.Pinger).Ping(t.Context()) }
	for i, err := range []error{ping(c1), ping(c2), ping(c1), ping(c2), ping(c1)} {
		want := map[int]error{2: driver.ErrBadConn, 4: driver.ErrBadConn}[i]
		if err != want {
			t.Errorf("ping %d returned %v, want %v", i+1, err, want)
		}
	}
	if c1.(driver.Validator).IsValid() || !c2.(driver.Validator).IsValid() {
		t.Error("the fault did not break exactly the connection it hit")
	}
}

func TestBadConnRetry(t *testing.T) {
	for _, disable := range []drivertest.Interface{0, drivertest.QueryerContext} {
		t.Run(disable.String(), func(t *testing.T) {
			d := drivertest.New(drivertest.Options{Disable: disable})
			db := open(t, d)
			if err := db.PingContext(t.Context()); err != nil { // an idle connection to go bad
				t.Fatal(err)
			}
			drivertest.RunBadConnRetry(t, db, d)
		})
	}
}

func TestHang(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	d.SetFaults(drivertest.Faults{Hang: true})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := db.ExecContext(ctx, "SET k v"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging Exec returned %v, want context.DeadlineExceeded", err)
	}
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("Ping hung or failed: %v", err)
	}
	d.SetFaults(drivertest.Faults{})
	if got := queryAll(t, db, "COUNT"); !reflect.DeepEqual(got, [][]any{{int64(0)}}) {
		t.Errorf("the hanging SET wrote: COUNT returned %v", got)
	}
}

func TestSleepAndLatencyHonourContext(t *testing.T) {
	for _, tt := range []struct {
		opts  drivertest.Options
		query string
	}{
		{drivertest.Options{}, "SLEEP"},
		{drivertest.Options{Latency: time.Hour}, "SELECT 1"},
		{drivertest.Options{ConnectLatency: time.Hour}, "SELECT 1"},
	} {
		db := open(t, drivertest.New(tt.opts))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		if _, err := db.QueryContext(ctx, tt.query); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%+v: %s returned %v, want context.DeadlineExceeded", tt.opts, tt.query, err)
		}
		cancel()
	}
}

func TestLatency(t *testing.T) {
	const latency = 10 * time.Millisecond
	db := open(t, drivertest.New(drivertest.Options{Latency: latency}))
	start := time.Now()
	queryAll(t, db, "SELECT 1")
	if took := time.Since(start); took < latency {
		t.Errorf("a query took %v, less than the latency %v", took, latency)
	}
}

func TestKillAll(t *testing.T) {
	d := drivertest.New(drivertest.Options{})
	db := open(t, d)
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A hanging query on a killed connection returns, whether the kill
	// comes before it starts or while it waits.
	d.SetFaults(drivertest.Faults{Hang: true})
	errc := make(chan error)
	go func() {
		_, err := c.ExecContext(context.Background(), "SET k v")
		errc <- err
	}()
	d.KillAll()
	if err := <-errc; !errors.Is(err, driver.ErrBadConn) {
		t.Errorf("hanging Exec on a killed connection returned %v, want driver.ErrBadConn", err)
	}
	d.SetFaults(drivertest.Faults{})

	killed := d.Conns()[0]
	if !killed.Stats().Broken {
		t.Error("the killed connection's stats do not say it is broken")
	}
	// database/sql closed the connection when it returned ErrBadConn, so
	// look at a raw one.
	raw := connect(t, d)
	d.KillAll()
	if raw.(driver.Validator).IsValid() {
		t.Error("IsValid() = true on a killed connection")
	}
	if err := raw.(driver.SessionResetter).ResetSession(t.Context()); err != driver.ErrBadConn {
		t.Errorf("ResetSession() = %v on a killed connection, want driver.ErrBadConn", err)
	}
	if err := raw.(driver.Pinger).Ping(t.Context()); err != driver.ErrBadConn {
		t.Errorf("Ping() = %v on a killed connection, want driver.ErrBadConn", err)
	}

	// The database recovers on new connections.
	if got := queryAll(t, db, "SELECT 1"); !reflect.DeepEqual(got, [][]any{{int64(1)}}) {
		t.Errorf("SELECT 1 after KillAll returned %v", got)
	}
}
