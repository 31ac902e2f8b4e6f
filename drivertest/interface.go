//lint:file-ignore SA1019 the fake driver implements the legacy interfaces on purpose, to test their fallbacks

package drivertest

import (
	"database/sql/driver"
	"reflect"
	"strings"
)

//go:generate go run gen.go

// Interface is a set of the optional database/sql/driver interfaces that a
// [Driver]'s values implement, one bit each. Options.Disable takes one to
// leave interfaces out: a type assertion to a left-out interface fails.
type Interface uint32

// The optional interfaces, grouped by the values that implement them.
const (
	// Connections.
	Pinger             Interface = 1 << iota // driver.Pinger
	ExecerContext                            // driver.ExecerContext and the legacy driver.Execer
	QueryerContext                           // driver.QueryerContext and the legacy driver.Queryer
	ConnPrepareContext                       // driver.ConnPrepareContext
	ConnBeginTx                              // driver.ConnBeginTx
	NamedValueChecker                        // driver.NamedValueChecker
	SessionResetter                          // driver.SessionResetter
	Validator                                // driver.Validator

	// Statements.
	StmtExecContext       // driver.StmtExecContext
	StmtQueryContext      // driver.StmtQueryContext
	ColumnConverter       // driver.ColumnConverter, returning driver.DefaultParameterConverter
	StmtNamedValueChecker // driver.NamedValueChecker

	// Rows.
	RowsNextResultSet              // driver.RowsNextResultSet
	RowsColumnTypeDatabaseTypeName // driver.RowsColumnTypeDatabaseTypeName
	RowsColumnTypeScanType         // driver.RowsColumnTypeScanType
	RowsColumnTypeNullable         // driver.RowsColumnTypeNullable

	// The driver returned by a connector's Driver method.
	DriverContext // driver.DriverContext

	// All is every optional interface.
	All = DriverContext<<1 - 1
)

var interfaceNames = [...]string{
	"Pinger", "ExecerContext", "QueryerContext", "ConnPrepareContext",
	"ConnBeginTx", "NamedValueChecker", "SessionResetter", "Validator",
	"StmtExecContext", "StmtQueryContext", "ColumnConverter", "StmtNamedValueChecker",
	"RowsNextResultSet", "RowsColumnTypeDatabaseTypeName", "RowsColumnTypeScanType",
	"RowsColumnTypeNullable", "DriverContext",
}

// String returns the names of the interfaces in i, joined by "|".
func (i Interface) String() string {
	var names []string
	for bit, name := range interfaceNames {
		if i&(1<<bit) != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

// A bitRange is where in an Interface the bits of one kind of value are.
type bitRange struct{ shift, width uint }

var (
	connBits = bitRange{0, 8}
	stmtBits = bitRange{8, 4}
	rowsBits = bitRange{12, 4}
)

// variant returns the index, in the variant table for the bits in r, of
// the type that implements the interfaces not in the disabled set i.
func (i Interface) variant(r bitRange) int {
	return int(^i>>r.shift) & (1<<r.width - 1)
}

// The method sets that the variant types in variants_gen.go embed, one per
// Interface bit, where the database/sql/driver interface itself will not do:
// the Rows ones embed driver.Rows, which would make Next and the others
// ambiguous, and a field named ColumnConverter would hide its method.
type (
	columnConverter  = driver.ColumnConverter
	nextResultSetter interface {
		HasNextResultSet() bool
		NextResultSet() error
	}
	databaseTypeNamer interface {
		ColumnTypeDatabaseTypeName(index int) string
	}
	scanTyper interface {
		ColumnTypeScanType(index int) reflect.Type
	}
	nullabler interface {
		ColumnTypeNullable(index int) (nullable, ok bool)
	}
)

var _ interface {
	driver.Conn
	driver.Pinger
	driver.Execer
	driver.ExecerContext
	driver.Queryer
	driver.QueryerContext
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.NamedValueChecker
	driver.SessionResetter
	driver.Validator
} = (*conn)(nil)

var _ interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
	driver.ColumnConverter
	driver.NamedValueChecker
} = (*stmt)(nil)

var _ interface {
	driver.RowsNextResultSet
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeScanType
	driver.RowsColumnTypeNullable
} = (*rows)(nil)

var _ interface {
	driver.Driver
	driver.DriverContext
} = (*Driver)(nil)
