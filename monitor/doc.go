// Package monitor records a connection pool's statistics and serves them:
// as a consistent Snapshot, as JSON, CSV and Prometheus text, as a
// prometheus.Collector, and as a management HTTP API with a live dashboard.
//
// It knows nothing of SQL or of the pool it watches. The pool's owner feeds
// a Recorder on its hot path (one *PartitionRecorder per partition, looked
// up once and kept), and gives NewHandler and NewCollector a func that
// returns a Report: the Recorder's Snapshot, the pool's own state
// (PoolState), and the leaks it currently sees. Actions that change the pool
// (resize, suspend, drain, evict, reset) are funcs the owner supplies in
// Actions; the handler only authenticates and parses them.
//
// The history behind the dashboard's charts (Snapshot.History) is sampled
// by the server, not by the page: the owner runs Recorder.Run on a goroutine
// that lives as long as the pool, one sample a second, the last five
// minutes kept (HistoryLength), so a page opened later shows them at once.
//
// The header's figures are the sums of the partitions' rows, "other"
// included: PoolState.Waiting of PartitionState.Waiting, and the
// statement-cache hits and misses of Snapshot.Total of each partition's,
// recorded for the partition whose borrowing looked the statement up.
//
// Partition names come from requests and may be hostile, so everything that
// grows with them is bounded: the Recorder keeps RecorderConfig.MaxPartitions
// partitions apart (default 256, first come), the rest as OverflowPartition;
// the collector, the management API, the dashboard and the handler's exports
// show the TopPartitions most active ones (default 50) and add up the rest
// under OverflowPartition, so that sums over partitions stay the totals,
// counting what they added up (omitted_partitions); the API lists at most
// MaxLeaks leaks (default 100). Names are shown valid UTF-8, without control
// or format characters, at most MaxNameLength bytes (see NewCollector).
//
// Units: durations are time.Duration in Go and seconds (a JSON number, a
// Prometheus _seconds metric) on the wire.
//
// Built with -tags sqlpool_noprometheus, the package links no Prometheus
// package: NewCollector, NewCollectorWithConfig, CollectorConfig and
// WritePrometheus do not exist, and the handler's /metrics and
// /api/export?format=prometheus answer 501 Not Implemented, naming the tag.
package monitor
