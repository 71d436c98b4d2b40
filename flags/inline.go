package flags

import (
	"encoding/json"
	"fmt"
	"maps"
)

// ValidKey reports whether key can name a flag: 1-128 characters of A-Z,
// a-z, 0-9, '.', '_' or '-'. Keys travel in URL paths and metric labels, so
// the set is deliberately narrower than flagd's.
func ValidKey(key string) bool { return keyPattern.MatchString(key) }

// Inline returns the file's flags as standalone definitions: every $ref in
// a targeting rule is replaced by its evaluator, and the file's metadata is
// merged under each flag's own. The platform stores flags one by one, with
// no shared evaluators or set metadata, so an import goes through Inline;
// the flags evaluate exactly as they did in the file. The file is not
// modified.
func (f File) Inline() (map[string]Flag, error) {
	evaluators := decodeEvaluators(f.Evaluators)
	out := make(map[string]Flag, len(f.Flags))
	for key, def := range f.Flags {
		def = def.Clone()
		def.Key = key
		if len(f.Metadata) > 0 {
			meta := maps.Clone(f.Metadata)
			maps.Copy(meta, def.Metadata)
			def.Metadata = meta
		}
		if t := trimNull(def.Targeting); t != nil && len(f.Evaluators) > 0 {
			rule, err := decodeRule(t)
			if err != nil {
				return nil, fmt.Errorf("inline flag %q: targeting is not valid JSON: %w", key, err)
			}
			expanded, err := resolveRefs(rule, evaluators)
			if err != nil {
				return nil, fmt.Errorf("inline flag %q: %w", key, err)
			}
			raw, err := json.Marshal(expanded)
			if err != nil {
				return nil, fmt.Errorf("inline flag %q: %w", key, err)
			}
			def.Targeting = raw
		}
		out[key] = def
	}
	return out, nil
}
