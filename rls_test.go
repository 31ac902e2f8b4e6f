package sqlpool_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// TestRowLevelSecurityNeverLeaksBetweenTenants is the security property of
// partitions on PostgreSQL: with a row-level security policy on
// current_setting('app.tenant'), set by each partition's session setup,
// every query sees its own tenant's rows and only them, under random
// concurrent load of more tenants than connections. SQLPOOL_RLS_QUERIES sets
// the number of queries (default 100000; 10000 with -short).
func TestRowLevelSecurityNeverLeaksBetweenTenants(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	admin := openPostgres(t, dsn)
	const tenants, rowsPerTenant = 12, 3
	for _, q := range []string{
		"DROP TABLE IF EXISTS sqlpool_rls",
		"CREATE TABLE sqlpool_rls (tenant text NOT NULL, v integer)",
		"ALTER TABLE sqlpool_rls ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY by_tenant ON sqlpool_rls USING (tenant = current_setting('app.tenant', true))",
		"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sqlpool_rls') THEN CREATE ROLE sqlpool_rls LOGIN; END IF; END $$",
		"GRANT SELECT ON sqlpool_rls TO sqlpool_rls",
		fmt.Sprintf("INSERT INTO sqlpool_rls SELECT 't' || (g %% %d), g FROM generate_series(1, %d) g", tenants, tenants*rowsPerTenant),
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE IF EXISTS sqlpool_rls") })

	queries := 100_000
	if testing.Short() {
		queries = 10_000
	}
	if s := os.Getenv("SQLPOOL_RLS_QUERIES"); s != "" {
		queries, _ = strconv.Atoi(s)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("sqlpool_rls") // not a superuser: RLS applies
	routing := partition.RouterConfig{Template: partition.Config{
		SetupSQL: "SELECT set_config('app.tenant', $1, false)",
		ResetSQL: "SELECT set_config('app.tenant', '', false)",
	}}
	for _, maxOpen := range []int{0, 3} {
		t.Run(fmt.Sprintf("SetMaxOpenConns=%d", maxOpen), func(t *testing.T) {
			c, err := sqlpool.NewConnector(&pq.Driver{}, u.String(), sqlpool.Config{MaxSize: 4, Routing: routing})
			if err != nil {
				t.Fatal(err)
			}
			db := sqlpool.OpenDB(c)
			defer db.Close()
			db.SetMaxOpenConns(maxOpen)
			var next, violations, failures atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), uint64(maxOpen)))
					for next.Add(1) <= int64(queries/2) {
						tenant := fmt.Sprintf("t%d", r.IntN(tenants))
						ctx := sqlpool.WithTenant(context.Background(), tenant)
						rows, err := db.QueryContext(ctx, "SELECT tenant FROM sqlpool_rls WHERE v > $1", 0)
						if err != nil {
							failures.Add(1)
							continue
						}
						n := 0
						for rows.Next() {
							var got string
							rows.Scan(&got)
							if got != tenant {
								violations.Add(1)
							}
							n++
						}
						rows.Close()
						if n != rowsPerTenant {
							violations.Add(1) // the setup did not run: no rows
						}
					}
				}()
			}
			wg.Wait()
			t.Logf("%d queries of %d tenants on 4 connections in %v: %d violations, %d failures",
				queries/2, tenants, time.Since(start).Round(time.Millisecond), violations.Load(), failures.Load())
			if violations.Load() != 0 || failures.Load() != 0 {
				t.Errorf("%d violations, %d failures; want none", violations.Load(), failures.Load())
			}
		})
	}
}

func TestPartitionStatementTimeoutOnPostgres(t *testing.T) {
	dsn := drivertest.PostgresDSN(t)
	routing := partition.RouterConfig{Partitions: []partition.Config{{Name: "reports", StatementTimeout: 50 * time.Millisecond}}}
	c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{MaxSize: 1, Routing: routing})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	defer db.Close()
	reports := sqlpool.WithTenant(context.Background(), "reports")
	if _, err := db.ExecContext(reports, "SELECT pg_sleep(0.5)"); err == nil || !contains(err, "statement timeout") {
		t.Errorf("err = %v, want the partition's statement timeout", err)
	}
	// The same connection, back in another partition, has no timeout.
	if _, err := db.ExecContext(context.Background(), "SELECT pg_sleep(0.1)"); err != nil {
		t.Errorf("the default partition inherited the timeout: %v", err)
	}
}

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

func openPostgres(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
