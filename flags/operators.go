package flags

import (
	"math"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// flagd's custom JSONLogic operators. Each one returns nil when its input is
// malformed, as flagd's do, and tells the caller that it failed so that an
// `if` on the result path can fall back to the default variant (see
// Snapshot.Evaluate).
const (
	opFractional = "fractional"
	opSemVer     = "sem_ver"
	opStartsWith = "starts_with"
	opEndsWith   = "ends_with"
)

// Keys of the JSONLogic data object that flagd fills in.
const (
	keyTargetingKey = "targetingKey"
	keyFlagd        = "$flagd"
	keyFlagKey      = "flagKey"
	keyTimestamp    = "timestamp"
)

// maxWeightSum is flagd's cap on the sum of fractional weights; it keeps
// hash*total inside 64 bits in every provider language.
const maxWeightSum = math.MaxInt32

// startsWith implements flagd's starts_with: exactly two strings.
func startsWith(args []any) (any, bool) {
	s, prefix, ok := twoStrings(args)
	if !ok {
		return nil, false
	}
	return strings.HasPrefix(s, prefix), true
}

// endsWith implements flagd's ends_with: exactly two strings.
func endsWith(args []any) (any, bool) {
	s, suffix, ok := twoStrings(args)
	if !ok {
		return nil, false
	}
	return strings.HasSuffix(s, suffix), true
}

func twoStrings(args []any) (string, string, bool) {
	if len(args) != 2 {
		return "", "", false
	}
	a, ok1 := args[0].(string)
	b, ok2 := args[1].(string)
	return a, b, ok1 && ok2
}

// semVer implements flagd's sem_ver: [version, operator, version].
func semVer(args []any) (any, bool) {
	if len(args) != 3 {
		return nil, false
	}
	a, okA := parseVersion(args[0])
	op, okOp := args[1].(string)
	b, okB := parseVersion(args[2])
	if !okA || !okOp || !okB {
		return nil, false
	}
	return compareVersions(a, op, b)
}

func compareVersions(a *semver.Version, op string, b *semver.Version) (any, bool) {
	c := a.Compare(b)
	switch op {
	case "=":
		return c == 0, true
	case "!=":
		return c != 0, true
	case "<":
		return c < 0, true
	case "<=":
		return c <= 0, true
	case ">":
		return c > 0, true
	case ">=":
		return c >= 0, true
	case "^": // same major version, as flagd compares it (not npm's caret)
		return a.Major() == b.Major(), true
	case "~": // same major and minor version
		return a.Major() == b.Major() && a.Minor() == b.Minor(), true
	}
	return nil, false
}

// maxVersionLength bounds what parseVersion parses. Version strings are
// short; a longer string is not taken for one, which keeps sem_ver's cost
// bounded whatever the context holds.
const maxVersionLength = 256

// parseVersion accepts what flagd accepts: an optional v/V prefix, partial
// versions ("1", "1.2") padded with zeros, build metadata (ignored when
// comparing), and JSON numbers (1 means "1").
func parseVersion(v any) (*semver.Version, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return nil, false
	}
	if len(s) > maxVersionLength {
		return nil, false // not a version, and too long to run the parser's regular expression on
	}
	if strings.HasPrefix(s, "V") {
		s = "v" + s[1:]
	}
	ver, err := semver.NewVersion(s)
	if err != nil {
		return nil, false
	}
	// A partial version with a pre-release ("1.2-beta") is not a version in
	// the semver package flagd uses; the loose parser would accept it.
	core := strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	if strings.Count(core, ".") != 2 && (ver.Prerelease() != "" || ver.Metadata() != "") {
		return nil, false
	}
	return ver, true
}

// distribution is a parsed list of fractional buckets.
type distribution struct {
	variants []any    // string, bool, float64 or nil, as flagd allows
	ends     []uint64 // cumulative weights; ends[i] is the end of bucket i
	total    uint64
}

// pick maps a 32-bit hash onto [0, total) with flagd's integer arithmetic
// and returns the variant whose range holds it.
func (d distribution) pick(hash uint32) any {
	point := (uint64(hash) * d.total) >> 32
	for i, end := range d.ends {
		if point < end {
			return d.variants[i]
		}
	}
	return nil // unreachable: point < total == last end
}

// parseDistribution reads [variant, weight] pairs. A missing weight counts
// as 1, a negative one as 0; weights must be whole numbers and sum to at
// least 1 and at most MaxInt32. eval evaluates nested rules, which flagd
// allows as variant names and weights.
func parseDistribution(buckets []any, eval func(any) (any, bool)) (distribution, bool) {
	d := distribution{variants: make([]any, 0, len(buckets)), ends: make([]uint64, 0, len(buckets))}
	for _, b := range buckets {
		pair, ok := b.([]any)
		if !ok || len(pair) == 0 {
			return distribution{}, false
		}
		variant, ok := bucketPart(pair[0], eval)
		if !ok || !isFractionalVariant(variant) {
			return distribution{}, false
		}
		weight := uint64(1)
		if len(pair) > 1 {
			w, ok := bucketPart(pair[1], eval)
			if !ok {
				return distribution{}, false
			}
			if weight, ok = fractionalWeight(w); !ok {
				return distribution{}, false
			}
		}
		d.total += weight
		if d.total > maxWeightSum {
			return distribution{}, false
		}
		d.variants = append(d.variants, variant)
		d.ends = append(d.ends, d.total)
	}
	return d, d.total > 0
}

func bucketPart(v any, eval func(any) (any, bool)) (any, bool) {
	if _, isRule := v.(map[string]any); isRule && eval != nil {
		return eval(v)
	}
	return v, true
}

func isFractionalVariant(v any) bool {
	switch v.(type) {
	case string, bool, float64, nil:
		return true
	}
	return false
}

func fractionalWeight(w any) (uint64, bool) {
	switch x := w.(type) {
	case nil:
		return 1, true
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) {
			return 0, false
		}
		if x < 0 {
			return 0, true
		}
		if x > maxWeightSum {
			return 0, false
		}
		return uint64(x), true
	}
	return 0, false
}
