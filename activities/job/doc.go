// Package job holds the background jobs' side effects: the job row and its
// attempts (the row's one writer), webhook delivery through the egress
// guard, upload processing and the usage roll-up. Each activity is a method
// on a struct holding its dependencies and is idempotent, so Temporal may
// retry it.
package job
