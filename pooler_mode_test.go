package sqlpool_test

import (
	"database/sql/driver"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/partition"
)

// poolerDriver returns the driver named "lib/pq" or "pgx".
func poolerDriver(name string) driver.Driver {
	if name == "pgx" {
		return stdlib.GetDefaultDriver()
	}
	return &pq.Driver{}
}

// openPoolerMode opens sqlpool in transaction-pooler mode over the driver
// named, on the pooler's DSN as a user writes it (no driver setting), with
// the tenant set per transaction.
func openPoolerMode(t testing.TB, env *poolerEnv, drv string) *sqlpool.Connector {
	t.Helper()
	c, err := sqlpool.NewConnector(poolerDriver(drv), env.DSN(""), sqlpool.Config{
		MaxSize: 4,
		Pooler:  sqlpool.PoolerTransaction,
		Routing: partition.RouterConfig{Template: partition.Config{
			SetupSQL: "SELECT set_config('app.tenant', $1, true)",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPoolerModeIsCorrectBehindPgBouncer runs the mixed RLS workload
// (pooler_test.go) through sqlpool's transaction-pooler mode behind a real
// PgBouncer in transaction mode, 16 clients on 4 server connections: no
// wrong result, no row of another tenant, no error.
func TestPoolerModeIsCorrectBehindPgBouncer(t *testing.T) {
	env := newPoolerEnv(t)
	queries := poolerQueries(t)
	var results []poolerResult
	for _, drv := range []string{"lib/pq", "pgx"} {
		t.Run(drv, func(t *testing.T) {
			c := openPoolerMode(t, env, drv)
			db := sqlpool.OpenDB(c)
			defer db.Close()
			res := runPoolerWorkload(t, env, poolerClient{Driver: drv, Mode: "sqlpool Pooler=Transaction", DB: db, Session: contextSession}, queries)
			results = append(results, res)
			if res.Queries != int64(queries) || res.Wrong != 0 || res.CrossTenant != 0 || res.ErrorCount() != 0 {
				t.Errorf("%d statements (want %d): %d wrong results, %d rows of other tenants, errors %v; want none",
					res.Queries, queries, res.Wrong, res.CrossTenant, res.Errors)
			}
		})
	}
	logPoolerTable(t, results...)
}

// What needs a session is refused in transaction-pooler mode, with an error
// that says what to use instead.
func TestPoolerModeRefusesSessionState(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sqlpool.Config
		want string
	}{
		{"session SetupSQL", sqlpool.Config{Routing: partition.RouterConfig{Template: partition.Config{SetupSQL: "SELECT set_config('app.tenant', $1, false)"}}}, "transaction-local"},
		{"SET", sqlpool.Config{Routing: partition.RouterConfig{Template: partition.Config{SetupSQL: "SET search_path = x"}}}, "transaction-local"},
		{"ResetSQL", sqlpool.Config{Routing: partition.RouterConfig{Template: partition.Config{SetupSQL: "SET LOCAL x = 1", ResetSQL: "RESET x"}}}, "drop ResetSQL"},
		{"RecycleChecked", sqlpool.Config{Recycle: sqlpool.RecycleChecked}, "RecycleFast"},
		{"CacheAll", sqlpool.Config{StatementCacheMode: sqlpool.CacheAll}, "CacheOff"},
		{"config ResetSQL", sqlpool.Config{ResetSQL: "DISCARD ALL"}, "drop it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Pooler = sqlpool.PoolerTransaction
			_, err := sqlpool.NewConnector(&pq.Driver{}, "postgres://u@127.0.0.1/db", tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a refusal that says %q", err, tc.want)
			}
		})
	}
	// A lib/pq connector made without binary_parameters cannot be fixed.
	base, err := pq.NewConnector("postgres://u@127.0.0.1/db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlpool.Wrap(base, sqlpool.Config{Pooler: sqlpool.PoolerTransaction}); err == nil || !strings.Contains(err.Error(), "binary_parameters=yes") {
		t.Errorf("Wrap of lib/pq without binary_parameters: %v, want a refusal naming binary_parameters=yes", err)
	}
	base, _ = pq.NewConnector("postgres://u@127.0.0.1/db?binary_parameters=yes")
	c, err := sqlpool.Wrap(base, sqlpool.Config{Pooler: sqlpool.PoolerTransaction})
	if err != nil {
		t.Fatalf("Wrap of lib/pq with binary_parameters=yes: %v", err)
	}
	c.Close()
}
