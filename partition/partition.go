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
	"math"
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

// validate reports what is wrong with c, naming the field at fault.
func (c Config) validate() error {
	if c.Name == "" {
		return errors.New("partition: Config.Name is empty")
	}
	if err := checkName(c.Name); err != nil {
		return err
	}
	if err := c.validateLimits(); err != nil {
		return fmt.Errorf("partition %s: %w", quote(c.Name), err)
	}
	return nil
}

// validateLimits reports what is wrong with c's fields but Name.
func (c Config) validateLimits() error {
	for _, f := range [...]struct {
		name string
		v    int
	}{{"MinSize", c.MinSize}, {"MaxSize", c.MaxSize}, {"MaxWaitQueue", c.MaxWaitQueue}, {"QueryBurst", c.QueryBurst}} {
		if f.v < 0 {
			return fmt.Errorf("%s is %d; it must not be negative (0: the default)", f.name, f.v)
		}
	}
	switch {
	case c.Kind > Service:
		return fmt.Errorf("Kind %d is unknown; use Tenant, User, Application or Service", c.Kind)
	case c.MaxSize > 0 && c.MinSize > c.MaxSize:
		return fmt.Errorf("MinSize (%d) is greater than MaxSize (%d)", c.MinSize, c.MaxSize)
	case c.StatementTimeout < 0:
		return fmt.Errorf("StatementTimeout is %v; it must not be negative (0: none)", c.StatementTimeout)
	case math.IsNaN(c.QueryRate) || math.IsInf(c.QueryRate, 0) || c.QueryRate < 0:
		return fmt.Errorf("QueryRate is %v; it must be a finite number of operations per second, not negative (0: no cap)", c.QueryRate)
	}
	return nil
}

// Partition is a partition known to a Router. Its Config never changes.
type Partition struct {
	Config
	// State is what the Router's NewState returned for it: the owner's
	// per-partition runtime state, reachable from a route without a lookup.
	State any

	index int // in its Router's list; guarded by the Router's listMu
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

// DefaultMaxPartitions is RouterConfig.MaxPartitions's default.
const DefaultMaxPartitions = 10_000

// DefaultMaxStickyKeys is RouterConfig.MaxStickyKeys's default.
const DefaultMaxStickyKeys = 10_000

// ErrUnknownPartition is returned for a key that names no partition under the
// Fail policy.
var ErrUnknownPartition = errors.New("sqlpool: unknown partition")

// ErrTooManyPartitions is returned for a key that names no partition under
// the CreateFromTemplate policy when the Router already holds
// RouterConfig.MaxPartitions partitions. No partition is created.
var ErrTooManyPartitions = errors.New("sqlpool: too many partitions: raise RouterConfig.MaxPartitions, " +
	"remove unused partitions with Router.Remove, or route unknown keys to the default partition (RouterConfig.Unknown = RouteToDefault)")

// RouterConfig configures a Router. Its zero value routes by tenant and
// creates a partition without limits for each tenant on first use, up to
// DefaultMaxPartitions; requests without a tenant go to the default
// partition.
type RouterConfig struct {
	Strategy Strategy
	// Custom maps a request to a partition name for the Custom strategy;
	// "" means the default partition.
	Custom  func(Key) string
	Balance Balance
	// Load returns the connections in use by a partition, for
	// LeastConnections. It is called with a read lock of the Router held:
	// it must not call the Router.
	Load func(p *Partition) int
	// Preferred partitions are LoadBalanced's candidates, when any exists.
	Preferred []string
	// Sticky keeps each key on the partition LoadBalanced first chose for
	// it, within MaxStickyKeys. A key is checked as a partition name (see
	// ErrInvalidPartitionName) before it is remembered.
	Sticky bool
	// MaxStickyKeys caps the keys Sticky remembers. They are kept in two
	// generations of MaxStickyKeys/2: when the current one is full, the
	// previous one is forgotten, so a key unused while MaxStickyKeys/2 new
	// keys arrived may be forgotten, and is balanced afresh (maybe to
	// another partition) on its next request. Default DefaultMaxStickyKeys
	// (10,000); 1 keeps 2; negative: no cap, for keys you trust.
	MaxStickyKeys int
	// Default names the fallback partition: requests without a key, and
	// unknown keys under RouteToDefault. Default DefaultName.
	Default string
	// Unknown is the policy for keys that name no partition.
	Unknown Unknown
	// Template is the Config of partitions created for unknown keys under
	// CreateFromTemplate. Its Name must be empty: each partition takes its
	// key's value as its name (and the strategy's Kind).
	Template Config
	// MaxPartitions caps the partitions the Router holds when it creates
	// one for an unknown key under CreateFromTemplate: past it, the request
	// fails with ErrTooManyPartitions and nothing is created. All
	// partitions count, the default one, Partitions and those of
	// Router.Add included, but Router.Add itself is never refused (its
	// caller is trusted, not a request): it may take the count past
	// MaxPartitions. NewRouter fails when Partitions and the default one
	// already exceed it. Default DefaultMaxPartitions (10,000); negative:
	// no cap, which lets whoever chooses the keys (tenant IDs from
	// requests, say) grow the Router and its owner's state without bound.
	MaxPartitions int
	// Partitions are created with the Router.
	Partitions []Config
	// NewState returns the owner's runtime state of a new partition; it is
	// called once per partition, before the partition can be routed to,
	// with the Router's lock held: it must not call the Router.
	NewState func(Config) any
}

// Router maps requests to partitions. It is safe for concurrent use.
//
// Route takes no lock and allocates nothing for a known key (a sync.Map
// lookup); LoadBalanced takes a read lock. Creating a partition, by Add or
// for an unknown key, and removing one cost the same whatever the number of
// partitions: a sync.Map insertion or deletion, and an amortised append to
// a list or a swap with its last element. Remove also scans the keys Sticky
// remembers. List copies and sorts the partitions: O(n log n).
type Router struct {
	cfg RouterConfig  // normalised private copy; never changes
	def *Partition    // the default partition; never removed
	rr  atomic.Uint64 // RoundRobin's counter

	// byName maps each partition's name to its *Partition. Readers take no
	// lock; writers hold mu, so that checking a name and storing it are
	// one step.
	byName sync.Map
	// preferred holds the partitions of cfg.Preferred that exist, in that
	// order; replaced whole under mu.
	preferred atomic.Pointer[[]*Partition]

	mu sync.Mutex // serialises Add, Remove and creations; before listMu and stickyMu

	listMu sync.RWMutex
	// all holds every partition, for LoadBalanced and List, in no order:
	// Remove moves the last one to the removed one's index.
	all []*Partition // guarded by listMu

	// stickyCur and stickyOld are Sticky's memory of keys, an approximate LRU in two
	// generations, cur and old, of at most stickyHalf keys each (0: no
	// cap). A key found in old moves to cur; when cur is full it becomes
	// old and the previous old is forgotten.
	stickyHalf int
	stickyMu   sync.RWMutex
	stickyCur  map[string]*Partition // guarded by stickyMu
	stickyOld  map[string]*Partition // guarded by stickyMu
}

// NewRouter returns a router with cfg's partitions and the default one. It
// fails, naming the field, when cfg holds an unknown value, an invalid
// partition Config or name, or a Template with a Name.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	r := &Router{cfg: cfg}
	r.preferred.Store(new([]*Partition))
	if cfg.Sticky {
		if cfg.MaxStickyKeys > 0 {
			r.stickyHalf = max(cfg.MaxStickyKeys/2, 1)
		}
		r.stickyCur, r.stickyOld = map[string]*Partition{}, map[string]*Partition{}
	}
	parts := cfg.Partitions
	if !slices.ContainsFunc(parts, func(c Config) bool { return c.Name == cfg.Default }) {
		parts = append([]Config{{Name: cfg.Default}}, parts...)
	}
	if cfg.MaxPartitions >= 0 && len(parts) > cfg.MaxPartitions {
		return nil, fmt.Errorf("partition: RouterConfig.Partitions has %d partitions with the default one, more than RouterConfig.MaxPartitions (%d): raise MaxPartitions", len(parts), cfg.MaxPartitions)
	}
	for _, c := range parts {
		if _, err := r.Add(c); err != nil {
			return nil, err
		}
	}
	v, _ := r.byName.Load(cfg.Default)
	r.def = v.(*Partition)
	return r, nil
}

// normalise checks cfg, naming the field at fault, applies its defaults and
// makes its slices private.
func (cfg *RouterConfig) normalise() error {
	switch {
	case cfg.Strategy > Custom:
		return fmt.Errorf("partition: RouterConfig.Strategy %d is unknown", cfg.Strategy)
	case cfg.Balance > Random:
		return fmt.Errorf("partition: RouterConfig.Balance %d is unknown", cfg.Balance)
	case cfg.Unknown > Fail:
		return fmt.Errorf("partition: RouterConfig.Unknown %d is unknown", cfg.Unknown)
	case cfg.Strategy == Custom && cfg.Custom == nil:
		return errors.New("partition: RouterConfig.Custom is nil with the Custom strategy")
	case cfg.Balance == LeastConnections && cfg.Load == nil:
		return errors.New("partition: RouterConfig.Load is nil with LeastConnections")
	case cfg.Template.Name != "":
		return fmt.Errorf("partition: RouterConfig.Template.Name is %s; leave it empty: each partition made from the template is named by its key", quote(cfg.Template.Name))
	}
	if err := cfg.Template.validateLimits(); err != nil {
		return fmt.Errorf("partition: RouterConfig.Template: %w", err)
	}
	for i, c := range cfg.Partitions {
		if err := c.validate(); err != nil {
			return fmt.Errorf("%w (RouterConfig.Partitions[%d])", err, i)
		}
	}
	if cfg.Default == "" {
		cfg.Default = DefaultName
	}
	if err := checkName(cfg.Default); err != nil {
		return fmt.Errorf("%w (RouterConfig.Default)", err)
	}
	if cfg.MaxPartitions == 0 {
		cfg.MaxPartitions = DefaultMaxPartitions
	}
	if cfg.MaxStickyKeys == 0 {
		cfg.MaxStickyKeys = DefaultMaxStickyKeys
	}
	cfg.Partitions = slices.Clone(cfg.Partitions)
	cfg.Preferred = slices.Clone(cfg.Preferred)
	return nil
}

// Add creates a partition. Names are unique and checked (see
// ErrInvalidPartitionName). Add is not bound by RouterConfig.MaxPartitions,
// though the partition counts towards it.
func (r *Router) Add(c Config) (*Partition, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byName.Load(c.Name); ok {
		return nil, fmt.Errorf("partition: %s exists", quote(c.Name))
	}
	return r.addLocked(c), nil
}

// addLocked creates and publishes the partition of a checked Config whose
// name is free.
func (r *Router) addLocked(c Config) *Partition {
	p := &Partition{Config: c}
	if r.cfg.NewState != nil {
		p.State = r.cfg.NewState(c)
	}
	r.listMu.Lock()
	p.index = len(r.all)
	r.all = append(r.all, p)
	r.listMu.Unlock()
	r.byName.Store(c.Name, p)
	if slices.Contains(r.cfg.Preferred, c.Name) {
		r.preferLocked()
	}
	return p
}

// preferLocked publishes the existing partitions of cfg.Preferred.
func (r *Router) preferLocked() {
	var ps []*Partition
	for _, n := range r.cfg.Preferred {
		if v, ok := r.byName.Load(n); ok {
			ps = append(ps, v.(*Partition))
		}
	}
	r.preferred.Store(&ps)
}

// Remove deletes a partition; requests for it are routed as unknown keys.
// The default partition cannot be removed.
func (r *Router) Remove(name string) error {
	if name == r.cfg.Default {
		return fmt.Errorf("partition: the default partition %q cannot be removed", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.byName.Load(name)
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownPartition, quote(name))
	}
	p := v.(*Partition)
	r.byName.Delete(name)
	r.listMu.Lock()
	last := r.all[len(r.all)-1]
	last.index = p.index
	r.all[p.index] = last
	r.all[len(r.all)-1] = nil
	r.all = r.all[:len(r.all)-1]
	r.listMu.Unlock()
	if slices.Contains(r.cfg.Preferred, name) {
		r.preferLocked()
	}
	r.forgetSticky(p)
	return nil
}

// Get returns the named partition, or nil.
func (r *Router) Get(name string) *Partition {
	if v, ok := r.byName.Load(name); ok {
		return v.(*Partition)
	}
	return nil
}

// Default returns the default partition.
func (r *Router) Default() *Partition { return r.def }

// List returns the partitions, sorted by name.
func (r *Router) List() []*Partition {
	r.listMu.RLock()
	ps := slices.Clone(r.all)
	r.listMu.RUnlock()
	slices.SortFunc(ps, func(a, b *Partition) int { return strings.Compare(a.Name, b.Name) })
	return ps
}

// Route returns the partition for a request. A key that names no partition
// is first checked (ErrInvalidPartitionName), whatever the Unknown policy,
// then routed by that policy; under CreateFromTemplate its partition is
// created unless the Router holds MaxPartitions (ErrTooManyPartitions).
func (r *Router) Route(k Key) (*Partition, error) {
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
		return r.balance(k.first())
	}
	if name == "" {
		return r.def, nil
	}
	if v, ok := r.byName.Load(name); ok {
		return v.(*Partition), nil
	}
	return r.routeUnknown(name)
}

// routeUnknown routes a name that named no partition, by the Unknown policy.
func (r *Router) routeUnknown(name string) (*Partition, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	switch r.cfg.Unknown {
	case RouteToDefault:
		return r.def, nil
	case Fail:
		return nil, fmt.Errorf("%w %s", ErrUnknownPartition, quote(name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.byName.Load(name); ok { // created meanwhile
		return v.(*Partition), nil
	}
	if n := r.count(); r.cfg.MaxPartitions >= 0 && n >= r.cfg.MaxPartitions {
		return nil, fmt.Errorf("%w (%d partitions; refused %s)", ErrTooManyPartitions, n, quote(name))
	}
	c := r.cfg.Template
	// A clone, so that the partition does not pin the caller's buffer the
	// name may be a slice of (a request's).
	c.Name, c.Kind = strings.Clone(name), Kind(min(r.cfg.Strategy, ServiceBased))
	return r.addLocked(c), nil
}

// count returns the number of partitions.
func (r *Router) count() int {
	r.listMu.RLock()
	defer r.listMu.RUnlock()
	return len(r.all)
}

// balance picks a partition for LoadBalanced.
func (r *Router) balance(key string) (*Partition, error) {
	sticky := r.cfg.Sticky && key != ""
	if sticky {
		if p := r.stickyGet(key); p != nil {
			return p, nil
		}
		if err := checkName(key); err != nil {
			return nil, err
		}
	}
	var p *Partition
	if cands := *r.preferred.Load(); len(cands) > 0 {
		p = r.pick(cands)
	} else {
		r.listMu.RLock()
		p = r.pick(r.all)
		r.listMu.RUnlock()
	}
	if sticky {
		p = r.stickyPut(key, p)
	}
	return p, nil
}

// pick returns one of cands, by the Balance algorithm.
func (r *Router) pick(cands []*Partition) *Partition {
	switch r.cfg.Balance {
	case Random:
		return cands[rand.IntN(len(cands))]
	case LeastConnections:
		var p *Partition
		best := -1
		for _, c := range cands {
			if n := r.cfg.Load(c); best < 0 || n < best {
				p, best = c, n
			}
		}
		return p
	}
	return cands[int((r.rr.Add(1)-1)%uint64(len(cands)))]
}
