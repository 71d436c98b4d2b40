// Package rollout holds the guarded rollout's side effects: its row, the
// flag writes of each step (compare-and-set on the flag's version), the
// observations that feed the guard (outcome events or Prometheus) and the
// reset to control. Each activity is idempotent, so Temporal may retry it.
package rollout
