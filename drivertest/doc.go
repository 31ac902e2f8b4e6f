// Package drivertest helps test code that wraps a database/sql driver.
//
// It has two parts: [Driver], a fake driver whose latency, faults and
// optional interfaces the test controls and whose counters it can assert on
// exactly, and [Run], a conformance runner that checks that a wrapped
// *sql.DB behaves like the bare one on a real or fake database.
//
// # The fake's command language
//
// Each [Driver] is its own in-memory key-value server. A statement is a
// list of words separated by white space; the first word is the keyword, in
// any case. A word that is exactly "?" stands for the next positional
// argument; named arguments are not supported. A statement's NumInput is the
// number of its "?" words. Unknown or malformed statements fail at Prepare,
// and at Exec and Query, with an error that names the statement.
//
//	SET key... value  (exec) stores value under key; RowsAffected 1, LastInsertId
//	                  from a counter that increases with every write
//	DEL key...        (exec) removes key; RowsAffected 1 if it was there, else 0
//	GET key...        (query) one column, value: the stored value, or no row
//	SCAN prefix...    (query) every key made of the prefix's words and one more,
//	                  ordered by that last word (numerically where it is an
//	                  integer); columns key (the last word) and value
//	COUNT             (query) one column, count: the number of keys
//	SELECT x...       (query) one row echoing each x, in columns c1, c2...
//	ROWS n            (query) n rows: id (1..n), name ("name-<id>") and note
//	                  (NULL for even ids, else "note-<id>")
//	MULTI             (query) two result sets: a=1, then b=2
//	SETTENANT x       (exec) sets this connection's tenant (session state)
//	TENANT            (query) one column, tenant: this connection's tenant or NULL
//	CONNID            (query) one column, id: this connection's ID
//	SLEEP             (either) blocks until the context is done, returns its error
//	BADCONN           (either) returns driver.ErrBadConn
//	FAIL msg...       (either) returns the error "drivertest: msg..."
//
// A key is one or more words, joined by single spaces, so "SET t ? ?" with
// arguments 1 and "x" stores "x" under the key "t 1". Stored values are the
// argument as given (SET's literal value word is stored as a string). In
// SELECT a literal word is an int64 if it is a decimal integer, a float64 if
// it is a decimal number, a bool for TRUE or FALSE, nil for NULL, the bytes
// of X'hex', and otherwise the string itself. A query statement run with
// Exec has its rows thrown away; an exec statement run with Query returns
// no columns and no rows.
//
// Writes inside a transaction are kept on the connection, seen by that
// connection's own reads, and applied when it commits. A write in a
// read-only transaction fails. The isolation levels Default, ReadCommitted,
// RepeatableRead and Serializable are accepted; others fail.
//
// The legacy methods without a context (driver.Execer, Stmt.Exec and the
// like) run with context.Background, so SLEEP and Faults.Hang block in them
// until the connection is killed.
package drivertest
