package sqlpool

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/sqlpool/sqlpool/pool"
)

// Config mirrors pool.Config field by field, so that
// sqlpool.Config{MaxSize: 50} works without nesting: every pool.Config
// field must exist in Config with the same type and reach the pool
// unchanged. A field added to pool.Config and forgotten here fails.
func TestConfigMirrorsPoolConfig(t *testing.T) {
	var cfg Config
	cv := reflect.ValueOf(&cfg).Elem()
	pt := reflect.TypeFor[pool.Config]()
	for i := range pt.NumField() {
		f := pt.Field(i)
		mine, ok := cv.Type().FieldByName(f.Name)
		if !ok || mine.Type != f.Type {
			t.Errorf("pool.Config.%s (%v) has no twin in sqlpool.Config", f.Name, f.Type)
			continue
		}
		setDistinct(cv.FieldByIndex(mine.Index))
	}
	cfg.Recycle, cfg.StatementCacheMode = RecycleFast, CacheDefault // not pool fields; keep them valid
	pc, _ := cfg.poolConfig()                                       // the copy is made before validation
	pv := reflect.ValueOf(pc)
	for i := range pt.NumField() {
		f := pt.Field(i)
		got, want := pv.Field(i), cv.FieldByName(f.Name)
		if !want.IsValid() {
			continue
		}
		if f.Type.Kind() == reflect.Func {
			if got.Pointer() != want.Pointer() {
				t.Errorf("Config.%s does not reach pool.Config", f.Name)
			}
			continue
		}
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("Config.%s = %v reaches pool.Config as %v", f.Name, want.Interface(), got.Interface())
		}
	}
}

// setDistinct sets v to a non-zero value of its type.
func setDistinct(v reflect.Value) {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		v.SetInt(int64(7 * time.Second))
	case v.Type() == reflect.TypeFor[*slog.Logger]():
		v.Set(reflect.ValueOf(slog.New(slog.DiscardHandler)))
	case v.Type() == reflect.TypeFor[*time.Location]():
		v.Set(reflect.ValueOf(time.FixedZone("UTC+7", 7*3600)))
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		if v.Int() == 0 {
			v.SetInt(7)
		}
	case reflect.Float64:
		v.SetFloat(0.25)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Func:
		v.Set(reflect.MakeFunc(v.Type(), func([]reflect.Value) []reflect.Value {
			out := make([]reflect.Value, v.Type().NumOut())
			for i := range out {
				out[i] = reflect.Zero(v.Type().Out(i))
			}
			return out
		}))
	}
}
