// Package tests holds the end-to-end tests: the real API and worker against
// real Postgres, Redis and a Temporal dev server, each test on its own
// database, Redis prefix and task queue.
package tests
