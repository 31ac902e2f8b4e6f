package partition_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sqlpool/sqlpool/partition"
)

func TestUnknownKeysCreateNoMoreThanMaxPartitions(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{MaxPartitions: 3, Partitions: []partition.Config{{Name: "a"}}})
	route(t, r, partition.Key{Tenant: "x"}) // default, a, x: 3
	_, err := r.Route(partition.Key{Tenant: "y"})
	if !errors.Is(err, partition.ErrTooManyPartitions) {
		t.Fatalf("4th partition: err = %v, want ErrTooManyPartitions", err)
	}
	for _, want := range []string{`"y"`, "MaxPartitions", "Router.Remove", "RouteToDefault"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if r.Get("y") != nil || len(r.List()) != 3 {
		t.Errorf("a refused key created a partition: %d partitions", len(r.List()))
	}
	if got := route(t, r, partition.Key{Tenant: "x"}); got != "x" {
		t.Errorf("an existing partition routed to %q past the cap", got)
	}
	if err := r.Remove("x"); err != nil {
		t.Fatal(err)
	}
	if got := route(t, r, partition.Key{Tenant: "y"}); got != "y" {
		t.Errorf("after a Remove, routed to %q", got)
	}
	if _, err := r.Add(partition.Config{Name: "vip"}); err != nil {
		t.Errorf("Add past MaxPartitions: %v, want it allowed (its caller is trusted)", err)
	}
}

func TestMaxPartitionsDefaultsToDefaultMaxPartitions(t *testing.T) {
	var states atomic.Int64
	r := mustRouter(t, partition.RouterConfig{NewState: func(partition.Config) any { return states.Add(1) }})
	for i := range partition.DefaultMaxPartitions - 1 { // the default partition counts
		if _, err := r.Route(partition.Key{Tenant: fmt.Sprint("t", i)}); err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
	}
	if _, err := r.Route(partition.Key{Tenant: "one-too-many"}); !errors.Is(err, partition.ErrTooManyPartitions) {
		t.Fatalf("partition %d: err = %v, want ErrTooManyPartitions", partition.DefaultMaxPartitions+1, err)
	}
	if n := states.Load(); n != partition.DefaultMaxPartitions {
		t.Errorf("NewState called %d times, want %d", n, partition.DefaultMaxPartitions)
	}
}

func TestNegativeMaxPartitionsIsNoCap(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{MaxPartitions: -1, Partitions: []partition.Config{{Name: "a"}}})
	for i := range 10 {
		route(t, r, partition.Key{Tenant: fmt.Sprint("t", i)})
	}
	if n := len(r.List()); n != 12 {
		t.Errorf("%d partitions, want 12", n)
	}
}

func TestConcurrentUnknownKeysStopExactlyAtMaxPartitions(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{MaxPartitions: 10})
	var wg sync.WaitGroup
	var refused atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				_, err := r.Route(partition.Key{Tenant: fmt.Sprint(g, "-", i)})
				if errors.Is(err, partition.ErrTooManyPartitions) {
					refused.Add(1)
				} else if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(r.List()); n != 10 || refused.Load() != 80-9 {
		t.Errorf("%d partitions, %d refused; want 10 and 71", n, refused.Load())
	}
}

func TestConfiguredPartitionsBeyondMaxPartitionsAreRejected(t *testing.T) {
	_, err := partition.NewRouter(partition.RouterConfig{MaxPartitions: 2, Partitions: []partition.Config{{Name: "a"}, {Name: "b"}}})
	if err == nil || !strings.Contains(err.Error(), "MaxPartitions") {
		t.Errorf("NewRouter = %v, want an error naming MaxPartitions", err)
	}
}

// bytesPerPartition returns the bytes allocated per partition created from
// an unknown key, then per partition removed, averaged over 200, in a
// router that already has n.
func bytesPerPartition(t *testing.T, n int) (add, remove uint64) {
	r := mustRouter(t, partition.RouterConfig{MaxPartitions: -1})
	for i := range n - 1 {
		route(t, r, partition.Key{Tenant: fmt.Sprint("old-", i)})
	}
	keys := make([]partition.Key, 200)
	for i := range keys {
		keys[i].Tenant = fmt.Sprint("new-", i)
	}
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for _, k := range keys {
		if _, err := r.Route(k); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	for _, k := range keys {
		if err := r.Remove(k.Tenant); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m2)
	return (m1.TotalAlloc - m0.TotalAlloc) / uint64(len(keys)), (m2.TotalAlloc - m1.TotalAlloc) / uint64(len(keys))
}

func TestAddingOrRemovingAPartitionCostsTheSameAt1kAnd8kPartitions(t *testing.T) {
	add1k, rm1k := bytesPerPartition(t, 1_000)
	add8k, rm8k := bytesPerPartition(t, 8_000)
	// A copy of the partitions' list alone would cost 8 bytes each, 64 KB
	// at 8k. What is left: the Partition, its name, a sync.Map node, the
	// list's amortised growth.
	if add8k > 4<<10 || add8k > 2*add1k+1<<10 || rm8k > 1<<10 {
		t.Errorf("a new partition allocates %d B at 1k partitions, %d B at 8k; removing one %d B at 8k; want under 4 KiB, not growing",
			add1k, add8k, rm8k)
	}
	t.Logf("bytes per new partition: %d at 1k, %d at 8k; per removed one: %d at 1k, %d at 8k", add1k, add8k, rm1k, rm8k)
}

func TestLoadBalancingIsSafeWhilePartitionsComeAndGo(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Sticky: true, MaxStickyKeys: 8})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p, err := r.Route(partition.Key{Tenant: fmt.Sprint(g, "-", i%20)})
				if err != nil || p == nil {
					t.Errorf("Route = %v, %v", p, err)
					return
				}
			}
		})
	}
	for i := range 5000 {
		name := fmt.Sprint("p", i%7)
		if r.Get(name) != nil {
			if err := r.Remove(name); err != nil {
				t.Error(err)
			}
		} else if _, err := r.Add(partition.Config{Name: name}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	seen := map[string]bool{}
	for _, p := range r.List() {
		if seen[p.Name] || r.Get(p.Name) != p {
			t.Errorf("List and Get disagree on %q", p.Name)
		}
		seen[p.Name] = true
	}
}

func TestInvalidNamesAreRefusedAndCreateNothing(t *testing.T) {
	long := strings.Repeat("x", partition.MaxNameLen+1)
	for _, tc := range []struct{ name, key, want string }{
		{"NUL", "acme\x00evil", "NUL"},
		{"invalid UTF-8", "acme\xff", "UTF-8"},
		{"newline", "acme\nFAKE LOG LINE", "U+000A"},
		{"C1 control", "acme\u0085", "U+0085"},
		{"DEL", "acme\x7f", "U+007F"},
		{"too long", long, fmt.Sprint(len(long), " bytes")},
	} {
		for _, unknown := range []partition.Unknown{partition.CreateFromTemplate, partition.RouteToDefault, partition.Fail} {
			t.Run(fmt.Sprintf("%s/unknown=%d", tc.name, unknown), func(t *testing.T) {
				var states atomic.Int64
				r := mustRouter(t, partition.RouterConfig{Unknown: unknown, NewState: func(partition.Config) any { return states.Add(1) }})
				p, err := r.Route(partition.Key{Tenant: tc.key})
				if !errors.Is(err, partition.ErrInvalidPartitionName) || p != nil {
					t.Fatalf("Route = %v, %v; want ErrInvalidPartitionName", p, err)
				}
				if !strings.Contains(err.Error(), tc.want) || len(err.Error()) > 300 {
					t.Errorf("error %q: want it to say %q, in under 300 bytes", err, tc.want)
				}
				if states.Load() != 1 || len(r.List()) != 1 {
					t.Errorf("the invalid key created a partition: %d states, %d partitions", states.Load(), len(r.List()))
				}
				if _, err := r.Add(partition.Config{Name: tc.key}); !errors.Is(err, partition.ErrInvalidPartitionName) {
					t.Errorf("Add: err = %v, want ErrInvalidPartitionName", err)
				}
			})
		}
	}
}

func TestLongNameIsQuotedTruncatedInTheError(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{})
	_, err := r.Route(partition.Key{Tenant: strings.Repeat("é", 200)}) // 400 bytes
	if err == nil || !strings.Contains(err.Error(), `"éé`) || !strings.Contains(err.Error(), `"... (400 bytes)`) {
		t.Errorf("err = %v, want the name quoted and cut, with its length", err)
	}
	if strings.Count(err.Error(), "é") > 40 {
		t.Errorf("err quotes the whole name: %v", err)
	}
}

func TestValidNamesAtTheLimitAreAccepted(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{})
	for _, name := range []string{strings.Repeat("x", partition.MaxNameLen), "société générale", "租户-7", "a b\u00a0c"} {
		if got := route(t, r, partition.Key{Tenant: name}); got != name {
			t.Errorf("routed %q to %q", name, got)
		}
	}
}

func TestCustomStrategyNamesAreChecked(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.Custom, Custom: func(k partition.Key) string { return k.Tenant + "\x00" }})
	if _, err := r.Route(partition.Key{Tenant: "acme"}); !errors.Is(err, partition.ErrInvalidPartitionName) {
		t.Errorf("err = %v, want ErrInvalidPartitionName", err)
	}
}

func TestStickyKeysAreChecked(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Sticky: true})
	if _, err := r.Route(partition.Key{Tenant: "acme\x00"}); !errors.Is(err, partition.ErrInvalidPartitionName) {
		t.Errorf("err = %v, want ErrInvalidPartitionName", err)
	}
	if n := partition.StickyLen(r); n != 0 {
		t.Errorf("an invalid key was remembered: %d keys", n)
	}
}

func TestStickyKeysAreBoundedByMaxStickyKeys(t *testing.T) {
	parts := []partition.Config{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Sticky: true, MaxStickyKeys: 10, Partitions: parts})
	hot := route(t, r, partition.Key{Tenant: "hot"})
	for i := range 1000 {
		route(t, r, partition.Key{Tenant: fmt.Sprint("k", i)})
		if got := route(t, r, partition.Key{Tenant: "hot"}); got != hot {
			t.Fatalf("after %d new keys, the recently used key moved from %q to %q", i+1, hot, got)
		}
		if n := partition.StickyLen(r); n > 10 {
			t.Fatalf("after %d new keys, %d keys remembered, want at most 10", i+1, n)
		}
	}
}

func TestStickyKeysDefaultToDefaultMaxStickyKeys(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Sticky: true})
	for i := range partition.DefaultMaxStickyKeys + 100 {
		if _, err := r.Route(partition.Key{Tenant: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := partition.StickyLen(r); n > partition.DefaultMaxStickyKeys {
		t.Errorf("%d keys remembered, want at most %d", n, partition.DefaultMaxStickyKeys)
	}
}

func TestStickyKeysOfARemovedPartitionAreForgotten(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Sticky: true, Preferred: []string{"a"},
		Partitions: []partition.Config{{Name: "a"}, {Name: "b"}}})
	if got := route(t, r, partition.Key{Tenant: "acme"}); got != "a" {
		t.Fatalf("routed to %q, want the preferred a", got)
	}
	if err := r.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if got := route(t, r, partition.Key{Tenant: "acme"}); got == "a" {
		t.Error("a sticky key still routes to the removed partition")
	}
}

func TestInvalidRouterConfigsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  partition.RouterConfig
		want string
	}{
		{"NaN rate", partition.RouterConfig{Template: partition.Config{QueryRate: math.NaN()}}, "Template: QueryRate is NaN"},
		{"infinite rate", partition.RouterConfig{Template: partition.Config{QueryRate: math.Inf(1)}}, "Template: QueryRate is +Inf"},
		{"negative rate", partition.RouterConfig{Partitions: []partition.Config{{Name: "a", QueryRate: -1}}}, "QueryRate is -1"},
		{"negative burst", partition.RouterConfig{Template: partition.Config{QueryBurst: -1}}, "QueryBurst is -1"},
		{"negative size", partition.RouterConfig{Template: partition.Config{MaxSize: -1}}, "MaxSize is -1"},
		{"negative queue", partition.RouterConfig{Partitions: []partition.Config{{Name: "a", MaxWaitQueue: -2}}}, "Partitions[0]"},
		{"negative timeout", partition.RouterConfig{Template: partition.Config{StatementTimeout: -1}}, "StatementTimeout"},
		{"template with a name", partition.RouterConfig{Template: partition.Config{Name: "x"}}, "Template.Name"},
		{"unknown kind", partition.RouterConfig{Partitions: []partition.Config{{Name: "a", Kind: 9}}}, "Kind 9"},
		{"unknown strategy", partition.RouterConfig{Strategy: 9}, "Strategy"},
		{"unknown balance", partition.RouterConfig{Balance: 9}, "Balance"},
		{"unknown policy", partition.RouterConfig{Unknown: 9}, "Unknown"},
		{"invalid default", partition.RouterConfig{Default: "x\x00"}, "RouterConfig.Default"},
		{"invalid partition name", partition.RouterConfig{Partitions: []partition.Config{{Name: "a\x00"}}}, "Partitions[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := partition.NewRouter(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRouter = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestRouterKeepsAPrivateCopyOfItsConfig(t *testing.T) {
	parts := []partition.Config{{Name: "a"}, {Name: "b"}}
	pref := []string{"a"}
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Partitions: parts, Preferred: pref})
	pref[0] = "b"
	if got := route(t, r, partition.Key{}); got != "a" {
		t.Errorf("editing Preferred after NewRouter changed the routing to %q", got)
	}
}

func TestRouteOfAKnownKeyAllocatesNothingWithEveryStrategy(t *testing.T) {
	parts := []partition.Config{{Name: "acme"}, {Name: "b"}}
	for _, tc := range []struct {
		name string
		cfg  partition.RouterConfig
	}{
		{"tenant", partition.RouterConfig{Partitions: parts}},
		{"custom", partition.RouterConfig{Strategy: partition.Custom, Custom: func(k partition.Key) string { return k.Tenant }, Partitions: parts}},
		{"round robin", partition.RouterConfig{Strategy: partition.LoadBalanced, Partitions: parts}},
		{"sticky", partition.RouterConfig{Strategy: partition.LoadBalanced, Sticky: true, Partitions: parts}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRouter(t, tc.cfg)
			k := partition.Key{Tenant: strings.Clone("acme")}
			route(t, r, k)
			if n := testing.AllocsPerRun(100, func() { r.Route(k) }); n != 0 {
				t.Errorf("Route allocates %v times", n)
			}
		})
	}
}
