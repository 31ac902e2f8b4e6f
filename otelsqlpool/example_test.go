package otelsqlpool_test

import (
	"context"
	"log"
	"os"

	"github.com/sqlpool/sqlpool"
	"github.com/sqlpool/sqlpool/drivertest"
	"github.com/sqlpool/sqlpool/otelsqlpool"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Traces of each operation written to standard output, and the pool's
// metrics read by a manual reader (a real program would use a periodic
// reader and an OTLP or Prometheus exporter).
func Example() {
	exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout), stdouttrace.WithPrettyPrint())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())

	opts := []otelsqlpool.Option{
		otelsqlpool.WithTracerProvider(tp),
		otelsqlpool.WithMeterProvider(mp),
		otelsqlpool.WithSystem("postgresql"),
		otelsqlpool.WithPoolName("orders"),
		otelsqlpool.WithQueryText(),
	}
	cfg := sqlpool.Config{MaxSize: 4}
	otelsqlpool.Instrument(&cfg, opts...)
	// A real program wraps its driver's connector: pq.NewConnector(dsn), ...
	c, err := sqlpool.Wrap(drivertest.New(drivertest.Options{}).Connector("example"), cfg)
	if err != nil {
		log.Fatal(err)
	}
	reg, err := otelsqlpool.RegisterMetrics(c, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
	db := sqlpool.OpenDB(c)
	defer db.Close()

	ctx, span := tp.Tracer("example").Start(context.Background(), "handler")
	defer span.End()
	if _, err := db.ExecContext(ctx, "SET order 42 paid"); err != nil {
		log.Fatal(err)
	}
	// Prints the span "sqlpool.exec", with db.query.text "SET order ? paid",
	// then, as the function returns, "handler".
}
