package main

import (
	"cmp"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// source is a third-party module whose tests the harness runs, and the
// changes made to a copy of it: text replacements where its tests open a
// *sql.DB, and added files that register the wrapped drivers. Every added
// hook reads SQLPOOL_COMPAT_WRAP: unset or 0, the suite opens the bare
// driver exactly as upstream does, so one copy serves both modes.
type source struct {
	module  string  // module@version, fetched with go mod download
	patches []patch // applied in order
	files   map[string]string
}

// patch replaces old with new in file, which must contain old exactly n
// times, so that a new upstream version that moved the code fails loudly.
type patch struct {
	file, old, new string
	n              int
}

// suite is one run of a source's tests against one driver.
type suite struct {
	name   string // suite name in the table and the allow-list
	src    *source
	driver string
	server string // "postgres", "mysql", or "" (SQLite: a file)
	// skip is a -skip regexp of tests that cannot run on this machine in
	// either mode; each is explained where it is set.
	skip string
	// afterCrash is a statement run on the suite's server after a test
	// panicked, undoing what the test's cleanup would have, so that the
	// tests after it start as they would have.
	afterCrash string
	// env returns the suite's environment, given the servers and a private
	// temporary directory.
	env func(s servers, tmp string) ([]string, error)
}

// servers are the DSNs of the test servers.
type servers struct {
	postgres, mysql string
}

// sqlpoolConfig is the Config every wrapped suite uses: the zero value,
// what a user who switches drivers gets.
const sqlpoolConfig = "sqlpool.Config{}"

// wrapHelpers is the part of every added test file that opens wrapped
// connectors; %s is the package name.
const wrapHelpers = `
// compatWrap reports whether the compat harness asked for the wrapped run.
func compatWrap() bool { return os.Getenv("SQLPOOL_COMPAT_WRAP") == "1" }

// compatConnector returns c, wrapped by sqlpool in the wrapped run.
func compatConnector(c driver.Connector) driver.Connector {
	if !compatWrap() {
		return c
	}
	w, err := sqlpool.Wrap(c, ` + sqlpoolConfig + `)
	if err != nil {
		panic(err)
	}
	return w
}
`

var sqlx = &source{
	module: "github.com/jmoiron/sqlx@v1.4.0",
	patches: []patch{
		// The suite connects once per database in ConnectAll; sqlx picks
		// the bind type from the driver name, so the name is kept and only
		// the *sql.DB under it changes.
		{"sqlx_test.go", `, err = Connect("`, `, err = compatConnect("`, 3},
	},
	files: map[string]string{"zz_sqlpool_test.go": `package sqlx

import (
	"database/sql"
	"database/sql/driver"
	"log"
	"os"
	"sync"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"
	"github.com/sqlpool/sqlpool"
)

// compatRegister registers the wrapped drivers. It is called from
// ConnectAll, which runs in an init function earlier than this file's.
var compatRegister = sync.OnceFunc(func() {
	sqlpool.Register("sqlpool-postgres", &pq.Driver{}, ` + sqlpoolConfig + `)
	sqlpool.Register("sqlpool-pgx", stdlib.GetDefaultDriver(), ` + sqlpoolConfig + `)
	sqlpool.Register("sqlpool-mysql", &mysql.MySQLDriver{}, ` + sqlpoolConfig + `)
	sqlpool.Register("sqlpool-sqlite3", &sqlite3.SQLiteDriver{}, ` + sqlpoolConfig + `)
})

var _ = compatConnector

// compatConnect is Connect with the harness's choice of driver under the
// suite's driver name: pgx instead of lib/pq with SQLPOOL_COMPAT_PGX=1,
// wrapped by sqlpool with SQLPOOL_COMPAT_WRAP=1. A database the harness
// asked for must answer: the suite would otherwise pass without testing.
func compatConnect(driverName, dsn string) (*DB, error) {
	name := driverName
	if name == "postgres" && os.Getenv("SQLPOOL_COMPAT_PGX") == "1" {
		name = "pgx"
	}
	if compatWrap() {
		compatRegister()
		name = "sqlpool-" + name
	}
	db, err := sql.Open(name, dsn)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		log.Fatalf("compat: %s (%s): %v", driverName, name, err)
	}
	return NewDb(db, driverName), nil
}
` + wrapHelpers},
}

var pq = &source{
	module: "github.com/lib/pq@v1.12.3",
	patches: []patch{
		// pqtest.DB opens almost every test's database; pqtest cannot import
		// pq (a cycle), so the driver name becomes a variable the added
		// test file sets.
		{"internal/pqtest/pqtest.go", `sql.Open("postgres", DSN(`, `sql.Open(DriverName, DSN(`, 1},
		// Tests that build a connector themselves.
		{"connector_test.go", `sql.OpenDB(c)`, `sql.OpenDB(compatConnector(c))`, 2},
		{"error_test.go", `sql.OpenDB(c)`, `sql.OpenDB(compatConnector(c))`, 2},
		{"notice_test.go", `sql.OpenDB(c)`, `sql.OpenDB(compatConnector(c))`, 1},
		{"notify_test.go", `sql.OpenDB(c)`, `sql.OpenDB(compatConnector(c))`, 1},
	},
	files: map[string]string{
		"internal/pqtest/zz_sqlpool.go": `package pqtest

// DriverName is the driver DB opens; the compat harness sets it to a driver
// wrapped by sqlpool.
var DriverName = "postgres"
`,
		"zz_sqlpool_test.go": `package pq

import (
	"database/sql/driver"
	"os"

	"github.com/lib/pq/internal/pqtest"
	"github.com/sqlpool/sqlpool"
)

func init() {
	if compatWrap() {
		sqlpool.Register("sqlpool-postgres", &Driver{}, ` + sqlpoolConfig + `)
		pqtest.DriverName = "sqlpool-postgres"
	}
}
` + wrapHelpers,
	},
}

var mysqlSrc = &source{
	module: "github.com/go-sql-driver/mysql@v1.10.1",
	patches: []patch{
		// Most tests open driverNameTest, which the added file sets; these
		// open "mysql" or a connector directly.
		{"driver_test.go", `sql.Open("mysql", `, `sql.Open(driverNameTest, `, 3},
		{"driver_test.go", `sql.OpenDB(connector)`, `sql.OpenDB(compatConnector(connector))`, 1},
		{"driver_test.go", `sql.OpenDB(conn)`, `sql.OpenDB(compatConnector(conn))`, 2},
		{"driver_test.go", `sql.OpenDB(hijack)`, `sql.OpenDB(compatConnector(hijack))`, 1},
	},
	files: map[string]string{"zz_sqlpool_test.go": `package mysql

import (
	"database/sql/driver"
	"os"

	"github.com/sqlpool/sqlpool"
)

// This init runs after driver_test.go's, which sets driverNameTest.
func init() {
	if compatWrap() {
		sqlpool.Register("sqlpool-mysql", &MySQLDriver{}, ` + sqlpoolConfig + `)
		driverNameTest = "sqlpool-mysql"
	}
}
` + wrapHelpers},
}

// suites are all the suites, in the order of the table.
var suites = []suite{
	{name: "sqlx/pq", src: sqlx, driver: "lib/pq", server: "postgres", env: sqlxEnv("postgres")},
	{name: "sqlx/pgx", src: sqlx, driver: "pgx/v5 stdlib", server: "postgres", env: sqlxEnv("pgx")},
	{name: "sqlx/mysql", src: sqlx, driver: "go-sql-driver/mysql", server: "mysql", env: sqlxEnv("mysql")},
	{name: "sqlx/sqlite3", src: sqlx, driver: "mattn/go-sqlite3", env: sqlxEnv("sqlite3")},
	{name: "pq", src: pq, driver: "lib/pq", server: "postgres", env: pqEnv},
	{
		name: "mysql", src: mysqlSrc, driver: "go-sql-driver/mysql", server: "mysql", env: mysqlEnv,
		// It dials 1.1.1.1 expecting an i/o timeout; without a route the
		// dial fails otherwise and the test dereferences a nil error,
		// killing the whole run, bare as well as wrapped.
		skip: "^TestConnectorReturnsTimeout$",
		// runTests drops the table in a cleanup, which a panic skips.
		afterCrash: "DROP TABLE IF EXISTS test",
	},
}

// sqlxEnv returns the environment of sqlx's suite on one database; the
// other two are skipped.
func sqlxEnv(db string) func(servers, string) ([]string, error) {
	return func(s servers, tmp string) ([]string, error) {
		env := []string{"SQLX_POSTGRES_DSN=skip", "SQLX_MYSQL_DSN=skip", "SQLX_SQLITE_DSN=skip"}
		switch db {
		case "postgres", "pgx":
			env[0] = "SQLX_POSTGRES_DSN=" + s.postgres
			if db == "pgx" {
				env = append(env, "SQLPOOL_COMPAT_PGX=1")
			}
		case "mysql":
			env[1] = "SQLX_MYSQL_DSN=" + s.mysql
		case "sqlite3":
			env[2] = "SQLX_SQLITE_DSN=" + filepath.Join(tmp, "sqlx.db")
		}
		return env, nil
	}
}

// pqEnv returns lib/pq's PG* variables for the PostgreSQL DSN.
func pqEnv(s servers, _ string) ([]string, error) {
	u, err := url.Parse(s.postgres)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("compat: PostgreSQL DSN %q: want a postgres:// URL (set SQLPOOL_TEST_POSTGRES_DSN)", s.postgres)
	}
	env := []string{
		"PGHOST=" + u.Hostname(),
		"PGUSER=" + u.User.Username(),
		"PGDATABASE=" + strings.TrimPrefix(u.Path, "/"),
		"PGSSLMODE=" + cmp.Or(u.Query().Get("sslmode"), "disable"),
	}
	if p := u.Port(); p != "" {
		env = append(env, "PGPORT="+p)
	}
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
	}
	return env, nil
}

// mysqlEnv returns go-sql-driver/mysql's MYSQL_TEST_* variables for the
// MySQL DSN.
func mysqlEnv(s servers, _ string) ([]string, error) {
	c, err := mysql.ParseDSN(s.mysql)
	if err != nil {
		return nil, fmt.Errorf("compat: MySQL DSN %q: %w (set SQLPOOL_TEST_MYSQL_DSN)", s.mysql, err)
	}
	return []string{
		"MYSQL_TEST_USER=" + c.User,
		"MYSQL_TEST_PASS=" + c.Passwd,
		"MYSQL_TEST_PROT=" + c.Net,
		"MYSQL_TEST_ADDR=" + c.Addr,
		"MYSQL_TEST_DBNAME=" + c.DBName,
	}, nil
}
