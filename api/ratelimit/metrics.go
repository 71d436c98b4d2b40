package ratelimit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions *prometheus.CounterVec
	fallbacks prometheus.Counter
	degraded  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_decisions_total", Help: "Rate limit decisions by policy class and result (allowed, limited).",
		}, []string{"class", "result"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ratelimit_fallback_total", Help: "Times the rate limiter switched to in-process limits because Redis failed.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ratelimit_fallback_active", Help: "1 while the rate limiter uses in-process limits because Redis failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.fallbacks, m.degraded)
	}
	return m
}

func (m *metrics) decided(class string, allowed bool) {
	result := "limited"
	if allowed {
		result = "allowed"
	}
	m.decisions.WithLabelValues(class, result).Inc()
}
