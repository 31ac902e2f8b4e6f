package sqlpool_test

import (
	"context"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/sqlpool/sqlpool"
)

// TestCallsReachTheDriverExactlyOnceInOrder checks with go-sqlmock's strict
// expectations that sqlpool adds, drops and reorders no driver call.
func TestCallsReachTheDriverExactlyOnceInOrder(t *testing.T) {
	mockDB, mock, err := sqlmock.NewWithDSN("sqlpool-exact-calls", sqlmock.MonitorPingsOption(true))
	if err != nil {
		t.Fatal(err)
	}
	defer mockDB.Close()
	c, err := sqlpool.NewConnector(mockDB.Driver(), "sqlpool-exact-calls", sqlpool.Config{MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)

	mock.ExpectBegin()
	mock.ExpectExec("INSERT INTO t").WithArgs(1, "a").WillReturnResult(sqlmock.NewResult(1, 1))
	mock.ExpectCommit()
	mock.ExpectQuery("SELECT name FROM t").WithArgs(1).WillReturnRows(sqlmock.NewRows([]string{"name"}).AddRow("a"))
	mock.ExpectPing()
	mock.ExpectClose()

	ctx := sqlpool.WithTenant(context.Background(), "acme")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t (id, name) VALUES (?, ?)", 1, "a"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := db.QueryRowContext(ctx, "SELECT name FROM t WHERE id = ?", 1).Scan(&name); err != nil || name != "a" {
		t.Fatalf("name %q, err %v", name, err)
	}
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}
