package drill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/acme/platform/internal/validation"
)

// Available lists the scenarios this version runs: every scenario. (A
// scenario named in Scenarios before it is built is refused with a clear
// 400 rather than run as a stub.)
var Available = Scenarios

// MaxBackupIDLength bounds params.backup_id.
const MaxBackupIDLength = 64

// Validate reports every problem of a drill's input with a JSON pointer
// into it: the scenario, the objectives (never negative; only those the
// scenario measures) and the scenario's params, decoded strictly. The API
// calls it before starting a drill; the workflow calls it again, for
// drills started from the Temporal UI.
func Validate(in Input) []validation.FieldError {
	var errs fieldErrors
	switch {
	case in.Scenario == "":
		errs.add("#/scenario", "required", "is required: one of "+strings.Join(Available, ", "))
		return errs
	case slices.Contains(Available, in.Scenario):
	default:
		errs.add("#/scenario", "invalid", "must be one of "+strings.Join(Available, ", "))
		return errs
	}
	errs.objectives(in.Scenario, in.Objectives)
	_, perrs := DecodeParams(in.Scenario, in.Params)
	return append(errs, perrs...)
}

type fieldErrors []validation.FieldError

func (e *fieldErrors) add(pointer, code, detail string) {
	*e = append(*e, validation.FieldError{Pointer: pointer, Code: code, Detail: detail})
}

func (e *fieldErrors) objectives(scenario string, o Objectives) {
	for _, obj := range []struct {
		name  string
		value *float64
	}{{"rto_seconds", o.RTOSeconds}, {"rpo_seconds", o.RPOSeconds}} {
		pointer := "#/objectives/" + obj.name
		switch {
		case obj.value == nil:
		case scenario == ScenarioBackup:
			e.add(pointer, "unsupported", "the backup scenario measures sizes and durations, not "+obj.name+"; leave it out")
		case scenario == ScenarioCapacity || degradedScenario(scenario):
			e.add(pointer, "unsupported", "the "+scenario+" scenario measures capacity and degraded answers, not "+obj.name+"; leave it out")
		case scenario == ScenarioCacheLoss && obj.name == "rpo_seconds":
			e.add(pointer, "unsupported", "the cache_loss scenario measures no rpo_seconds (Redis holds no data of record); leave it out")
		case *obj.value < 0:
			e.add(pointer, "out_of_range", "must be 0 or more seconds")
		}
	}
}

// DecodeParams decodes a scenario's params strictly: unknown fields and
// wrong types are field errors pointing into #/params. Absent or null
// params are the scenario's defaults.
func DecodeParams(scenario string, raw json.RawMessage) (RestoreParams, []validation.FieldError) {
	var p RestoreParams
	var errs fieldErrors
	switch scenario {
	case ScenarioFailover:
		_, ferrs := decodeFailoverParams(raw)
		return p, ferrs
	case ScenarioCapacity:
		_, cerrs := DecodeCapacityParams(raw)
		return p, cerrs
	case ScenarioDBDegraded, ScenarioCacheDegraded:
		_, derrs := DecodeDegradedParams(scenario, raw)
		return p, derrs
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return p, nil
	}
	var fields map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		errs.add("#/params", "invalid_type", "must be an object")
		return p, errs
	}
	known := map[string][]string{ScenarioRestoreVerify: {"backup_id"}, ScenarioCacheLoss: cacheLossFields}[scenario]
	for _, name := range sortedKeys(fields) {
		if !slices.Contains(known, name) {
			errs.add("#/params/"+pointerToken(name), "unknown_field", "is not a parameter of the "+scenario+" scenario")
		}
	}
	if len(errs) == 0 && scenario == ScenarioCacheLoss {
		_, errs = DecodeCacheLossParams(raw)
	}
	if len(errs) > 0 || scenario != ScenarioRestoreVerify {
		return p, errs
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		var typeErr *json.UnmarshalTypeError
		pointer := "#/params"
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			pointer += "/" + strings.ReplaceAll(typeErr.Field, ".", "/")
		}
		errs.add(pointer, "invalid_type", "must be a string")
		return p, errs
	}
	if p.BackupID != "" && !ValidBackupID(p.BackupID) {
		errs.add("#/params/backup_id", "invalid", fmt.Sprintf("must be a backup id: bkp_ and 1 to %d of a-z and 0-9", MaxBackupIDLength))
	}
	return p, errs
}

// ValidBackupID reports whether id looks like a backup id. Backup ids name
// folders of the backup store, so nothing else (no '/', no '..') may pass.
func ValidBackupID(id string) bool {
	rest, ok := strings.CutPrefix(id, "bkp_")
	if !ok || rest == "" || len(rest) > MaxBackupIDLength {
		return false
	}
	for _, c := range rest {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pointerToken escapes a member name for a JSON pointer (RFC 6901).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
