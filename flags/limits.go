package flags

// The evaluation budget. Work is counted in steps: one per operation
// applied, one per array element an operation visits, and one per 4 KiB of
// string an operation reads; bytes count what an evaluation allocates for
// strings and arrays it builds. An evaluation that would go over either
// stops, serves the default variant with reason ERROR (GENERAL), and is
// counted by BudgetExceeded. Worst case it costs a few milliseconds of CPU
// and MaxEvalBytes of short-lived memory.
const (
	MaxEvalSteps = 100_000
	MaxEvalBytes = 1 << 20
)

// readChunk is how many bytes of string an operation may read per step.
const readChunk = 4 << 10
