// Package job is the background-job family's deterministic workflow code:
// webhook deliveries, analytics roll-ups and upload processing share one
// retry loop (runJob) and differ only in their attempt activity. It holds
// each workflow, its contract (names, input and result types, id helpers)
// and its testsuite tests. Like every package under workflows/, it uses only
// workflow.* APIs for time, randomness and I/O and imports no database,
// Redis or HTTP code; the job record itself lives in the leaf package jobs.
package job
