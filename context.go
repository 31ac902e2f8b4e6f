package sqlpool

import "context"

// tags are the routing values of a context. A context holds a *tags that
// is never modified: each With function copies it.
type tags struct {
	tenant, user, application, service string
	priority                           Priority
	partition                          string // derived from the four keys
}

type tagsKey struct{}

var defaultTags = &tags{partition: DefaultPartition}

// DefaultPartition is the partition of an acquisition whose context carries
// no tenant, user, application or service.
const DefaultPartition = "default"

func tagsFrom(ctx context.Context) *tags {
	if t, ok := ctx.Value(tagsKey{}).(*tags); ok {
		return t
	}
	return defaultTags
}

func with(ctx context.Context, set func(*tags)) context.Context {
	t := *tagsFrom(ctx)
	set(&t)
	switch {
	case t.tenant != "":
		t.partition = "tenant:" + t.tenant
	case t.user != "":
		t.partition = "user:" + t.user
	case t.application != "":
		t.partition = "application:" + t.application
	case t.service != "":
		t.partition = "service:" + t.service
	default:
		t.partition = DefaultPartition
	}
	return context.WithValue(ctx, tagsKey{}, &t)
}

// WithTenant returns a context whose database operations are routed to the
// tenant's partition.
//
// Until partition routing strategies are configured, an operation's partition
// is named after the first key set of tenant, user, application and service,
// as "tenant:<name>" and so on.
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
