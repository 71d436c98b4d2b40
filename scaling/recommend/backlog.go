package recommend

import "math"

// QueueStats is what Temporal reports of a task queue's backlog
// (DescribeTaskQueueEnhanced with stats).
type QueueStats struct {
	Count        int64
	AgeSeconds   float64
	AddRate      float64
	DispatchRate float64
}

// EffectiveBacklog is the backlog to size workers for. Temporal's count is
// approximate: it can stay stale after a queue drained, and it resets to
// zero when a partition reloads while tasks still wait. The age of the
// oldest task and the add and dispatch rates are measured independently,
// so they arbitrate:
//   - a count with no waiting task (age 0) and no traffic is stale: 0;
//   - no count while the oldest task has waited is a reset: estimate the
//     waiting tasks as those added over that age, at least 1;
//   - otherwise the count stands.
func EffectiveBacklog(s QueueStats) float64 {
	switch {
	case s.Count > 0 && s.AgeSeconds == 0 && s.AddRate == 0 && s.DispatchRate == 0:
		return 0
	case s.Count == 0 && s.AgeSeconds > 0:
		return math.Max(1, math.Ceil(s.AgeSeconds*math.Max(s.AddRate, s.DispatchRate)))
	}
	return float64(s.Count)
}
