package sqlpool

import (
	"database/sql/driver"
	"io"
	"reflect"
	"runtime"
)

// passRows wraps a driver's Rows, passing its optional interfaces through
// and answering as database/sql does for a driver without them. Wrappers
// embed it and add what they need.
type passRows struct{ driver.Rows }

var (
	_ driver.RowsNextResultSet              = passRows{}
	_ driver.RowsColumnTypeScanType         = passRows{}
	_ driver.RowsColumnTypeDatabaseTypeName = passRows{}
	_ driver.RowsColumnTypeLength           = passRows{}
	_ driver.RowsColumnTypeNullable         = passRows{}
	_ driver.RowsColumnTypePrecisionScale   = passRows{}
)

func (r passRows) HasNextResultSet() bool {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

func (r passRows) NextResultSet() error {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}

func (r passRows) ColumnTypeScanType(i int) reflect.Type {
	if c, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return c.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r passRows) ColumnTypeDatabaseTypeName(i int) string {
	if c, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return c.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r passRows) ColumnTypeLength(i int) (int64, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return c.ColumnTypeLength(i)
	}
	return 0, false
}

func (r passRows) ColumnTypeNullable(i int) (bool, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return c.ColumnTypeNullable(i)
	}
	return false, false
}

func (r passRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if c, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return c.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// guardRows returns the rows of a kept statement; for a driver whose
// unread rows hold the database's lock (stmtHoldsLock), rows that the
// application drops without closing are closed when they become garbage,
// as the bare driver's finalizer would close its one-off statement.
func (h *conn) guardRows(r driver.Rows, err error) (driver.Rows, error) {
	if err != nil || !h.c.traits.stmtHoldsLock {
		return r, err
	}
	g := &gcRows{passRows: passRows{r}}
	g.cleanup = runtime.AddCleanup(g, func(r driver.Rows) { r.Close() }, r)
	return g, nil
}

// gcRows are rows closed when they become garbage, unless closed before.
type gcRows struct {
	passRows
	cleanup runtime.Cleanup
}

// Close closes the rows.
func (g *gcRows) Close() error {
	g.cleanup.Stop()
	return g.Rows.Close()
}
