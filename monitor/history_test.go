package monitor_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sqlpool/sqlpool/monitor"
)

func TestHistoryFillsWithoutAPageOpen(t *testing.T) {
	r, clk := newTestRecorder()
	p := r.Partition("acme")
	// Two minutes of two acquisitions a second, sampled once a second,
	// with nothing taking a Snapshot meanwhile.
	const seconds = 120
	r.Sample()
	for range seconds {
		clk.Advance(time.Second / 2)
		p.RecordAcquire(0, monitor.ResultSuccess)
		p.RecordAcquire(0, monitor.ResultTimeout)
		p.RecordAcquire(0, monitor.ResultSuccess)
		p.RecordRelease(time.Millisecond)
		clk.Advance(time.Second / 2)
		r.Sample()
	}
	// The page, opened now, gets the past two minutes in its first answer.
	h := monitor.NewHandler(monitor.HandlerConfig{Report: func() monitor.Report {
		return monitor.Report{Metrics: r.Snapshot()}
	}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/dashboard", nil))
	var d struct {
		History []monitor.Sample `json:"history"`
	}
	if err := json.NewDecoder(w.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if len(d.History) != seconds {
		t.Fatalf("history has %d samples, want %d (one a second, with no page polling)", len(d.History), seconds)
	}
	for i, s := range d.History {
		if s.AcquiresPerSecond != 2 || s.FailuresPerSecond != 1 || s.ReleasesPerSecond != 1 || s.Borrowed != int64(i+1) {
			t.Fatalf("sample %d = %+v, want 2 acquisitions, 1 failure and 1 release a second, %d borrowed", i, s, i+1)
		}
	}
}

func TestHistoryKeepsTheLastHistoryLengthSamplesEvenlySpaced(t *testing.T) {
	r, clk := newTestRecorder()
	p := r.Partition("")
	r.Sample()
	// A sampler whose ticks come a quarter second late, and a page that
	// polls a second after each sample: the page's Snapshots add no
	// samples of their own, nor does a second Sample at the same instant.
	const period = monitor.SampleInterval + monitor.SampleInterval/4
	for range monitor.HistoryLength + 50 {
		clk.Advance(monitor.SampleInterval)
		p.RecordAcquire(0, monitor.ResultSuccess)
		r.Snapshot()
		clk.Advance(period - monitor.SampleInterval)
		r.Sample()
		r.Sample()
	}
	h := r.Snapshot().History
	if len(h) != monitor.HistoryLength {
		t.Fatalf("history has %d samples, want HistoryLength (%d)", len(h), monitor.HistoryLength)
	}
	for i := 1; i < len(h); i++ {
		if d := h[i].Time.Sub(h[i-1].Time); d != period {
			t.Fatalf("samples %d and %d are %v apart, want the sampler's period, %v", i-1, i, d, period)
		}
	}
	if want := clk.Now(); !h[len(h)-1].Time.Equal(want) {
		t.Errorf("newest sample at %v, want the last Sample's, now (%v)", h[len(h)-1].Time, want)
	}
}

func TestSnapshotSamplesTheHistoryWhenNothingRunsTheSampler(t *testing.T) {
	r, clk := newTestRecorder()
	for range 5 {
		r.Snapshot()
		clk.Advance(monitor.SampleInterval)
	}
	if n := len(r.Snapshot().History); n != 5 {
		t.Errorf("history has %d samples from six Snapshots a second apart, want 5", n)
	}
}

func TestRunSamplesEverySecondUntilItsContextIsDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := monitor.NewRecorder(monitor.RecorderConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			r.Run(ctx)
			close(done)
		}()
		time.Sleep(30*time.Second + time.Second/2) // the bubble's clock
		if n := len(r.Snapshot().History); n != 30 {
			t.Errorf("after 30 s of Run, history has %d samples, want 30", n)
		}
		cancel()
		<-done // Run returned: the bubble would not end with it running
	})
}
