// Package probehttp is the plain-HTTP server the server and the agent share
// for /metrics (and the server's probes): timeouts set, the registry given
// (never the process-wide default), errors to the caller's logger.
package probehttp

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// MetricsHandler serves reg. A collector that fails (a store that does not
// answer in time) drops its own series, not the whole scrape; the error is
// logged.
func MetricsHandler(reg *prometheus.Registry, log *zap.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log.Named("metrics")),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
}

// NewServer is an http.Server for h whose timeouts keep a slow or idle
// client from holding connections open.
func NewServer(h http.Handler, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}
