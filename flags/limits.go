package flags

// Limits that keep the cost of a flag bounded. A definition is checked
// against the definition and rule limits when it is written (File.Validate,
// ValidateFile, ValidateRaw, Validate); OFREP checks a request's context
// against the context limits (CheckContext); and every evaluation runs under
// the evaluation budget. The rule limits and the budget fit together: the
// validator bounds, for each rule, the most work it can take for any
// context within the context limits, and refuses the rule when that is over
// the budget. So no accepted rule can exceed the budget for an OFREP
// context, and the budget only stops rules written before these limits,
// contexts larger than OFREP accepts (in-process callers), and context
// values that JSONLogic ends up evaluating as rules.
const (
	// MaxDefinitionBytes bounds a flag definition as compact JSON. It keeps
	// a flag list page and a flag-set reload small (M10) and bounds every
	// literal in a rule.
	MaxDefinitionBytes = 64 << 10
	// MaxRuleDepth bounds how deeply a targeting rule nests, counting every
	// JSON object and array (an operation and its operand list are two
	// levels). JSONLogic's "if" takes any number of condition/value pairs,
	// so real rules stay shallow; flagd's examples nest 8 levels at most.
	MaxRuleDepth = 32
	// MaxRuleOperations bounds the operations ({"op": operands} objects) in
	// a targeting rule, counted after $ref expansion.
	MaxRuleOperations = 2000
	// MaxRuleArray bounds the elements of a literal array in a rule.
	MaxRuleArray = 1000
	// MaxRuleString bounds a literal string in a rule, in bytes.
	MaxRuleString = 4 << 10
	// MaxCollectionNesting bounds how deeply map, filter, reduce, all, none
	// and some nest in each other's bodies. Each level multiplies the work
	// by the length of a list; the budget bounds the product, and this keeps
	// bounding it cheap.
	MaxCollectionNesting = 3
)

// maxRefNodes bounds the JSON values that $ref expansion may produce for
// one rule: a $ref copies its evaluator, so two references per level over
// 32 levels would otherwise make 2^32 copies (L11).
const maxRefNodes = 1 << 16

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
