package otelsqlpool

import (
	"context"
	"errors"

	"github.com/sqlpool/sqlpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
)

// ErrNilConnector is returned by RegisterMetrics given no Connector.
var ErrNilConnector = errors.New("otelsqlpool: RegisterMetrics needs a *sqlpool.Connector, got nil: pass the one sqlpool.NewConnector or sqlpool.Wrap returned")

// RegisterMetrics exports c's pool metrics through the MeterProvider of
// opts (WithMeterProvider; default the global one), read from one
// c.Stats() per collection, each with the attribute
// db.client.connection.pool.name (WithPoolName):
//
//	db.client.connection.count            Stats.Idle with state=idle, Stats.InUse with state=used
//	db.client.connection.max              Stats.MaxSize
//	db.client.connection.pending_requests Stats.Waiting plus each partition's Waiting
//	                                      (callers waiting for a connection or for a
//	                                      partition's slot; not those held by QueryRate)
//	db.client.connection.timeouts         Stats.Timeouts
//
// Call the returned Registration's Unregister before closing c, or when
// the metrics should stop.
func RegisterMetrics(c *sqlpool.Connector, opts ...Option) (metric.Registration, error) {
	if c == nil {
		return nil, ErrNilConnector
	}
	cfg := newConfig(opts)
	m := cfg.mp.Meter(scope)
	count, err := dbconv.NewClientConnectionCountObservable(m)
	if err != nil {
		return nil, err
	}
	maxConns, err := dbconv.NewClientConnectionMaxObservable(m)
	if err != nil {
		return nil, err
	}
	pending, err := dbconv.NewClientConnectionPendingRequestsObservable(m)
	if err != nil {
		return nil, err
	}
	timeouts, err := dbconv.NewClientConnectionTimeoutsObservable(m)
	if err != nil {
		return nil, err
	}

	pool := semconv.DBClientConnectionPoolName(cfg.pool)
	all := metric.WithAttributeSet(attribute.NewSet(pool))
	idle := metric.WithAttributeSet(attribute.NewSet(pool, count.AttrClientConnectionState(dbconv.ClientConnectionStateIdle)))
	used := metric.WithAttributeSet(attribute.NewSet(pool, count.AttrClientConnectionState(dbconv.ClientConnectionStateUsed)))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := c.Stats()
		o.ObserveInt64(count.Inst(), int64(s.Idle), idle)
		o.ObserveInt64(count.Inst(), int64(s.InUse), used)
		o.ObserveInt64(maxConns.Inst(), int64(s.MaxSize), all)
		o.ObserveInt64(pending.Inst(), pendingRequests(s), all)
		o.ObserveInt64(timeouts.Inst(), s.Timeouts, all)
		return nil
	}, count.Inst(), maxConns.Inst(), pending.Inst(), timeouts.Inst())
}

// pendingRequests counts the callers of s waiting for a connection: in the
// pool's queue, or for a slot of their partition.
func pendingRequests(s sqlpool.Stats) int64 {
	n := int64(s.Waiting)
	for _, p := range s.Partitions {
		n += p.Waiting
	}
	return n
}
