// Package httpjson writes the JSON answers of sqlpool's management
// handlers (the monitor's and the Cluster's), so that both answer alike:
// indented JSON, never cached, errors as {"error": "..."}.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write answers with v as indented JSON and status; if v cannot be
// encoded, with a 500 that says why.
func Write(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// Error answers with status and {"error": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]string{"error": msg})
}
