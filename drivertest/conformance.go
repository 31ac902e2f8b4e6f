package drivertest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Dialect gives the SQL that [Run] needs for one database. A check whose
// SQL is empty is skipped.
type Dialect struct {
	// Name names the database, in messages and table names.
	Name string

	// The table statements are templates for fmt.Sprintf, with %s for the
	// table name. The table has the columns id, an integer primary key,
	// and name, a nullable string of up to 64 bytes.
	CreateTable string // if empty, tables need no creating
	DropTable   string // if empty, tables are not dropped
	Insert      string // two arguments, id and name
	SelectByID  string // one argument, id; returns name
	SelectAll   string // returns id and name of every row, ordered by id

	SelectNull  string // one row with one NULL column
	SelectTypes string // one row: an integer 1, a float 2.5, a string "abc", a bool-ish true and the bytes "hi"
	MultiResult string // two result sets: one row with a column a=1, then one row with b=2
	Sleep       string // a query that runs for several seconds
	SessionID   string // one row with one column identifying the session
	// InsertReturning is Insert that also returns the new row's id.
	InsertReturning string
	// AddColumn adds a nullable integer column named extra to the table.
	AddColumn string

	// TxIsolation lists the isolation levels that transactions can begin at.
	TxIsolation []sql.IsolationLevel
	// ReadOnlyTx is whether read-only transactions are supported, and
	// reject writes.
	ReadOnlyTx bool
}

// Run checks that wrapped behaves like bare, two databases of dialect d that
// differ only in that one is wrapped. Every check runs on both, in subtests
// named bare and wrapped, checks that what it saw is right, and then that
// both saw the same.
//
// The checks create their own tables, named after d.Name and a random
// suffix, and drop them when done.
func Run(t *testing.T, bare, wrapped *sql.DB, d Dialect) {
	r := &runner{
		d:      d,
		dbs:    [2]*sql.DB{bare, wrapped},
		prefix: fmt.Sprintf("drivertest_%s_%08x", identifier(d.Name), rand.Uint32()),
	}
	tables := d.Insert != "" && d.SelectByID != "" && d.SelectAll != ""
	for _, c := range []struct {
		name  string
		check func(t *testing.T)
		needs bool
	}{
		{"query returns the inserted rows", r.queryRows, tables},
		{"exec reports one row affected", r.rowsAffected, tables},
		{"prepared statement runs many times", r.preparedMany, tables},
		{"prepared statement is safe for concurrent use", r.preparedConcurrent, tables},
		{"committed transaction is visible", r.txCommit, tables},
		{"rolled back transaction is invisible", r.txRollback, tables},
		{"read-only transaction rejects writes", r.txReadOnly, tables && d.ReadOnlyTx},
		{"transaction begins at each isolation level", r.txIsolation, d.SelectNull != "" && len(d.TxIsolation) > 0},
		{"rollback after cancelling the transaction leaves the database usable", r.txCancel, tables},
		{"conn runs several statements in one session", r.conn, tables},
		{"NULL scans into NullString and *string", r.null, d.SelectNull != ""},
		{"column types agree", r.columnTypes, d.SelectTypes != ""},
		{"NextResultSet returns every result set", r.multiResult, d.MultiResult != ""},
		{"deadline interrupts a running query", r.deadline, d.Sleep != "" && d.SelectNull != ""},
		{"wrong number of arguments fails", r.wrongArgs, tables},
		{"exec of a statement returning rows is committed", r.execReturning, tables && d.InsertReturning != ""},
		{"query after DDL changes its result type", r.afterDDL, tables && d.AddColumn != ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !c.needs {
				t.Skipf("dialect %s lacks the SQL for this check", d.Name)
			}
			c.check(t)
		})
	}
}

// runner runs the checks of one call to Run.
type runner struct {
	d      Dialect
	dbs    [2]*sql.DB // bare, wrapped
	prefix string     // of table names
	tables atomic.Int64
}

// compare runs check on the bare and the wrapped database, each in its own
// subtest, and fails t if both passed but saw different things.
func (r *runner) compare(t *testing.T, check func(t *testing.T, db *sql.DB) any) {
	t.Helper()
	var seen [2]any
	for i, name := range [2]string{"bare", "wrapped"} {
		if !t.Run(name, func(t *testing.T) { seen[i] = check(t, r.dbs[i]) }) {
			return
		}
	}
	if !reflect.DeepEqual(seen[0], seen[1]) {
		t.Errorf("bare and wrapped differ:\nbare:    %+v\nwrapped: %+v", seen[0], seen[1])
	}
}

// table holds the statements for one table.
type table struct{ name, insert, selectByID, selectAll string }

// table creates a fresh table on db, to be dropped when t is done.
func (r *runner) table(t *testing.T, db *sql.DB) table {
	t.Helper()
	name := fmt.Sprintf("%s_%d", r.prefix, r.tables.Add(1))
	if r.d.CreateTable != "" {
		if _, err := db.ExecContext(t.Context(), fmt.Sprintf(r.d.CreateTable, name)); err != nil {
			t.Fatalf("creating table %s: %v", name, err)
		}
	}
	if r.d.DropTable != "" {
		t.Cleanup(func() {
			if _, err := db.Exec(fmt.Sprintf(r.d.DropTable, name)); err != nil {
				t.Errorf("dropping table %s: %v", name, err)
			}
		})
	}
	return table{
		name:       name,
		insert:     fmt.Sprintf(r.d.Insert, name),
		selectByID: fmt.Sprintf(r.d.SelectByID, name),
		selectAll:  fmt.Sprintf(r.d.SelectAll, name),
	}
}

// A row is a row of a table.
type row struct {
	ID   int64
	Name sql.NullString
}

var sampleRows = []row{
	{1, sql.NullString{String: "one", Valid: true}},
	{2, sql.NullString{String: "two", Valid: true}},
	{3, sql.NullString{}},
}

// execer is what insert needs of a *sql.DB, *sql.Conn or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insert inserts rows, each of which must affect one row.
func insert(t *testing.T, db execer, tb table, rows ...row) {
	t.Helper()
	for _, rw := range rows {
		res, err := db.ExecContext(t.Context(), tb.insert, rw.ID, rw.Name)
		if err != nil {
			t.Fatalf("inserting %v: %v", rw, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			t.Errorf("inserting %v affected %d rows, %v; want 1", rw, n, err)
		}
	}
}

// queryRower is what name needs of a *sql.DB, *sql.Conn or *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// name returns the name of row id, or "" and sql.ErrNoRows if there is none.
func name(ctx context.Context, db queryRower, tb table, id int64) (string, error) {
	var s sql.NullString
	err := db.QueryRowContext(ctx, tb.selectByID, id).Scan(&s)
	return s.String, err
}

// queryErr runs query, reads all its rows and returns the first error.
func queryErr(ctx context.Context, db *sql.DB, query string, args ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	return errors.Join(rows.Err(), rows.Close())
}

func (r *runner) queryRows(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		insert(t, db, tb, sampleRows...)
		rows, err := db.QueryContext(t.Context(), tb.selectAll)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []row
		for rows.Next() {
			var rw row
			if err := rows.Scan(&rw.ID, &rw.Name); err != nil {
				t.Fatal(err)
			}
			got = append(got, rw)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, sampleRows) {
			t.Errorf("got rows %v, want %v", got, sampleRows)
		}
		return got
	})
}

func (r *runner) rowsAffected(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		res, err := db.ExecContext(t.Context(), tb.insert, 1, "one")
		if err != nil {
			t.Fatal(err)
		}
		n, err := res.RowsAffected()
		if err != nil || n != 1 {
			t.Errorf("RowsAffected() = %d, %v; want 1", n, err)
		}
		return n
	})
}

// execReturning runs an INSERT … RETURNING through Exec, twice (so that a
// statement cache would hold it), and checks from another connection that
// both rows are committed and the table is not left locked.
func (r *runner) execReturning(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		ret := strings.Replace(r.d.InsertReturning, "%s", tb.name, 1)
		writer, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer writer.Close()
		for id := range int64(2) {
			if _, err := writer.ExecContext(t.Context(), ret, id, "returned"); err != nil {
				t.Fatal(err)
			}
		}
		reader, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		var n int
		rows, err := reader.QueryContext(t.Context(), tb.selectAll)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			n++
		}
		rows.Close()
		if n != 2 {
			t.Errorf("another connection sees %d rows, want 2: the writes are not committed", n)
		}
		insert(t, reader, tb, row{ID: 10}) // the table is not locked
		return n
	})
}

// afterDDL prepares a query, changes the table's columns, and runs the
// query again, from the statement and as a one-off: whatever the driver
// does (re-prepare, or report "cached plan must not change result type"),
// wrapped must do the same, and a later one-off query must work.
func (r *runner) afterDDL(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		insert(t, db, tb, sampleRows[0])
		selStar := strings.Replace(tb.selectByID, "SELECT name", "SELECT *", 1)
		count := func() (int, error) {
			rows, err := db.QueryContext(t.Context(), selStar, 1)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			cols, err := rows.Columns()
			for rows.Next() {
			}
			return len(cols), errors.Join(err, rows.Err())
		}
		if _, err := count(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(t.Context(), strings.Replace(r.d.AddColumn, "%s", tb.name, 1)); err != nil {
			t.Fatal(err)
		}
		var outcomes []string
		for range 2 {
			n, err := count()
			outcomes = append(outcomes, fmt.Sprintf("%d columns, error %v", n, err != nil))
		}
		if n, err := count(); err != nil || n != 3 {
			t.Errorf("the third query after DDL: %d columns, %v; want 3 and no error", n, err)
		}
		return outcomes
	})
}

func (r *runner) preparedMany(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		ins, err := db.PrepareContext(t.Context(), tb.insert)
		if err != nil {
			t.Fatal(err)
		}
		defer ins.Close()
		sel, err := db.PrepareContext(t.Context(), tb.selectByID)
		if err != nil {
			t.Fatal(err)
		}
		defer sel.Close()
		var names []string
		for id := range int64(10) {
			if _, err := ins.ExecContext(t.Context(), id, fmt.Sprint("name-", id)); err != nil {
				t.Fatal(err)
			}
			var s string
			if err := sel.QueryRowContext(t.Context(), id).Scan(&s); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint("name-", id); s != want {
				t.Errorf("row %d is named %q, want %q", id, s, want)
			}
			names = append(names, s)
		}
		return names
	})
}

func (r *runner) preparedConcurrent(t *testing.T) {
	const goroutines, queries = 8, 25
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		for id := range int64(goroutines) {
			insert(t, db, tb, row{id, sql.NullString{String: fmt.Sprint("name-", id), Valid: true}})
		}
		sel, err := db.PrepareContext(t.Context(), tb.selectByID)
		if err != nil {
			t.Fatal(err)
		}
		defer sel.Close()
		var ok atomic.Int64
		var wg sync.WaitGroup
		for g := range int64(goroutines) {
			wg.Go(func() {
				for i := range int64(queries) {
					id := (g + i) % goroutines
					var s string
					if err := sel.QueryRowContext(t.Context(), id).Scan(&s); err != nil {
						t.Errorf("querying row %d: %v", id, err)
						return
					}
					if want := fmt.Sprint("name-", id); s != want {
						t.Errorf("row %d is named %q, want %q", id, s, want)
						return
					}
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		return ok.Load()
	})
}

func (r *runner) txCommit(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		insert(t, tx, tb, sampleRows[0])
		inside, err := name(t.Context(), tx, tb, 1)
		if err != nil || inside != "one" {
			t.Errorf("inside the transaction, row 1 is named %q, %v; want %q", inside, err, "one")
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		after, err := name(t.Context(), db, tb, 1)
		if err != nil || after != "one" {
			t.Errorf("after commit, row 1 is named %q, %v; want %q", after, err, "one")
		}
		return []string{inside, after}
	})
}

func (r *runner) txRollback(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		insert(t, tx, tb, sampleRows[0])
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		_, err = name(t.Context(), db, tb, 1)
		if !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("after rollback, querying row 1 returned %v, want sql.ErrNoRows", err)
		}
		return err
	})
}

func (r *runner) txReadOnly(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := name(t.Context(), tx, tb, 1); !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("reading in a read-only transaction returned %v, want sql.ErrNoRows", err)
		}
		_, err = tx.ExecContext(t.Context(), tb.insert, 1, "one")
		if err == nil {
			t.Errorf("a read-only transaction accepted an insert")
		}
		return err != nil
	})
}

func (r *runner) txIsolation(t *testing.T) {
	for _, level := range r.d.TxIsolation {
		t.Run(level.String(), func(t *testing.T) {
			r.compare(t, func(t *testing.T, db *sql.DB) any {
				tx, err := db.BeginTx(t.Context(), &sql.TxOptions{Isolation: level})
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				var s sql.NullString
				if err := tx.QueryRowContext(t.Context(), r.d.SelectNull).Scan(&s); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				return level.String()
			})
		})
	}
}

func (r *runner) txCancel(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		ctx, cancel := context.WithCancel(t.Context())
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		insert(t, tx, tb, sampleRows[0])
		cancel()
		// database/sql rolls back a transaction whose context ends, so a
		// Rollback racing with that may find it done; and a driver that
		// watches the context may have given up on the connection.
		err = tx.Rollback()
		if err != nil && !errors.Is(err, sql.ErrTxDone) && !errors.Is(err, driver.ErrBadConn) && !interrupted(err) {
			t.Errorf("Rollback() = %v, want nil, sql.ErrTxDone, driver.ErrBadConn or a cancellation", err)
		}
		if _, err := name(t.Context(), db, tb, 1); !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("after the rollback, querying row 1 returned %v, want sql.ErrNoRows", err)
		}
		insert(t, db, tb, sampleRows[0])
		return "usable"
	})
}

func (r *runner) conn(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		session := func() string {
			if r.d.SessionID == "" {
				return ""
			}
			var id string
			if err := c.QueryRowContext(t.Context(), r.d.SessionID).Scan(&id); err != nil {
				t.Fatal(err)
			}
			return id
		}
		first := session()
		insert(t, c, tb, sampleRows[0])
		if s, err := name(t.Context(), c, tb, 1); err != nil || s != "one" {
			t.Errorf("row 1 is named %q, %v; want %q", s, err, "one")
		}
		if last := session(); last != first {
			t.Errorf("the conn's session changed from %s to %s", first, last)
		}
		err = c.Raw(func(driverConn any) error {
			if driverConn == nil {
				return errors.New("raw: a nil driver connection")
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		return "one session"
	})
}

func (r *runner) null(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		ns := sql.NullString{String: "garbage", Valid: true}
		if err := db.QueryRowContext(t.Context(), r.d.SelectNull).Scan(&ns); err != nil {
			t.Fatal(err)
		}
		if ns.Valid {
			t.Errorf("NULL scanned into a valid NullString %q", ns.String)
		}
		garbage := "garbage"
		p := &garbage
		if err := db.QueryRowContext(t.Context(), r.d.SelectNull).Scan(&p); err != nil {
			t.Fatal(err)
		}
		if p != nil {
			t.Errorf("NULL scanned into a non-nil *string %q", *p)
		}
		return []any{ns, p}
	})
}

// A columnType is what a *sql.ColumnType says.
type columnType struct{ Name, ScanType, DatabaseTypeName string }

func (r *runner) columnTypes(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		rows, err := db.QueryContext(t.Context(), r.d.SelectTypes)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cts, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		var types []columnType
		for _, ct := range cts {
			types = append(types, columnType{ct.Name(), fmt.Sprint(ct.ScanType()), ct.DatabaseTypeName()})
		}
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		var (
			i int64
			f float64
			s string
			b bool
			y []byte
		)
		if err := rows.Scan(&i, &f, &s, &b, &y); err != nil {
			t.Fatal(err)
		}
		if i != 1 || f != 2.5 || s != "abc" || !b || string(y) != "hi" {
			t.Errorf("got %v, %v, %q, %v, %q; want 1, 2.5, \"abc\", true, \"hi\"", i, f, s, b, y)
		}
		return types
	})
}

func (r *runner) multiResult(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		rows, err := db.QueryContext(t.Context(), r.d.MultiResult)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for more := true; more; more = rows.NextResultSet() {
			cols, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v int64
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s=%d", cols[0], v))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if want := []string{"a=1", "b=2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got result sets %q, want %q", got, want)
		}
		return got
	})
}

func (r *runner) deadline(t *testing.T) {
	const deadline = 100 * time.Millisecond
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		start := time.Now()
		err := queryErr(ctx, db, r.d.Sleep)
		if err == nil {
			t.Fatalf("%s finished despite a deadline of %v", r.d.Sleep, deadline)
		}
		if took := time.Since(start); took > 50*deadline {
			t.Errorf("%s took %v to notice a deadline of %v", r.d.Sleep, took, deadline)
		}
		if !interrupted(err) {
			t.Errorf("%s failed with %v, which does not say it was interrupted", r.d.Sleep, err)
		}
		var s sql.NullString
		if err := db.QueryRowContext(t.Context(), r.d.SelectNull).Scan(&s); err != nil {
			t.Errorf("after the interrupted query: %v", err)
		}
		return "interrupted"
	})
}

// interrupted reports whether err says a query was interrupted by its
// context, which some drivers say only in words.
func interrupted(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "cancel") || strings.Contains(msg, "interrupt")
}

func (r *runner) wrongArgs(t *testing.T) {
	r.compare(t, func(t *testing.T, db *sql.DB) any {
		tb := r.table(t, db)
		tooFew := queryErr(t.Context(), db, tb.selectByID)
		if tooFew == nil {
			t.Errorf("a query with too few arguments succeeded")
		}
		// Some drivers ignore extra arguments; the two databases must
		// agree only.
		tooMany := queryErr(t.Context(), db, tb.selectByID, 1, 2)
		var s sql.NullString
		if err := db.QueryRowContext(t.Context(), tb.selectByID, 1).Scan(&s); !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("after the failed queries, querying row 1 returned %v, want sql.ErrNoRows", err)
		}
		return [2]bool{tooFew != nil, tooMany != nil}
	})
}

// identifier returns s lower-cased, with anything but letters and digits
// replaced by underscores.
func identifier(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return r
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, s)
}

// RunBadConnRetry checks that a query through db, which must reach the
// database through d, survives a connection going bad: with d's faults set
// to Faults{BadConnAfter: 1}, "SELECT 1" must succeed all the same (as
// database/sql retries on another connection), and the connection that went
// bad must be closed by the time it returns. It clears d's faults when done.
func RunBadConnRetry(t *testing.T, db *sql.DB, d *Driver) {
	t.Helper()
	wasBroken := make(map[int64]bool)
	for _, c := range d.Conns() {
		wasBroken[c.ID()] = c.broken.Load()
	}
	closes := d.Stats().Closes
	d.SetFaults(Faults{BadConnAfter: 1})
	defer d.SetFaults(Faults{})

	var got int64
	if err := db.QueryRowContext(t.Context(), "SELECT 1").Scan(&got); err != nil || got != 1 {
		t.Fatalf("SELECT 1 returned %d, %v; want 1, nil", got, err)
	}
	var bad []*Conn
	for _, c := range d.Conns() {
		if c.broken.Load() && !wasBroken[c.ID()] {
			bad = append(bad, c)
		}
	}
	if len(bad) == 0 {
		t.Fatal("no connection went bad: the query never reached the driver")
	}
	for _, c := range bad {
		if !c.closed.Load() {
			t.Errorf("connection %d went bad but is still open", c.ID())
		}
	}
	if d.Stats().Closes == closes {
		t.Errorf("no connection was closed")
	}
}
