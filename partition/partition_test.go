package partition_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/sqlpool/sqlpool/partition"
)

func mustRouter(t *testing.T, cfg partition.RouterConfig) *partition.Router {
	t.Helper()
	r, err := partition.NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func route(t *testing.T, r *partition.Router, k partition.Key) string {
	t.Helper()
	p, err := r.Route(k)
	if err != nil {
		t.Fatal(err)
	}
	return p.Name
}

func TestKeyBasedStrategiesRouteByTheirKey(t *testing.T) {
	k := partition.Key{Tenant: "acme", User: "ann", Application: "web", Service: "billing"}
	for _, tc := range []struct {
		s    partition.Strategy
		want string
	}{
		{partition.TenantBased, "acme"},
		{partition.UserBased, "ann"},
		{partition.ApplicationBased, "web"},
		{partition.ServiceBased, "billing"},
	} {
		r := mustRouter(t, partition.RouterConfig{Strategy: tc.s, Unknown: partition.CreateFromTemplate})
		if got := route(t, r, k); got != tc.want {
			t.Errorf("strategy %d routed to %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestRequestsWithoutAKeyGoToTheDefault(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{Default: "shared"})
	if got := route(t, r, partition.Key{User: "ann"}); got != "shared" {
		t.Errorf("routed to %q, want the default", got)
	}
}

func TestUnknownKeyPolicies(t *testing.T) {
	k := partition.Key{Tenant: "newco"}
	r := mustRouter(t, partition.RouterConfig{Unknown: partition.RouteToDefault})
	if got := route(t, r, k); got != partition.DefaultName {
		t.Errorf("RouteToDefault: %q", got)
	}
	r = mustRouter(t, partition.RouterConfig{Unknown: partition.CreateFromTemplate, Template: partition.Config{MaxSize: 3}})
	p, err := r.Route(k)
	if err != nil || p.Name != "newco" || p.MaxSize != 3 || p.Kind != partition.Tenant {
		t.Errorf("CreateFromTemplate: %+v, %v", p, err)
	}
	r = mustRouter(t, partition.RouterConfig{Unknown: partition.Fail})
	if _, err := r.Route(k); !errors.Is(err, partition.ErrUnknownPartition) || !strings.Contains(err.Error(), "newco") {
		t.Errorf("Fail: err = %v, want ErrUnknownPartition naming newco", err)
	}
}

func TestCreateFromTemplateIsRaceFree(t *testing.T) {
	var created sync.Map
	r := mustRouter(t, partition.RouterConfig{
		Unknown:  partition.CreateFromTemplate,
		NewState: func(c partition.Config) any { created.Store(c.Name, true); return c.Name },
	})
	var wg sync.WaitGroup
	ps := make([]*partition.Partition, 16)
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i], _ = r.Route(partition.Key{Tenant: "t"})
		}()
	}
	wg.Wait()
	for _, p := range ps {
		if p != ps[0] || p.State != "t" {
			t.Fatalf("concurrent first routes got different partitions: %p %p", p, ps[0])
		}
	}
}

func TestCustomStrategy(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{
		Strategy:   partition.Custom,
		Custom:     func(k partition.Key) string { return "region-" + k.Service },
		Partitions: []partition.Config{{Name: "region-eu"}},
	})
	if got := route(t, r, partition.Key{Service: "eu"}); got != "region-eu" {
		t.Errorf("routed to %q", got)
	}
}

func TestLoadBalancing(t *testing.T) {
	parts := []partition.Config{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	r := mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Partitions: parts, Preferred: []string{"a", "b"}})
	seen := map[string]int{}
	for range 10 {
		seen[route(t, r, partition.Key{})]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Errorf("round robin over preferred a, b: %v", seen)
	}

	load := map[string]int{"default": 9, "a": 4, "b": 1, "c": 7}
	r = mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Balance: partition.LeastConnections,
		Partitions: parts, Load: func(p *partition.Partition) int { return load[p.Name] }})
	if got := route(t, r, partition.Key{}); got != "b" {
		t.Errorf("least connections chose %q, want b", got)
	}

	r = mustRouter(t, partition.RouterConfig{Strategy: partition.LoadBalanced, Balance: partition.Random, Sticky: true, Partitions: parts})
	first := route(t, r, partition.Key{Tenant: "acme"})
	for range 20 {
		if got := route(t, r, partition.Key{Tenant: "acme"}); got != first {
			t.Fatalf("sticky key moved from %q to %q", first, got)
		}
	}
}

func TestAddRemoveList(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{})
	if _, err := r.Add(partition.Config{Name: "x", MaxSize: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(partition.Config{Name: "x"}); err == nil {
		t.Error("duplicate Add succeeded")
	}
	if names := len(r.List()); names != 2 {
		t.Errorf("%d partitions, want 2", names)
	}
	if err := r.Remove("x"); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(partition.DefaultName); err == nil {
		t.Error("removed the default partition")
	}
	if r.Get("x") != nil {
		t.Error("x still there")
	}
}

func TestInvalidConfigsNameTheProblem(t *testing.T) {
	for _, tc := range []struct {
		cfg  partition.RouterConfig
		want string
	}{
		{partition.RouterConfig{Strategy: partition.Custom}, "Custom"},
		{partition.RouterConfig{Balance: partition.LeastConnections}, "Load"},
		{partition.RouterConfig{Partitions: []partition.Config{{Name: "a", MinSize: 3, MaxSize: 1}}}, "MinSize"},
		{partition.RouterConfig{Partitions: []partition.Config{{}}}, "Name"},
	} {
		if _, err := partition.NewRouter(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewRouter(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestRouteOfAKnownKeyAllocatesNothing(t *testing.T) {
	r := mustRouter(t, partition.RouterConfig{})
	k := partition.Key{Tenant: "acme"}
	r.Route(k) // created on first use
	if n := testing.AllocsPerRun(100, func() { r.Route(k) }); n != 0 {
		t.Errorf("Route allocates %v times", n)
	}
}
