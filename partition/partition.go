// Package partition routes requests to partitions and holds their settings.
//
// A partition is a budget and a session state inside one pool, not a wall:
// its limits bound how many of the pool's connections serve it, and its setup
// and reset SQL label a connection's session while it does. This package
// knows no SQL and no pool: it names partitions, keeps their Config, and maps
// the routing values a request carries (a Key) to a partition, by a Strategy,
// with affinity rules and a policy for keys it has not seen.
package partition

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Key is the routing values a request carries (sqlpool takes them from the
// context).
type Key struct {
	Tenant, User, Application, Service string
}

// first returns the first value set, in the order tenant, user, application,
// service.
func (k Key) first() string {
	for _, v := range [...]string{k.Tenant, k.User, k.Application, k.Service} {
		if v != "" {
			return v
		}
	}
	return ""
}

// Kind is what a partition stands for.
type Kind uint8

// Partition kinds.
const (
	Tenant Kind = iota
	User
	Application
	Service
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Tenant:
		return "tenant"
	case User:
		return "user"
	case Application:
		return "application"
	case Service:
		return "service"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Config describes one partition. Its zero limits mean "only the pool's".
type Config struct {
	// Name identifies the partition. For the key-based strategies it is the
	// key's value: the tenant's name for TenantBased, and so on.
	Name string
	Kind Kind

	// MinSize connections are kept labeled for the partition. Default 0.
	MinSize int
	// MaxSize caps the connections serving the partition at once; the pool's
	// MaxSize still holds. Default 0: only the pool's cap.
	MaxSize int
	// MaxWaitQueue caps the partition's waiting callers. Default 0: only the
	// pool's cap.
	MaxWaitQueue int

	// StatementTimeout bounds each statement of the partition's sessions,
	// set by the session setup (PostgreSQL statement_timeout, MySQL
	// max_execution_time). Default 0: none.
	StatementTimeout time.Duration
	// QueryRate caps the partition's operations per second, with bursts of
	// QueryBurst (default 1). Default 0: no cap.
	QueryRate  float64
	QueryBurst int

	// SetupSQL runs when a connection starts serving the partition, with one
	// argument: the partition's Name (e.g. "SELECT set_config('app.tenant',
	// $1, false)"). ResetSQL runs, without arguments, when it stops. A
	// connection whose setup or reset fails is closed, never reused.
	SetupSQL string
	ResetSQL string
}

func (c Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("partition: Config.Name is empty")
	case c.MinSize < 0, c.MaxSize < 0, c.MaxWaitQueue < 0, c.QueryBurst < 0:
		return fmt.Errorf("partition %q: MinSize, MaxSize, MaxWaitQueue and QueryBurst must not be negative", c.Name)
	case c.MaxSize > 0 && c.MinSize > c.MaxSize:
		return fmt.Errorf("partition %q: MinSize (%d) is greater than MaxSize (%d)", c.Name, c.MinSize, c.MaxSize)
	case c.StatementTimeout < 0:
		return fmt.Errorf("partition %q: StatementTimeout must not be negative", c.Name)
	case c.QueryRate < 0:
		return fmt.Errorf("partition %q: QueryRate must not be negative", c.Name)
	}
	return nil
}

// Partition is a partition known to a Router. Its Config never changes.
type Partition struct {
	Config
	// State is what the Router's NewState returned for it: the owner's
	// per-partition runtime state, reachable from a route without a lookup.
	State any
}

// Strategy picks a partition for a request.
type Strategy uint8

// Routing strategies.
const (
	// TenantBased routes by Key.Tenant (the default).
	TenantBased Strategy = iota
	// UserBased routes by Key.User.
	UserBased
	// ApplicationBased routes by Key.Application.
	ApplicationBased
	// ServiceBased routes by Key.Service.
	ServiceBased
	// LoadBalanced spreads requests over the partitions (the preferred ones
	// when any exist) by RouterConfig.Balance.
	LoadBalanced
	// Custom routes by RouterConfig.Custom.
	Custom
)

// Balance is LoadBalanced's algorithm.
type Balance uint8

// Load-balancing algorithms.
const (
	RoundRobin Balance = iota
	LeastConnections
	Random
)

// Unknown says what to do with a key that names no partition.
type Unknown uint8

// Policies for unknown keys.
const (
	// CreateFromTemplate creates the partition from RouterConfig.Template
	// (the default).
	CreateFromTemplate Unknown = iota
	// RouteToDefault sends the request to the default partition.
	RouteToDefault
	// Fail fails the request with ErrUnknownPartition.
	Fail
)

// DefaultName is the default partition's name unless RouterConfig.Default
// says otherwise.
const DefaultName = "default"

// ErrUnknownPartition is returned for a key that names no partition under the
// Fail policy.
var ErrUnknownPartition = errors.New("sqlpool: unknown partition")

// RouterConfig configures a Router. Its zero value routes by tenant and
// creates a partition without limits for each tenant on first use; requests
// without a tenant go to the default partition.
type RouterConfig struct {
	Strategy Strategy
	// Custom maps a request to a partition name for the Custom strategy;
	// "" means the default partition.
	Custom  func(Key) string
	Balance Balance
	// Load returns the connections in use by a partition, for
	// LeastConnections.
	Load func(p *Partition) int
	// Preferred partitions are LoadBalanced's candidates, when any exists.
	Preferred []string
	// Sticky keeps each key on the partition LoadBalanced first chose for it.
	Sticky bool
	// Default names the fallback partition: requests without a key, and
	// unknown keys under RouteToDefault. Default DefaultName.
	Default string
	// Unknown is the policy for keys that name no partition.
	Unknown Unknown
	// Template is the Config of partitions created for unknown keys under
	// CreateFromTemplate (its Name is replaced by the key's value).
	Template Config
	// Partitions are created with the Router.
	Partitions []Config
	// NewState returns the owner's runtime state of a new partition; it is
	// called once per partition, before the partition can be routed to.
	NewState func(Config) any
}

// Router maps requests to partitions. It is safe for concurrent use; Route
// takes no lock and allocates nothing for a known key.
type Router struct {
	cfg  RouterConfig
	snap atomic.Pointer[snapshot] // replaced whole by writers
	mu   sync.Mutex               // serialises writers
	rr   atomic.Uint64            // RoundRobin's counter
	// sticky maps a key to its partition name, for Sticky.
	sticky sync.Map
}

// snapshot is an immutable view of the partitions.
type snapshot struct {
	byName    map[string]*Partition
	list      []*Partition // sorted by name
	preferred []*Partition
	def       *Partition
}

// NewRouter returns a router with cfg's partitions and the default one.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.Strategy > Custom {
		return nil, fmt.Errorf("partition: RouterConfig.Strategy %d is unknown", cfg.Strategy)
	}
	if cfg.Strategy == Custom && cfg.Custom == nil {
		return nil, errors.New("partition: RouterConfig.Custom is nil with the Custom strategy")
	}
	if cfg.Balance == LeastConnections && cfg.Load == nil {
		return nil, errors.New("partition: RouterConfig.Load is nil with LeastConnections")
	}
	if cfg.Default == "" {
		cfg.Default = DefaultName
	}
	r := &Router{cfg: cfg}
	r.snap.Store(&snapshot{byName: map[string]*Partition{}})
	parts := cfg.Partitions
	if !slices.ContainsFunc(parts, func(c Config) bool { return c.Name == cfg.Default }) {
		parts = append([]Config{{Name: cfg.Default}}, parts...)
	}
	for _, c := range parts {
		if _, err := r.Add(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Add creates a partition. Names are unique.
func (r *Router) Add(c Config) (*Partition, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	if _, ok := old.byName[c.Name]; ok {
		return nil, fmt.Errorf("partition: %q exists", c.Name)
	}
	p := &Partition{Config: c}
	if r.cfg.NewState != nil {
		p.State = r.cfg.NewState(c)
	}
	r.publishLocked(old, p, "")
	return p, nil
}

// Remove deletes a partition; requests for it are routed as unknown keys.
// The default partition cannot be removed.
func (r *Router) Remove(name string) error {
	if name == r.cfg.Default {
		return fmt.Errorf("partition: the default partition %q cannot be removed", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	if _, ok := old.byName[name]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownPartition, name)
	}
	r.publishLocked(old, nil, name)
	r.sticky.Range(func(k, v any) bool {
		if v.(*Partition).Name == name {
			r.sticky.Delete(k)
		}
		return true
	})
	return nil
}

// publishLocked publishes a copy of old with add added and remove removed.
func (r *Router) publishLocked(old *snapshot, add *Partition, remove string) {
	s := &snapshot{byName: make(map[string]*Partition, len(old.byName)+1)}
	for n, p := range old.byName {
		if n != remove {
			s.byName[n] = p
		}
	}
	if add != nil {
		s.byName[add.Name] = add
	}
	for _, p := range s.byName {
		s.list = append(s.list, p)
	}
	slices.SortFunc(s.list, func(a, b *Partition) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range r.cfg.Preferred {
		if p := s.byName[n]; p != nil {
			s.preferred = append(s.preferred, p)
		}
	}
	s.def = s.byName[r.cfg.Default]
	r.snap.Store(s)
}

// Get returns the named partition, or nil.
func (r *Router) Get(name string) *Partition { return r.snap.Load().byName[name] }

// Default returns the default partition.
func (r *Router) Default() *Partition { return r.snap.Load().def }

// List returns the partitions, sorted by name.
func (r *Router) List() []*Partition { return slices.Clone(r.snap.Load().list) }

// Route returns the partition for a request.
func (r *Router) Route(k Key) (*Partition, error) {
	s := r.snap.Load()
	var name string
	switch r.cfg.Strategy {
	case TenantBased:
		name = k.Tenant
	case UserBased:
		name = k.User
	case ApplicationBased:
		name = k.Application
	case ServiceBased:
		name = k.Service
	case Custom:
		name = r.cfg.Custom(k)
	case LoadBalanced:
		return r.balance(s, k.first()), nil
	}
	if name == "" {
		return s.def, nil
	}
	if p := s.byName[name]; p != nil {
		return p, nil
	}
	switch r.cfg.Unknown {
	case RouteToDefault:
		return s.def, nil
	case CreateFromTemplate:
		c := r.cfg.Template
		c.Name, c.Kind = name, Kind(min(r.cfg.Strategy, ServiceBased))
		p, err := r.Add(c)
		if err != nil { // created meanwhile by another request
			if p := r.Get(name); p != nil {
				return p, nil
			}
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownPartition, name)
}

// balance picks a partition for LoadBalanced.
func (r *Router) balance(s *snapshot, key string) *Partition {
	if r.cfg.Sticky && key != "" {
		if p, ok := r.sticky.Load(key); ok {
			return p.(*Partition)
		}
	}
	cands := s.preferred
	if len(cands) == 0 {
		cands = s.list
	}
	var p *Partition
	switch r.cfg.Balance {
	case RoundRobin:
		p = cands[int((r.rr.Add(1)-1)%uint64(len(cands)))]
	case Random:
		p = cands[rand.IntN(len(cands))]
	case LeastConnections:
		best := -1
		for _, c := range cands {
			if n := r.cfg.Load(c); best < 0 || n < best {
				p, best = c, n
			}
		}
	}
	if r.cfg.Sticky && key != "" {
		if prev, loaded := r.sticky.LoadOrStore(key, p); loaded {
			p = prev.(*Partition)
		}
	}
	return p
}
