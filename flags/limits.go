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

// Limits on an OFREP evaluation context (M5): evaluation costs grow with
// the context, so OFREP answers 400 INVALID_CONTEXT beyond them.
const (
	// MaxContextBytes bounds the context object as sent, in bytes, and its
	// strings once decoded.
	MaxContextBytes = 64 << 10
	// MaxContextAttributes bounds the context's top-level properties.
	MaxContextAttributes = 256
	// MaxContextArray bounds every array in the context.
	MaxContextArray = 1000
	// MaxContextDepth bounds how deeply the context nests; the context
	// object itself is level 1.
	MaxContextDepth = 8
)

// readChunk is how many bytes of string an operation may read per step.
const readChunk = 4 << 10

// maxRefNodes bounds the JSON values that $ref expansion may produce for
// one rule: a $ref copies its evaluator, so two references per level over
// 32 levels would otherwise make 2^32 copies (L11).
const maxRefNodes = 1 << 16
