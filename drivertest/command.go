package drivertest

import (
	"cmp"
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// statements gives each keyword's form and how many words may follow it.
var statements = map[string]struct {
	usage    string
	min, max int // max < 0: any number
}{
	"SET":       {"SET key... value", 2, -1},
	"DEL":       {"DEL key...", 1, -1},
	"GET":       {"GET key...", 1, -1},
	"SCAN":      {"SCAN prefix...", 0, -1},
	"COUNT":     {"COUNT", 0, 0},
	"SELECT":    {"SELECT x...", 1, -1},
	"ROWS":      {"ROWS n", 1, 1},
	"MULTI":     {"MULTI", 0, 0},
	"SETTENANT": {"SETTENANT x", 1, 1},
	"TENANT":    {"TENANT", 0, 0},
	"CONNID":    {"CONNID", 0, 0},
	"SLEEP":     {"SLEEP", 0, 0},
	"BADCONN":   {"BADCONN", 0, 0},
	"FAIL":      {"FAIL msg...", 0, -1},
}

// A command is a parsed statement.
type command struct {
	query    string   // the statement as written
	keyword  string   // its first word, in upper case
	words    []string // the words after the keyword
	numInput int      // how many of the words are "?"
}

// parse parses a statement of the command language.
func parse(query string) (*command, error) {
	words := strings.Fields(query)
	if len(words) == 0 {
		return nil, errors.New("drivertest: empty statement")
	}
	keyword := strings.ToUpper(words[0])
	form, ok := statements[keyword]
	if !ok {
		return nil, fmt.Errorf("drivertest: unknown statement %s in %q", keyword, query)
	}
	if n := len(words) - 1; n < form.min || form.max >= 0 && n > form.max {
		return nil, fmt.Errorf("drivertest: malformed statement %q, want %s", query, form.usage)
	}
	cmd := &command{query: query, keyword: keyword, words: words[1:]}
	for _, w := range cmd.words {
		if w == "?" {
			cmd.numInput++
		}
	}
	return cmd, nil
}

// A literal is a word of a statement that is not "?".
type literal string

// bind returns the command's words, with each "?" replaced by the next of
// args and the other words as literals.
func (cmd *command) bind(args []driver.NamedValue) ([]driver.Value, error) {
	if len(args) != cmd.numInput {
		return nil, fmt.Errorf("drivertest: %q takes %d arguments, got %d", cmd.query, cmd.numInput, len(args))
	}
	vals := make([]driver.Value, len(cmd.words))
	for i, w := range cmd.words {
		if w != "?" {
			vals[i] = literal(w)
			continue
		}
		if args[0].Name != "" {
			return nil, fmt.Errorf("drivertest: named argument %q not supported", args[0].Name)
		}
		vals[i], args = args[0].Value, args[1:]
	}
	return vals, nil
}

// outcome is what a statement did: what an exec reports and what a query
// returns.
type outcome struct {
	result
	sets []resultSet
}

// result is a [driver.Result].
type result struct{ lastID, affected int64 }

func (r result) LastInsertId() (int64, error) { return r.lastID, nil }
func (r result) RowsAffected() (int64, error) { return r.affected, nil }

// exec runs cmd for an Exec.
func (c *conn) exec(ctx context.Context, cmd *command, args []driver.NamedValue) (driver.Result, error) {
	out, err := c.run(ctx, cmd, args)
	if err != nil {
		return nil, err
	}
	return out.result, nil
}

// query runs cmd for a Query.
func (c *conn) query(ctx context.Context, cmd *command, args []driver.NamedValue) (driver.Rows, error) {
	out, err := c.run(ctx, cmd, args)
	if err != nil {
		return nil, err
	}
	if len(out.sets) == 0 {
		out.sets = []resultSet{{}}
	}
	return rowsVariants[c.d.opts.Disable.variant(rowsBits)](&rows{sets: out.sets}), nil
}

// run runs cmd with args.
func (c *conn) run(ctx context.Context, cmd *command, args []driver.NamedValue) (outcome, error) {
	vals, err := cmd.bind(args)
	if err != nil {
		return outcome{}, err
	}
	switch cmd.keyword {
	case "SET":
		last := len(vals) - 1
		return c.write(write{key: key(vals[:last]), val: stored(vals[last])})
	case "DEL":
		return c.write(write{key: key(vals), del: true})
	case "GET":
		set := resultSet{cols: []column{{name: "value", typ: "ANY", scanType: anyType, nullable: true}}}
		if v, ok := c.lookup(key(vals)); ok {
			set.rows = [][]driver.Value{{v}}
		}
		return outcome{sets: []resultSet{set}}, nil
	case "SCAN":
		return c.scan(key(vals)), nil
	case "COUNT":
		return oneValue("count", int64(len(c.snapshot()))), nil
	case "SELECT":
		var set resultSet
		row := make([]driver.Value, len(vals))
		for i, v := range vals {
			if l, ok := v.(literal); ok {
				v = parseLiteral(string(l))
			}
			row[i] = v
			set.cols = append(set.cols, valueColumn(fmt.Sprintf("c%d", i+1), v))
		}
		set.rows = [][]driver.Value{row}
		return outcome{sets: []resultSet{set}}, nil
	case "ROWS":
		return numberedRows(vals[0])
	case "MULTI":
		a, b := oneValue("a", int64(1)), oneValue("b", int64(2))
		return outcome{sets: append(a.sets, b.sets...)}, nil
	case "SETTENANT":
		c.tenant = text(vals[0])
		return outcome{}, nil
	case "TENANT":
		out := oneValue("tenant", c.tenant)
		out.sets[0].cols[0] = column{name: "tenant", typ: "TEXT", scanType: nullStringType, nullable: true}
		return out, nil
	case "CONNID":
		return oneValue("id", c.info.id), nil
	case "SLEEP":
		return outcome{}, wait(ctx, -1, c.info.killed)
	case "BADCONN":
		return outcome{}, driver.ErrBadConn
	case "FAIL":
		msg := make([]string, len(vals))
		for i, v := range vals {
			msg[i] = text(v)
		}
		return outcome{}, errors.New(strings.TrimSpace("drivertest: " + strings.Join(msg, " ")))
	}
	panic("drivertest: no case for " + cmd.keyword)
}

// write makes w, in the open transaction if there is one.
func (c *conn) write(w write) (outcome, error) {
	res := result{lastID: c.d.lastWriteID.Add(1)}
	if c.tx == nil {
		res.affected = c.d.apply(w)
		return outcome{result: res}, nil
	}
	if c.tx.readOnly {
		return outcome{}, errors.New("drivertest: write in a read-only transaction")
	}
	res.affected = 1
	if _, ok := c.lookup(w.key); w.del && !ok {
		res.affected = 0
	}
	c.tx.writes = append(c.tx.writes, w)
	return outcome{result: res}, nil
}

// lookup returns the value stored under key, as the open transaction, if
// any, sees it.
func (c *conn) lookup(key string) (driver.Value, bool) {
	if c.tx != nil {
		for _, w := range slices.Backward(c.tx.writes) {
			if w.key == key {
				return w.val, !w.del
			}
		}
	}
	return c.d.get(key)
}

// snapshot returns a copy of the store as the open transaction, if any,
// sees it.
func (c *conn) snapshot() map[string]driver.Value {
	store := c.d.snapshot()
	if c.tx != nil {
		for _, w := range c.tx.writes {
			w.applyTo(store)
		}
	}
	return store
}

// scan runs SCAN prefix.
func (c *conn) scan(prefix string) outcome {
	if prefix != "" {
		prefix += " "
	}
	set := resultSet{cols: []column{
		{name: "key", typ: "TEXT", scanType: stringType},
		{name: "value", typ: "ANY", scanType: anyType, nullable: true},
	}}
	for k, v := range c.snapshot() {
		if rest, ok := strings.CutPrefix(k, prefix); ok && !strings.Contains(rest, " ") {
			set.rows = append(set.rows, []driver.Value{rest, v})
		}
	}
	slices.SortFunc(set.rows, func(a, b []driver.Value) int {
		x, errx := strconv.ParseInt(a[0].(string), 10, 64)
		y, erry := strconv.ParseInt(b[0].(string), 10, 64)
		if errx == nil && erry == nil {
			return cmp.Compare(x, y)
		}
		return strings.Compare(a[0].(string), b[0].(string))
	})
	return outcome{sets: []resultSet{set}}
}

// numberedRows runs ROWS n.
func numberedRows(n driver.Value) (outcome, error) {
	count, err := strconv.Atoi(text(n))
	if err != nil || count < 0 {
		return outcome{}, fmt.Errorf("drivertest: ROWS needs a count, got %v", n)
	}
	set := resultSet{cols: []column{
		{name: "id", typ: "INTEGER", scanType: int64Type},
		{name: "name", typ: "TEXT", scanType: stringType},
		{name: "note", typ: "TEXT", scanType: nullStringType, nullable: true},
	}}
	for id := range int64(count) {
		id++
		var note driver.Value
		if id%2 != 0 {
			note = fmt.Sprintf("note-%d", id)
		}
		set.rows = append(set.rows, []driver.Value{id, fmt.Sprintf("name-%d", id), note})
	}
	return outcome{sets: []resultSet{set}}, nil
}

// oneValue returns a single result set of one row with one column.
func oneValue(name string, v driver.Value) outcome {
	return outcome{sets: []resultSet{{
		cols: []column{valueColumn(name, v)},
		rows: [][]driver.Value{{v}},
	}}}
}

// key returns the key that words make.
func key(words []driver.Value) string {
	s := make([]string, len(words))
	for i, w := range words {
		s[i] = text(w)
	}
	return strings.Join(s, " ")
}

// text returns v as a string, for keys and messages.
func text(v driver.Value) string {
	switch v := v.(type) {
	case literal:
		return string(v)
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return "NULL"
	}
	return fmt.Sprint(v)
}

// stored returns the value to store for v.
func stored(v driver.Value) driver.Value {
	switch v := v.(type) {
	case literal:
		return string(v)
	case []byte:
		return slices.Clone(v)
	}
	return v
}

// parseLiteral returns the value of a literal word in a SELECT.
func parseLiteral(w string) driver.Value {
	if i, err := strconv.ParseInt(w, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(w, 64); err == nil && strings.ContainsAny(w, "0123456789") {
		return f
	}
	switch strings.ToUpper(w) {
	case "TRUE":
		return true
	case "FALSE":
		return false
	case "NULL":
		return nil
	}
	if len(w) >= 3 && (w[0] == 'x' || w[0] == 'X') && w[1] == '\'' && w[len(w)-1] == '\'' {
		if b, err := hex.DecodeString(w[2 : len(w)-1]); err == nil {
			return b
		}
	}
	return w
}
