package drivertest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"time"
)

// stmt is a prepared statement. The statement variants in variants_gen.go
// wrap it to leave out optional interfaces.
type stmt struct {
	c      *conn
	cmd    *command
	closed bool // unguarded, like the conn's session state
}

// Close closes the statement. Closing it twice is an error, and counts
// twice, so that tests see it.
func (s *stmt) Close() error {
	s.c.calls++
	s.c.d.ops[opStmtClose].Add(1)
	s.c.info.ops[opStmtClose].Add(1)
	if s.closed {
		return errors.New("drivertest: statement closed twice")
	}
	s.closed = true
	return nil
}

func (s *stmt) NumInput() int { return s.cmd.numInput }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.start(ctx, opExec); err != nil {
		return nil, err
	}
	return s.c.exec(ctx, s.cmd, args)
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.start(ctx, opQuery); err != nil {
		return nil, err
	}
	return s.c.query(ctx, s.cmd, args)
}

// start begins an operation on the statement's connection.
func (s *stmt) start(ctx context.Context, k op) error {
	if err := s.c.start(ctx, k); err != nil {
		return err
	}
	if s.closed {
		return errStmtClosed
	}
	return nil
}

func (s *stmt) ColumnConverter(index int) driver.ValueConverter {
	return driver.DefaultParameterConverter
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	return checkNamedValue(nv)
}

// rows are the result sets of a query, all in memory. The rows variants in
// variants_gen.go wrap them to leave out optional interfaces.
type rows struct {
	sets []resultSet // at least one
	set  int         // the current set's index
	row  int         // the next row's index in the current set
}

// A resultSet is the columns and rows of one result set.
type resultSet struct {
	cols []column
	rows [][]driver.Value
}

// A column describes a result set's column.
type column struct {
	name     string
	typ      string // its database type name
	scanType reflect.Type
	nullable bool
}

var (
	anyType        = reflect.TypeFor[any]()
	int64Type      = reflect.TypeFor[int64]()
	stringType     = reflect.TypeFor[string]()
	nullStringType = reflect.TypeFor[sql.NullString]()
)

// valueColumn returns a column named name for values like v.
func valueColumn(name string, v driver.Value) column {
	switch v.(type) {
	case int64:
		return column{name: name, typ: "INTEGER", scanType: int64Type}
	case float64:
		return column{name: name, typ: "REAL", scanType: reflect.TypeFor[float64]()}
	case bool:
		return column{name: name, typ: "BOOLEAN", scanType: reflect.TypeFor[bool]()}
	case []byte:
		return column{name: name, typ: "BLOB", scanType: reflect.TypeFor[[]byte]()}
	case string:
		return column{name: name, typ: "TEXT", scanType: stringType}
	case time.Time:
		return column{name: name, typ: "TIMESTAMP", scanType: reflect.TypeFor[time.Time]()}
	case nil:
		return column{name: name, typ: "NULL", scanType: anyType, nullable: true}
	}
	return column{name: name, typ: "ANY", scanType: anyType, nullable: true}
}

func (r *rows) Columns() []string {
	cols := r.sets[r.set].cols
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return names
}

func (r *rows) Close() error { return nil }

func (r *rows) Next(dest []driver.Value) error {
	set := r.sets[r.set]
	if r.row >= len(set.rows) {
		return io.EOF
	}
	copy(dest, set.rows[r.row])
	r.row++
	return nil
}

func (r *rows) HasNextResultSet() bool { return r.set+1 < len(r.sets) }

func (r *rows) NextResultSet() error {
	if !r.HasNextResultSet() {
		return io.EOF
	}
	r.set++
	r.row = 0
	return nil
}

func (r *rows) ColumnTypeDatabaseTypeName(index int) string {
	return r.sets[r.set].cols[index].typ
}

func (r *rows) ColumnTypeScanType(index int) reflect.Type {
	return r.sets[r.set].cols[index].scanType
}

func (r *rows) ColumnTypeNullable(index int) (nullable, ok bool) {
	return r.sets[r.set].cols[index].nullable, true
}
