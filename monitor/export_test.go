package monitor

import "time"

// NewRecorderWithClock returns a Recorder that reads the time from now.
func NewRecorderWithClock(cfg RecorderConfig, now func() time.Time) *Recorder {
	return newRecorder(cfg, now)
}
