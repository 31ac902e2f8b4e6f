// Package sqlpool is a database/sql driver wrapper that takes over connection
// pooling from database/sql.
//
// A Connector wraps any driver (lib/pq, go-sql-driver/mysql,
// mattn/go-sqlite3, pgx's stdlib, ...) and pools its physical connections
// itself, with limits, timeouts, a priority wait queue, validation, aging and
// statistics, routed by values carried in the context:
//
//	c, err := sqlpool.NewConnector(&pq.Driver{}, dsn, sqlpool.Config{MaxSize: 50})
//	db := sqlpool.OpenDB(c)
//	rows, err := db.QueryContext(sqlpool.WithTenant(ctx, "acme"), q, args...)
//
// # Logical handles
//
// The driver.Conn that database/sql holds is a light handle. On the first
// operation of each borrowing (Query, Exec, Prepare, Begin, Ping, a
// statement's Exec or Query) it borrows a physical connection from the pool,
// routed by that operation's context, and it gives it back when database/sql
// takes the handle back (driver.Validator's IsValid, called on every release)
// or closes it. A transaction, an *sql.Conn and an open *sql.Rows keep their
// physical connection until they end; inside them the session is pinned, and
// a differently tagged context on a later statement does not move it.
//
// Handles do not trust the context given to Connect: database/sql may call it
// from its own goroutine with a background context. Acquisition errors
// (ErrAcquireTimeout, ErrQueueFull, ErrClosed, ErrCircuitOpen, dial errors) surface from the
// operation that asked, and never as driver.ErrBadConn, so database/sql does
// not retry them.
//
// # database/sql's own pool
//
// OpenDB sets database/sql's limits so that it keeps idle handles (cheap:
// they hold no physical connection) and never queues callers itself. With
// sql.OpenDB or Register, or after changing SetMaxOpenConns or
// SetMaxIdleConns, routing stays correct, but database/sql may queue callers
// in random order before sqlpool sees them. DB.Stats counts handles and says
// little under sqlpool: use Connector.Stats.
package sqlpool
