// Package rollout is the guarded-rollout workflow: it ramps an OpenFeature
// flag's variant step by step, judges each step with flags/guard, and resets
// the flag to control on a regression. It holds the workflow, its contract
// (names, messages, input and result types, id helpers) and its testsuite
// tests, and imports no database, Redis or HTTP code.
package rollout
