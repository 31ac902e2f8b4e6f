package sqlpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
)

// Register makes a driver named name that wraps d with cfg, so that
// sql.Open(name, dsn) returns a *sql.DB pooled by sqlpool, for tools that take
// only a driver name. Each sql.Open gets its own Connector. database/sql's
// defaults then apply (two idle handles), so prefer NewConnector and OpenDB
// where you can. Like sql.Register, it panics if called twice with one name.
func Register(name string, d driver.Driver, cfg Config) {
	sql.Register(name, &wrapDriver{d: d, cfg: cfg})
}

// wrapDriver is the driver.Driver of Register and of Connector.Driver.
type wrapDriver struct {
	d   driver.Driver
	cfg Config
}

var _ driver.DriverContext = (*wrapDriver)(nil)

// OpenConnector returns a new Connector for dsn.
func (w *wrapDriver) OpenConnector(dsn string) (driver.Connector, error) {
	return NewConnector(w.d, dsn, w.cfg)
}

// Open opens an unpooled connection of the wrapped driver. database/sql never
// calls it, since the driver has OpenConnector.
func (w *wrapDriver) Open(dsn string) (driver.Conn, error) { return w.d.Open(dsn) }

// dsnConnector adapts a driver without DriverContext.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (t dsnConnector) Connect(context.Context) (driver.Conn, error) { return t.d.Open(t.dsn) }
func (t dsnConnector) Driver() driver.Driver                        { return t.d }

// traits is what sqlpool knows of a wrapped driver's behaviour: one table,
// filled once per Connector by traitsOf, instead of checks spread over the
// package.
type traits struct {
	pkg    string // the driver's import path
	family family
	pgx    bool // jackc/pgx's stdlib: it caches statements itself

	// cacheMode is CacheDefault's choice: off for pgx (its own cache), all
	// for lib/pq, go-sql-driver/mysql and mattn/go-sqlite3 (none caches,
	// and their one-off queries with arguments cost extra round trips or
	// parses), explicit for any other driver.
	cacheMode CacheMode
	// badConnAmbiguous: the driver returns driver.ErrBadConn even when a
	// statement may have reached the server (lib/pq).
	badConnAmbiguous bool
	// stmtHoldsLock: a statement with rows not read to the end holds the
	// database's lock and an open transaction until it is reset or
	// finalized (mattn/go-sqlite3; its Exec steps once and resets only on
	// error). Such a driver's Exec never runs on a statement sqlpool keeps,
	// and the rows of a kept one are closed when they become garbage, as
	// the driver's finalizer does for the bare driver's one-off statements.
	stmtHoldsLock bool
	// setTimeout and resetTimeout set and undo a session statement timeout
	// (a partition's StatementTimeout): a fmt template taking milliseconds,
	// and a statement. Empty: not supported.
	setTimeout, resetTimeout string
	// fullReset resets a whole session (variables, temporary tables,
	// locks, prepared statements; it fails inside a transaction block).
	// None: a session cannot be reset, only replaced.
	fullReset []string
}

// family is a database's SQL dialect.
type family uint8

const (
	familyOther family = iota
	familyPostgres
	familyMySQL
	familySQLite
)

// traitsOf returns the traits of driver d, by its package.
func traitsOf(d driver.Driver) traits {
	t := traits{pkg: driverPackage(d), cacheMode: CacheExplicit}
	switch {
	case t.pkg == "github.com/lib/pq":
		t.family, t.cacheMode, t.badConnAmbiguous = familyPostgres, CacheAll, true
	case strings.HasPrefix(t.pkg, "github.com/jackc/pgx"):
		t.family, t.cacheMode, t.pgx = familyPostgres, CacheOff, true
	case t.pkg == "github.com/go-sql-driver/mysql":
		t.family, t.cacheMode = familyMySQL, CacheAll
		t.setTimeout, t.resetTimeout = "SET SESSION max_execution_time = %d", "SET SESSION max_execution_time = DEFAULT"
	case t.pkg == "github.com/mattn/go-sqlite3":
		t.family, t.cacheMode, t.stmtHoldsLock = familySQLite, CacheAll, true
	}
	if t.family == familyPostgres {
		t.setTimeout, t.resetTimeout = "SET statement_timeout = %d", "SET statement_timeout = DEFAULT"
		t.fullReset = []string{"DISCARD ALL"}
	}
	return t
}

// driverPackage returns the import path of d's package.
func driverPackage(d driver.Driver) string {
	t := reflect.TypeOf(d)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.PkgPath()
}

// planInvalidated reports whether err says the server threw away the plan of
// a prepared statement, which re-preparing fixes: PostgreSQL's "cached plan
// must not change result type" (SQLSTATE 0A000), MySQL's error 1615
// ("Prepared statement needs to be re-prepared").
func planInvalidated(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) && state.SQLState() == "0A000" &&
		strings.Contains(err.Error(), "cached plan must not change result type") {
		return true
	}
	return strings.Contains(err.Error(), "Error 1615")
}

// stmtGone reports whether err says the server no longer knows a prepared
// statement: PostgreSQL's SQLSTATE 26000 (after DEALLOCATE ALL or DISCARD
// ALL, or behind a pooler that moved the session), MySQL's error 1243
// ("Unknown prepared statement handler"). The statement did not run.
func stmtGone(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) && state.SQLState() == "26000" {
		return true
	}
	return strings.Contains(err.Error(), "Error 1243")
}

// sessionWipe says what a PostgreSQL statement does to the session state
// sqlpool keeps track of: stmts, it drops the session's prepared statements
// (DISCARD ALL, DEALLOCATE); label, it undoes a partition's setup (DISCARD
// ALL, RESET). Cheap for any other statement: one byte is looked at.
func sessionWipe(query string) (stmts, label bool) {
	q := strings.TrimLeft(query, " \t\r\n(")
	if q == "" {
		return false, false
	}
	switch q[0] {
	case 'd', 'D', 'r', 'R':
	default:
		return false, false
	}
	word, rest, _ := strings.Cut(q, " ")
	switch strings.ToUpper(word) {
	case "DEALLOCATE":
		return true, false
	case "DISCARD":
		all := strings.EqualFold(strings.TrimSpace(strings.TrimRight(rest, "; \t\r\n")), "ALL")
		return all, all
	case "RESET":
		return false, true
	}
	return false, false
}

// isCopy reports whether query is a COPY, whose prepared statement (lib/pq's
// CopyIn) is a server-side operation that its Close ends: never cached, never
// shared.
func isCopy(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n")
	return len(q) >= 4 && strings.EqualFold(q[:4], "COPY")
}
