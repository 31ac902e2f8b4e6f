package drivertest

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq" // registers "postgres"
)

// FakeDialect is the [Dialect] of a [Driver]. Its tables are key prefixes:
// row id of table t is the key "t id".
var FakeDialect = Dialect{
	Name:        "fake",
	Insert:      "SET %s ? ?",
	SelectByID:  "GET %s ?",
	SelectAll:   "SCAN %s",
	SelectNull:  "SELECT NULL",
	SelectTypes: "SELECT 1 2.5 abc TRUE X'6869'",
	MultiResult: "MULTI",
	Sleep:       "SLEEP",
	SessionID:   "CONNID",
	TxIsolation: []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable},
	ReadOnlyTx:  true,
}

// PostgresDialect is the [Dialect] of PostgreSQL through github.com/lib/pq.
var PostgresDialect = Dialect{
	Name:            "postgres",
	CreateTable:     "CREATE TABLE %s (id integer PRIMARY KEY, name varchar(64))",
	DropTable:       "DROP TABLE IF EXISTS %s",
	Insert:          "INSERT INTO %s (id, name) VALUES ($1, $2)",
	SelectByID:      "SELECT name FROM %s WHERE id = $1",
	SelectAll:       "SELECT id, name FROM %s ORDER BY id",
	SelectNull:      "SELECT NULL",
	SelectTypes:     `SELECT 1::int8 AS i, 2.5::float8 AS f, 'abc'::text AS s, true AS b, '\x6869'::bytea AS y`,
	MultiResult:     "SELECT 1 AS a; SELECT 2 AS b",
	Sleep:           "SELECT pg_sleep(10)",
	SessionID:       "SELECT pg_backend_pid()",
	InsertReturning: "INSERT INTO %s (id, name) VALUES ($1, $2) RETURNING id",
	AddColumn:       "ALTER TABLE %s ADD COLUMN extra integer",
	TxIsolation:     []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable},
	ReadOnlyTx:      true,
}

// MySQLDialect is the [Dialect] of MySQL and MariaDB through
// github.com/go-sql-driver/mysql. Its MultiResult needs multiStatements=true
// in the DSN, as [MySQLDSN] sets; it needs no parseTime.
var MySQLDialect = Dialect{
	Name:            "mysql",
	CreateTable:     "CREATE TABLE %s (id integer PRIMARY KEY, name varchar(64))",
	DropTable:       "DROP TABLE IF EXISTS %s",
	Insert:          "INSERT INTO %s (id, name) VALUES (?, ?)",
	SelectByID:      "SELECT name FROM %s WHERE id = ?",
	SelectAll:       "SELECT id, name FROM %s ORDER BY id",
	SelectNull:      "SELECT NULL",
	SelectTypes:     "SELECT 1 AS i, 2.5e0 AS f, 'abc' AS s, TRUE AS b, X'6869' AS y",
	MultiResult:     "SELECT 1 AS a; SELECT 2 AS b",
	Sleep:           "SELECT SLEEP(10)",
	SessionID:       "SELECT CONNECTION_ID()",
	InsertReturning: "INSERT INTO %s (id, name) VALUES (?, ?) RETURNING id",
	AddColumn:       "ALTER TABLE %s ADD COLUMN extra integer",
	TxIsolation:     []sql.IsolationLevel{sql.LevelDefault, sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable},
	ReadOnlyTx:      true,
}

// SQLiteDialect is the [Dialect] of SQLite through
// github.com/mattn/go-sqlite3, which has no multiple result sets, no
// session ID and no read-only transactions, and accepts every isolation
// level while being serializable. Its Sleep counts to a billion.
var SQLiteDialect = Dialect{
	Name:            "sqlite",
	CreateTable:     "CREATE TABLE %s (id integer PRIMARY KEY, name text)",
	DropTable:       "DROP TABLE IF EXISTS %s",
	Insert:          "INSERT INTO %s (id, name) VALUES (?, ?)",
	SelectByID:      "SELECT name FROM %s WHERE id = ?",
	SelectAll:       "SELECT id, name FROM %s ORDER BY id",
	SelectNull:      "SELECT NULL",
	SelectTypes:     "SELECT 1 AS i, 2.5 AS f, 'abc' AS s, 1 AS b, X'6869' AS y",
	Sleep:           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT count(*) FROM n",
	InsertReturning: "INSERT INTO %s (id, name) VALUES (?, ?) RETURNING id",
	AddColumn:       "ALTER TABLE %s ADD COLUMN extra integer",
	TxIsolation:     []sql.IsolationLevel{sql.LevelDefault, sql.LevelSerializable},
}

// PostgresDSN returns the DSN of the PostgreSQL server to test against:
// $SQLPOOL_TEST_POSTGRES_DSN, by default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. If the server
// does not answer a ping within 2 seconds, it skips t, or, if
// $SQLPOOL_REQUIRE_SERVERS is 1, fails it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := getenv("SQLPOOL_TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	probe(t, "PostgreSQL", "postgres", dsn, "SQLPOOL_TEST_POSTGRES_DSN")
	return dsn
}

// MySQLDSN returns the DSN of the MySQL server to test against:
// $SQLPOOL_TEST_MYSQL_DSN, by default root@tcp(127.0.0.1:3306)/test, with
// multiStatements=true added for [MySQLDialect]'s MultiResult. If the
// server does not answer a ping within 2 seconds, it skips t, or, if
// $SQLPOOL_REQUIRE_SERVERS is 1, fails it.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(getenv("SQLPOOL_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test"))
	if err != nil {
		t.Fatalf("drivertest: SQLPOOL_TEST_MYSQL_DSN: %v", err)
	}
	cfg.MultiStatements = true
	dsn := cfg.FormatDSN()
	probe(t, "MySQL", "mysql", dsn, "SQLPOOL_TEST_MYSQL_DSN")
	return dsn
}

// probe skips or fails t unless the server at dsn answers a ping.
func probe(t testing.TB, server, driverName, dsn, envVar string) {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err == nil {
		return
	}
	if os.Getenv("SQLPOOL_REQUIRE_SERVERS") == "1" {
		t.Fatalf("drivertest: %s server from $%s does not answer: %v", server, envVar, err)
	}
	t.Skipf("drivertest: skipping: %s server from $%s does not answer (set SQLPOOL_REQUIRE_SERVERS=1 to fail instead): %v", server, envVar, err)
}

// getenv returns the environment variable key, or def if it is empty.
func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
