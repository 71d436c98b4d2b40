package ratelimit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions    *prometheus.CounterVec
	redisCalls   *prometheus.CounterVec
	leaseDropped *prometheus.CounterVec
	fallbacks    prometheus.Counter
	degraded     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_decisions_total", Help: "Rate limit decisions by policy class and result (allowed, limited).",
		}, []string{"class", "result"}),
		// Against ratelimit_decisions_total, the saving of leases.
		redisCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_redis_calls_total", Help: "GCRA calls to Redis by policy class: one per lease fetched or request decided alone.",
		}, []string{"class"}),
		// The price of leases: quota spent in Redis that no request used.
		leaseDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelimit_lease_dropped_tokens_total", Help: "Leased requests of quota that expired unused (charged in Redis, never admitted), by policy class.",
		}, []string{"class"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ratelimit_fallback_total", Help: "Times the rate limiter switched to in-process limits because Redis failed.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ratelimit_fallback_active", Help: "1 while the rate limiter uses in-process limits because Redis failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.redisCalls, m.leaseDropped, m.fallbacks, m.degraded)
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
