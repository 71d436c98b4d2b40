package flags

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Reasons, as in the OpenFeature specification and flagd.
const (
	ReasonStatic         = "STATIC"
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonSplit          = "SPLIT"
	ReasonDefault        = "DEFAULT"
	ReasonDisabled       = "DISABLED"
	ReasonError          = "ERROR"
)

// Error codes, as in the OpenFeature specification. Evaluate never returns
// TargetingKeyMissing: like flagd, a fractional split without a targeting
// key falls back to the default variant. It is here for callers that map
// results onto OpenFeature.
const (
	ErrorFlagNotFound        = "FLAG_NOT_FOUND"
	ErrorParse               = "PARSE_ERROR"
	ErrorTypeMismatch        = "TYPE_MISMATCH"
	ErrorTargetingKeyMissing = "TARGETING_KEY_MISSING"
	ErrorInvalidContext      = "INVALID_CONTEXT"
	ErrorGeneral             = "GENERAL"
)

// Result is the outcome of one evaluation.
type Result struct {
	// Value is the served variant's value (bool, string, float64 or
	// map[string]any). It is nil when the caller's code default applies: on
	// errors, for disabled flags, and for flags without a default variant
	// when targeting does not pick one. The one error with a value is an
	// evaluation stopped by the budget: it serves the default variant.
	Value any
	// Variant is the served variant's name; empty when Value is nil.
	Variant string
	// Reason is one of the Reason constants.
	Reason string
	// ErrorCode is one of the Error constants when Reason is ReasonError.
	ErrorCode string
	// ErrorMessage explains ErrorCode.
	ErrorMessage string
	// FlagMetadata is the flag-set metadata overlaid with the flag's own. It
	// is shared between evaluations and must not be modified.
	FlagMetadata map[string]any
}

// Snapshot is an immutable, compiled set of flags. Building it parses every
// variant and targeting rule and resolves $ref, so Evaluate only evaluates.
// A Snapshot is safe for concurrent use.
type Snapshot struct {
	flags map[string]*compiled
	now   func() time.Time
}

// compiled is one flag ready for evaluation.
type compiled struct {
	key          string
	disabled     bool
	variants     map[string]any
	defVariant   string // "" means the code default
	rule         any    // nil: no targeting
	fast         *node  // nil: the machine evaluates rule
	brokenReason string // non-empty: every evaluation is a PARSE_ERROR
	metadata     map[string]any
}

// NewSnapshot compiles a flag file. It does not reject anything: a flag whose
// variants or targeting cannot be used evaluates to ERROR/PARSE_ERROR, which
// is what flagd does at run time. Run File.Validate first to refuse such
// files instead.
func NewSnapshot(f File) *Snapshot {
	return newSnapshot(f, time.Now)
}

func newSnapshot(f File, now func() time.Time) *Snapshot {
	s := &Snapshot{flags: make(map[string]*compiled, len(f.Flags)), now: now}
	evaluators := decodeEvaluators(f.Evaluators)
	for key, def := range f.Flags {
		s.flags[key] = compileFlag(key, def, evaluators, f.Metadata)
	}
	return s
}

func compileFlag(key string, def Flag, evaluators map[string]any, setMeta map[string]any) *compiled {
	c := &compiled{
		key:        key,
		disabled:   def.State == StateDisabled,
		defVariant: def.DefaultVariant,
		variants:   make(map[string]any, len(def.Variants)),
		metadata:   maps.Clone(setMeta),
	}
	if c.metadata == nil {
		c.metadata = map[string]any{}
	}
	maps.Copy(c.metadata, def.Metadata)
	for name, raw := range def.Variants {
		v, err := decodeRule(raw)
		if err != nil {
			c.brokenReason = fmt.Sprintf("variant %q is not valid JSON", name)
			return c
		}
		c.variants[name] = v
	}
	if t := trimNull(def.Targeting); t != nil {
		c.compileTargeting(t, evaluators)
	}
	return c
}

func (c *compiled) compileTargeting(raw json.RawMessage, evaluators map[string]any) {
	rule, err := decodeRule(raw)
	if err != nil {
		c.brokenReason = "targeting is not valid JSON"
		return
	}
	if m, ok := rule.(map[string]any); ok && len(m) == 0 {
		return // {} means no targeting
	}
	rule, err = resolveRefs(rule, evaluators)
	if err != nil {
		c.brokenReason = err.Error()
		return
	}
	if op, ok := unknownOperator(rule); ok {
		c.brokenReason = fmt.Sprintf("targeting uses unknown operator %q", op)
		return
	}
	c.rule = rule
	// The fast path has no meter: a rule that could go over the budget
	// (one written before the limits) is left to the machine, which stops it.
	if n, ok := compileFast(rule); ok && withinBudget(rule) {
		c.fast = n
	}
}

// Evaluate resolves a flag for a context with flagd's semantics:
//
//   - unknown key: ERROR / FLAG_NOT_FOUND;
//   - disabled flag: DISABLED, no value (the caller's default applies);
//   - no targeting: STATIC with the default variant;
//   - targeting returning a variant name (or true/false for variants named
//     "true"/"false"): TARGETING_MATCH, or SPLIT when the name came from
//     fractional;
//   - targeting returning null: DEFAULT with the default variant. An "if"
//     whose condition fails inside a flagd operator (an invalid version, a
//     missing bucketing key...) also returns null rather than its else branch;
//   - targeting returning anything else: ERROR / GENERAL;
//   - targeting that would go over the evaluation budget (see limits.go):
//     ERROR / GENERAL with the default variant, counted by BudgetExceeded.
//
// A flag without a default variant yields no value wherever the default
// variant would be served.
func (s *Snapshot) Evaluate(key string, ctx EvalContext) Result {
	// This repeats evaluate rather than calling it: the in-process
	// benchmarks measured the call at about 6 ns on a static flag (15%).
	c, ok := s.flags[key]
	if !ok {
		return errorResult(nil, ErrorFlagNotFound, fmt.Sprintf("flag %q not found", key))
	}
	if c.disabled {
		return Result{Reason: ReasonDisabled, FlagMetadata: c.metadata}
	}
	if c.brokenReason != "" {
		return errorResult(c.metadata, ErrorParse, c.brokenReason)
	}
	if c.rule == nil {
		return c.serveDefault(ReasonStatic)
	}
	out, split, code, msg := c.runTargeting(ctx, nil, s.now)
	switch code {
	case "":
		return c.serve(out, split)
	case codeOverBudget:
		budgetExceeded.Add(1)
		return c.serveOverBudget()
	}
	return errorResult(c.metadata, code, msg)
}

// EvaluatePrepared is Evaluate for a prepared context: evaluating many
// flags for one context checks and converts the context once.
func (s *Snapshot) EvaluatePrepared(key string, p *Prepared) Result {
	return s.evaluate(key, p.ctx, p)
}

// evaluate is Evaluate with a prepared context. The context also comes as
// a value, as the fast path reads it; Evaluate passes no Prepared, and the
// machine makes one when it needs it, so that the fast path does not pay
// for it.
func (s *Snapshot) evaluate(key string, ctx EvalContext, p *Prepared) Result {
	c, ok := s.flags[key]
	if !ok {
		return errorResult(nil, ErrorFlagNotFound, fmt.Sprintf("flag %q not found", key))
	}
	if c.disabled {
		return Result{Reason: ReasonDisabled, FlagMetadata: c.metadata}
	}
	if c.brokenReason != "" {
		return errorResult(c.metadata, ErrorParse, c.brokenReason)
	}
	if c.rule == nil {
		return c.serveDefault(ReasonStatic)
	}
	out, split, code, msg := c.runTargeting(ctx, p, s.now)
	switch code {
	case "":
		return c.serve(out, split)
	case codeOverBudget:
		budgetExceeded.Add(1)
		return c.serveOverBudget()
	}
	return errorResult(c.metadata, code, msg)
}

// budgetExceeded counts evaluations stopped by the budget, in this process.
var budgetExceeded atomic.Uint64

// BudgetExceeded returns how many evaluations the budget has stopped in
// this process. Rules accepted by validation never reach it with a context
// within the OFREP limits, so a rising count means a rule written before
// the limits, an oversized in-process context, or a context holding rules.
func BudgetExceeded() uint64 { return budgetExceeded.Load() }

func errorResult(meta map[string]any, code, msg string) Result {
	return Result{Reason: ReasonError, ErrorCode: code, ErrorMessage: msg, FlagMetadata: meta}
}

// serveDefault serves the default variant; without one the caller's code
// default applies and flagd reports DEFAULT.
func (c *compiled) serveDefault(reason string) Result {
	if c.defVariant == "" {
		return Result{Reason: ReasonDefault, FlagMetadata: c.metadata}
	}
	v, ok := c.variants[c.defVariant]
	if !ok {
		return errorResult(c.metadata, ErrorGeneral,
			fmt.Sprintf("default variant %q is not a variant of flag %q", c.defVariant, c.key))
	}
	return Result{Value: cloneValue(v), Variant: c.defVariant, Reason: reason, FlagMetadata: c.metadata}
}

// serve maps the targeting result to a variant.
func (c *compiled) serve(out any, split bool) Result {
	if out == nil {
		return c.serveDefault(ReasonDefault)
	}
	name := variantName(out)
	v, ok := c.variants[name]
	if !ok {
		return errorResult(c.metadata, ErrorGeneral,
			fmt.Sprintf("targeting returned %q, which is not a variant of flag %q", name, c.key))
	}
	reason := ReasonTargetingMatch
	if split {
		reason = ReasonSplit
	}
	return Result{Value: cloneValue(v), Variant: name, Reason: reason, FlagMetadata: c.metadata}
}

// serveOverBudget serves the default variant with reason ERROR.
func (c *compiled) serveOverBudget() Result {
	r := c.serveDefault(ReasonError)
	if r.ErrorCode != "" {
		return r // the default variant is not a variant
	}
	r.Reason, r.ErrorCode = ReasonError, ErrorGeneral
	r.ErrorMessage = fmt.Sprintf("targeting of flag %q stopped: it would go over the evaluation budget of %d steps and %d bytes",
		c.key, MaxEvalSteps, MaxEvalBytes)
	return r
}

// variantName turns a targeting result into a variant key. Like flagd,
// booleans and numbers become their JSON text, and other values their JSON
// text with the quotes removed.
func variantName(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.ReplaceAll(string(b), `"`, "")
}

// codeOverBudget is the error code runTargeting returns for an evaluation
// stopped by the budget; Evaluate turns it into GENERAL.
const codeOverBudget = "over budget"

// runTargeting evaluates the rule on the fast path when it can, else with
// the machine. It returns the rule's value and whether fractional chose it,
// or an error code and message.
func (c *compiled) runTargeting(ctx EvalContext, p *Prepared, now func() time.Time) (any, bool, string, string) {
	if c.fast != nil {
		fits, err := fastContext(ctx, p)
		if err != nil {
			return nil, false, ErrorInvalidContext, err.Error()
		}
		if fits {
			e := env{flagKey: c.key, tk: ctx.TargetingKey, attrs: ctx.Attributes, now: now}
			if v, split, ok := e.eval(c.fast); ok {
				return v, split, "", ""
			}
		}
	}
	if p == nil {
		p = Prepare(ctx)
	}
	return c.runMachine(p, now)
}

// fastContext reports whether the fast path can read the context, once
// per Prepared.
func fastContext(ctx EvalContext, p *Prepared) (bool, error) {
	if p == nil {
		return contextFits(ctx.Attributes)
	}
	return p.fits()
}

func (c *compiled) runMachine(p *Prepared, now func() time.Time) (any, bool, string, string) {
	data, err := p.dataFor(c.key, now())
	if err != nil {
		return nil, false, ErrorInvalidContext, err.Error()
	}
	var m machine
	out, split, exit, err := m.evaluate(c.rule, data)
	switch {
	case err == errOverBudget:
		return nil, false, codeOverBudget, ""
	case err != nil:
		return nil, false, ErrorParse, fmt.Sprintf("targeting of flag %q: %v", c.key, err)
	case exit:
		return nil, false, "", ""
	}
	return out, split, "", ""
}

// cloneValue copies object variants so callers cannot modify the snapshot.
func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
