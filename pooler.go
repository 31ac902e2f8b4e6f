package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
)

// This file holds what Pooler: PoolerTransaction changes: the drivers'
// one-round-trip settings, and the partition setup run inside every
// transaction, autocommit statements wrapped in one.

// Driver settings that send a query with arguments in one round trip, with
// no named statement: what a transaction pooler, which may move the session
// at any Sync, needs.
const (
	pqOneTrip  = "binary_parameters"       // lib/pq: yes
	pgxOneTrip = "default_query_exec_mode" // pgx: exec (or simple_protocol)
)

// poolerDSN adds the driver's one-round-trip setting to dsn when it is
// absent, for lib/pq and pgx; other DSNs are returned as they are.
func poolerDSN(t traits, dsn string) string {
	key, val := "", ""
	switch {
	case t.pkg == "github.com/lib/pq":
		key, val = pqOneTrip, "yes"
	case t.pgx:
		key, val = pgxOneTrip, "exec"
	default:
		return dsn
	}
	if strings.Contains(dsn, key) {
		return dsn // set by the user: checked when connecting
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set(key, val)
			u.RawQuery = q.Encode()
			return u.String()
		}
		return dsn // the driver reports what is wrong with it
	}
	return strings.TrimSpace(dsn + " " + key + "=" + val) // key=value form
}

// checkPoolerConnector refuses a lib/pq connector that would send queries
// with arguments in two round trips (binary_parameters off), which a
// transaction pooler may route to two server sessions: wrong results.
func checkPoolerConnector(t traits, base driver.Connector) error {
	if t.pkg != "github.com/lib/pq" {
		return nil
	}
	if dc, ok := base.(dsnConnector); ok { // lib/pq's Driver has no OpenConnector
		if v, ok := dsnParam(dc.dsn, pqOneTrip); !ok || !truthy(v) {
			return errors.New("sqlpool: invalid Config: Pooler: lib/pq without binary_parameters=yes sends a query with arguments in two round trips, " +
				"which a transaction pooler may run on two server sessions: remove binary_parameters from the DSN (sqlpool then sets it) or set it to yes")
		}
		return nil
	}
	v := reflect.ValueOf(base)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	var f reflect.Value
	if v.Kind() == reflect.Struct {
		if cfg := v.FieldByName("cfg"); cfg.IsValid() && cfg.Kind() == reflect.Struct {
			f = cfg.FieldByName("BinaryParameters")
		}
	}
	switch {
	case !f.IsValid() || f.Kind() != reflect.Bool:
		return errors.New("sqlpool: invalid Config: Pooler: cannot tell whether this lib/pq connector sends queries in one round trip: " +
			"use NewConnector with the DSN (sqlpool adds binary_parameters=yes), or pgx's stdlib")
	case !f.Bool():
		return errors.New("sqlpool: invalid Config: Pooler: lib/pq without binary_parameters=yes sends a query with arguments in two round trips, " +
			"which a transaction pooler may run on two server sessions: add binary_parameters=yes to the DSN")
	}
	return nil
}

// dsnParam returns the value of key in a URL or key=value DSN.
func dsnParam(dsn, key string) (string, bool) {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		return q.Get(key), q.Has(key)
	}
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return strings.Trim(v, "'"), true
		}
	}
	return "", false
}

// truthy reports whether a DSN's boolean value is true, as lib/pq reads it.
func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "t", "true", "y", "yes", "on":
		return true
	}
	return false
}

// checkPgxExecMode refuses a pgx connection whose default query mode
// prepares named statements or describes in a round trip of its own.
func checkPgxExecMode(dc driver.Conn) error {
	v := reflect.ValueOf(dc).MethodByName("Conn") // *stdlib.Conn's *pgx.Conn
	if !v.IsValid() {
		return nil
	}
	cfg := v.Call(nil)[0].MethodByName("Config")
	if !cfg.IsValid() {
		return nil
	}
	mode := reflect.Indirect(cfg.Call(nil)[0]).FieldByName("DefaultQueryExecMode")
	if !mode.IsValid() {
		return nil
	}
	// pgx.QueryExecModeExec is 4, QueryExecModeSimpleProtocol 5.
	if m := mode.Int(); m != 4 && m != 5 {
		return fmt.Errorf("sqlpool: Pooler: pgx's DefaultQueryExecMode is %v, which keeps named statements or describes in a round trip of its own, "+
			"unsafe behind a transaction pooler: set default_query_exec_mode=exec in the DSN (NewConnector does when it is absent) "+
			"or ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec", mode.Interface())
	}
	return nil
}

// wrapTx reports whether an autocommit operation of the borrowing runs in a
// transaction of sqlpool's, for its partition's setup (Pooler).
func (h *conn) wrapTx() bool {
	return len(h.part.txSetup) > 0 && !h.tx
}

// beginWrapped opens the transaction of an autocommit operation, set up for
// the partition.
func (h *conn) beginWrapped(ctx context.Context, pc *physConn) (driver.Tx, error) {
	t, err := pc.begin(ctx, driver.TxOptions{})
	if err != nil {
		return nil, err
	}
	if err := pc.runSetup(ctx, h.part, h.part.txSetup); err != nil {
		t.Rollback()
		return nil, err
	}
	h.setTx(true)
	return t, nil
}

// endWrapped commits the transaction of an autocommit operation, or rolls
// it back when the operation failed.
func (h *conn) endWrapped(t driver.Tx, err error) error {
	defer h.setTx(false)
	if err != nil {
		t.Rollback()
		return err
	}
	return t.Commit()
}

// txRows are the rows of a query in a transaction of sqlpool's: Close ends
// it.
type txRows struct {
	passRows
	h  *conn
	tx driver.Tx
}

// Close closes the rows and commits the transaction.
func (r *txRows) Close() error {
	if r.tx == nil {
		return nil
	}
	err := r.Rows.Close()
	err = r.h.endWrapped(r.tx, err)
	r.tx = nil
	return r.h.check(err)
}
