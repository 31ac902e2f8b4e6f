package sqlpool_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"testing"

	"github.com/lib/pq"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/partition"
)

// The tests of this file attack tenant isolation on PostgreSQL the way a
// tenant that runs its own SQL can: each fails if the attack works.

// rlsFixture makes a table with a row-level security policy on
// current_setting('app.tenant'), one row per tenant, readable by a role that
// is not a superuser, and returns that role's DSN.
func rlsFixture(t *testing.T, table string, tenants ...string) string {
	t.Helper()
	dsn := drivertest.PostgresDSN(t)
	admin := openPostgres(t, dsn)
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + table,
		"CREATE TABLE " + table + " (tenant text NOT NULL, v integer)",
		"ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY",
		// The wrongly declared IMMUTABLE function: a plan cached for one
		// tenant would carry its value to the next.
		"CREATE OR REPLACE FUNCTION sqlpool_current_tenant() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT current_setting('app.tenant', true) $$",
		"CREATE POLICY by_tenant ON " + table + " USING (tenant = sqlpool_current_tenant())",
		"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sqlpool_rls') THEN CREATE ROLE sqlpool_rls LOGIN; END IF; END $$",
		"GRANT SELECT ON " + table + " TO sqlpool_rls",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, tn := range tenants {
		if _, err := admin.Exec("INSERT INTO "+table+" VALUES ($1, $2)", tn, i+1); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE IF EXISTS " + table) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("sqlpool_rls")
	return u.String()
}

// tenantPool is a pool of one connection whose partitions set app.tenant.
func tenantPool(t *testing.T, dsn string) (*sql.DB, *sqlpool.Connector) {
	t.Helper()
	c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{MaxSize: 1, Routing: partition.RouterConfig{
		Template: partition.Config{
			SetupSQL: "SELECT set_config('app.tenant', $1, false)",
			ResetSQL: "SELECT set_config('app.tenant', '', false)",
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlpool.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c
}

// seen returns the tenants of the rows the policy lets ctx's tenant see,
// through a query with an argument (cached by CacheAll).
func seen(t *testing.T, db *sql.DB, ctx context.Context, table string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, "SELECT tenant FROM "+table+" WHERE v > $1 ORDER BY tenant", 0)
	if err != nil {
		t.Fatalf("%s's query: %v", sqlpoolTenant(ctx), err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

type hostileTenantKey struct{}

func asTenant(name string) context.Context {
	return context.WithValue(sqlpool.WithTenant(context.Background(), name), hostileTenantKey{}, name)
}

func sqlpoolTenant(ctx context.Context) string {
	s, _ := ctx.Value(hostileTenantKey{}).(string)
	return s
}

func wantOnly(t *testing.T, got []string, tenant string) {
	t.Helper()
	if len(got) != 1 || got[0] != tenant {
		t.Errorf("tenant %s saw rows of %q, want only its own", tenant, got)
	}
}

func TestTenantDeallocateAllDoesNotBreakTheNextTenants(t *testing.T) {
	dsn := rlsFixture(t, "sqlpool_hostile_dealloc", "a", "b")
	for _, attack := range []string{"DEALLOCATE ALL", "DISCARD ALL"} {
		t.Run(attack, func(t *testing.T) {
			db, c := tenantPool(t, dsn)
			a, b := asTenant("a"), asTenant("b")
			wantOnly(t, seen(t, db, a, "sqlpool_hostile_dealloc"), "a") // cached now
			if _, err := db.ExecContext(a, attack); err != nil {
				t.Fatal(err)
			}
			wantOnly(t, seen(t, db, a, "sqlpool_hostile_dealloc"), "a")
			wantOnly(t, seen(t, db, b, "sqlpool_hostile_dealloc"), "b")
			// Behind sqlpool's back: the server drops the statements in a
			// function, and the next query meets SQLSTATE 26000.
			if _, err := db.ExecContext(b, "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$"); err != nil {
				t.Fatal(err)
			}
			wantOnly(t, seen(t, db, b, "sqlpool_hostile_dealloc"), "b")
			if s := c.Stats().StatementCache; s.Invalidations == 0 {
				t.Errorf("no invalidation counted after the server dropped the statements: %+v", s)
			}
		})
	}
}

func TestCachedPlanDoesNotCarryRowsToAnotherTenant(t *testing.T) {
	dsn := rlsFixture(t, "sqlpool_hostile_plan", "a", "b")
	db, _ := tenantPool(t, dsn)
	// Six runs make PostgreSQL switch the cached statement to a generic
	// plan, in which the IMMUTABLE function is folded to a's value.
	for range 8 {
		wantOnly(t, seen(t, db, asTenant("a"), "sqlpool_hostile_plan"), "a")
	}
	wantOnly(t, seen(t, db, asTenant("b"), "sqlpool_hostile_plan"), "b")
}

func TestSessionLeftoversDoNotReachTheNextTenant(t *testing.T) {
	dsn := rlsFixture(t, "sqlpool_hostile_leftovers", "a", "b")
	db, c := tenantPool(t, dsn)
	a, b := asTenant("a"), asTenant("b")
	for _, q := range []string{
		"CREATE TEMP TABLE sqlpool_secret (v text)",
		"INSERT INTO sqlpool_secret VALUES ('a-secret')",
		"SELECT set_config('app.note', 'a-note', false)",
		"SELECT pg_advisory_lock(4242)",
	} {
		if _, err := db.ExecContext(a, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	if err := db.QueryRowContext(b, "SELECT count(*) FROM pg_temp.sqlpool_secret").Scan(&n); err == nil {
		t.Errorf("tenant b read tenant a's temporary table (%d rows)", n)
	}
	var note sql.NullString
	if err := db.QueryRowContext(b, "SELECT current_setting('app.note', true)").Scan(&note); err != nil {
		t.Fatal(err)
	}
	if note.String == "a-note" {
		t.Errorf("tenant b sees tenant a's session variable app.note")
	}
	var locked bool
	other := openPostgres(t, drivertest.PostgresDSN(t)) // another session
	if err := other.QueryRow("SELECT pg_try_advisory_lock(4242)").Scan(&locked); err != nil {
		t.Fatal(err)
	}
	if !locked {
		t.Errorf("tenant a's advisory lock survived into tenant b's session")
	}
	other.Exec("SELECT pg_advisory_unlock_all()")
	other.Close()

	// A raw BEGIN left open: b's work must not run inside a's transaction.
	if _, err := db.ExecContext(a, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(a, "SELECT set_config('app.note', 'in-a-tx', true)"); err != nil {
		t.Fatal(err)
	}
	var xact string
	if err := db.QueryRowContext(b, "SELECT coalesce(current_setting('app.note', true), '') || '/' || (pg_current_xact_id_if_assigned() IS NULL)::text").Scan(&xact); err != nil {
		t.Fatal(err)
	}
	if xact == "in-a-tx/true" {
		t.Errorf("tenant b ran inside the transaction tenant a left open")
	}
	wantOnly(t, seen(t, db, b, "sqlpool_hostile_leftovers"), "b")
	if s := c.Stats().Partitions["b"]; s.Relabels+s.Fresh == 0 {
		t.Errorf("partition b's stats show no relabel: %+v", s)
	}
}

func TestTxOfOneTenantRefusesAnotherTenantsContext(t *testing.T) {
	dsn := rlsFixture(t, "sqlpool_hostile_pin", "a", "b")
	db, _ := tenantPool(t, dsn)
	a, b := asTenant("a"), asTenant("b")
	tx, err := db.BeginTx(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var s string
	err = tx.QueryRowContext(b, "SELECT tenant FROM sqlpool_hostile_pin").Scan(&s)
	if !errors.Is(err, sqlpool.ErrPartitionMismatch) {
		t.Errorf("tenant b's query in tenant a's transaction: %q, %v; want ErrPartitionMismatch", s, err)
	}
	tx.Rollback()
	conn, err := db.Conn(b)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// db.Conn(b) binds to b even when its first statement carries no tags.
	if err := conn.QueryRowContext(context.Background(), "SELECT tenant FROM sqlpool_hostile_pin").Scan(&s); err != nil || s != "b" {
		t.Errorf("untagged query on db.Conn(b): %q, %v; want b", s, err)
	}
}
