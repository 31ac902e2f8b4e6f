package sqlpool

import (
	"context"

	"github.com/sqlpool/sqlpool/partition"
)

// tags are the routing values of a context. A context holds a *tags that
// is never modified: each With function copies it.
type tags struct {
	tenant, user, application, service string
	priority                           Priority
	readOnly                           bool // WithReadOnly: a Cluster may send reads to a replica
}

type tagsKey struct{}

var defaultTags = &tags{}

// DefaultPartition is the name of the partition of operations whose context
// carries no routing key, unless Config.Routing.Default names another.
const DefaultPartition = partition.DefaultName

func tagsFrom(ctx context.Context) *tags {
	if t, ok := ctx.Value(tagsKey{}).(*tags); ok {
		return t
	}
	return defaultTags
}

func with(ctx context.Context, set func(*tags)) context.Context {
	t := *tagsFrom(ctx)
	set(&t)
	return context.WithValue(ctx, tagsKey{}, &t)
}

// WithTenant returns a context whose database operations are routed to the
// tenant's partition (with the default Config.Routing, a partition named
// after the tenant, created on first use).
//
// Inside a transaction or an *sql.Conn the session is pinned to the physical
// connection it started on: a differently tagged context on a later statement
// does not move it.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return with(ctx, func(t *tags) { t.tenant = tenant })
}

// WithUser returns a context whose database operations are routed to the
// user's partition. See WithTenant.
func WithUser(ctx context.Context, user string) context.Context {
	return with(ctx, func(t *tags) { t.user = user })
}

// WithApplication returns a context whose database operations are routed to
// the application's partition. See WithTenant.
func WithApplication(ctx context.Context, application string) context.Context {
	return with(ctx, func(t *tags) { t.application = application })
}

// WithService returns a context whose database operations are routed to the
// service's partition. See WithTenant.
func WithService(ctx context.Context, service string) context.Context {
	return with(ctx, func(t *tags) { t.service = service })
}

// WithPriority returns a context whose acquisitions wait at priority p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return with(ctx, func(t *tags) { t.priority = p })
}

// WithReadOnly returns a context whose reads a Cluster may send to a
// replica: queries, prepares, pings and transactions begun with
// sql.TxOptions{ReadOnly: true}. Execs and other transactions go to the
// primary whatever the context says, and so does every operation of a
// context without it. A read of a partition that wrote within
// ClusterConfig.ReadYourWrites goes to the primary too. A single-host
// Connector ignores it.
//
// A replica refuses writes: a query that writes (INSERT … RETURNING) must
// not run with this context.
func WithReadOnly(ctx context.Context) context.Context {
	return with(ctx, func(t *tags) { t.readOnly = true })
}
