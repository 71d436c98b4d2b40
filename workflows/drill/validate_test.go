package drill

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/acme/platform/drills/report"
	"github.com/acme/platform/internal/validation"
)

func TestValidate(t *testing.T) {
	fe := func(pointer, code string) validation.FieldError {
		return validation.FieldError{Pointer: pointer, Code: code}
	}
	tests := []struct {
		name string
		in   Input
		want []validation.FieldError
	}{
		{"backup with nothing else", Input{Scenario: ScenarioBackup}, nil},
		{"backup with empty params", Input{Scenario: ScenarioBackup, Params: json.RawMessage(` {} `)}, nil},
		{"restore_verify with objectives and a backup id", Input{Scenario: ScenarioRestoreVerify,
			Objectives: Objectives{RTOSeconds: seconds(300), RPOSeconds: seconds(0)}, Params: json.RawMessage(`{"backup_id":"bkp_01jq4"}`)}, nil},
		{"restore_verify with null params", Input{Scenario: ScenarioRestoreVerify, Params: json.RawMessage(`null`)}, nil},
		{"no scenario", Input{}, []validation.FieldError{fe("#/scenario", "required")}},
		{"unknown scenario", Input{Scenario: "chaos_monkey", Params: json.RawMessage(`{"x":1}`)}, []validation.FieldError{fe("#/scenario", "invalid")}},
		{"failover with a driver", Input{Scenario: ScenarioFailover, Objectives: Objectives{RTOSeconds: seconds(30), RPOSeconds: seconds(0)},
			Params: json.RawMessage(`{"driver":"sql","max_unavailable_seconds":60,"heartbeat_interval_ms":50}`)}, nil},
		{"failover needs a driver", Input{Scenario: ScenarioFailover}, []validation.FieldError{fe("#/params/driver", "required")}},
		{"failover through patroni", Input{Scenario: ScenarioFailover, Params: json.RawMessage(`{"driver":"patroni"}`)}, nil},
		{"failover through an unknown driver", Input{Scenario: ScenarioFailover, Params: json.RawMessage(`{"driver":"pg_auto_failover"}`)},
			[]validation.FieldError{fe("#/params/driver", "invalid")}},
		{"failover takes no patroni url", Input{Scenario: ScenarioFailover, Params: json.RawMessage(`{"driver":"patroni","patroni_url":"http://evil:8008"}`)},
			[]validation.FieldError{fe("#/params/patroni_url", "invalid")}},
		{"failover bounds", Input{Scenario: ScenarioFailover, Params: json.RawMessage(`{"driver":"dry_run","max_unavailable_seconds":0,"heartbeat_interval_ms":1}`)},
			[]validation.FieldError{fe("#/params/max_unavailable_seconds", "out_of_range"), fe("#/params/heartbeat_interval_ms", "out_of_range")}},
		{"failover takes no url", Input{Scenario: ScenarioFailover, Params: json.RawMessage(`{"driver":"sql","standby_url":"postgres://evil"}`)},
			[]validation.FieldError{fe("#/params/standby_url", "invalid")}},
		{"failover interval of the wrong type", Input{Scenario: ScenarioFailover, Params: json.RawMessage(`{"driver":"sql","heartbeat_interval_ms":"1s"}`)},
			[]validation.FieldError{fe("#/params/heartbeat_interval_ms", "invalid")}},
		{"negative objectives", Input{Scenario: ScenarioRestoreVerify, Objectives: Objectives{RTOSeconds: seconds(-1), RPOSeconds: seconds(-0.5)}},
			[]validation.FieldError{fe("#/objectives/rto_seconds", "out_of_range"), fe("#/objectives/rpo_seconds", "out_of_range")}},
		{"backup measures no rto", Input{Scenario: ScenarioBackup, Objectives: Objectives{RTOSeconds: seconds(60)}},
			[]validation.FieldError{fe("#/objectives/rto_seconds", "unsupported")}},
		{"unknown params, every one", Input{Scenario: ScenarioRestoreVerify, Params: json.RawMessage(`{"target":"x","a/b":1,"backup_id":"bkp_1"}`)},
			[]validation.FieldError{fe("#/params/a~1b", "unknown_field"), fe("#/params/target", "unknown_field")}},
		{"backup takes no params", Input{Scenario: ScenarioBackup, Params: json.RawMessage(`{"backup_id":"bkp_1"}`)},
			[]validation.FieldError{fe("#/params/backup_id", "unknown_field")}},
		{"params not an object", Input{Scenario: ScenarioRestoreVerify, Params: json.RawMessage(`["bkp_1"]`)},
			[]validation.FieldError{fe("#/params", "invalid_type")}},
		{"backup id of the wrong type", Input{Scenario: ScenarioRestoreVerify, Params: json.RawMessage(`{"backup_id":7}`)},
			[]validation.FieldError{fe("#/params/backup_id", "invalid_type")}},
		{"backup id that climbs out of the store", Input{Scenario: ScenarioRestoreVerify, Params: json.RawMessage(`{"backup_id":"bkp_../../etc"}`)},
			[]validation.FieldError{fe("#/params/backup_id", "invalid")}},
		{"several problems at once", Input{Scenario: ScenarioRestoreVerify, Objectives: Objectives{RPOSeconds: seconds(-1)}, Params: json.RawMessage(`{"nope":true}`)},
			[]validation.FieldError{fe("#/objectives/rpo_seconds", "out_of_range"), fe("#/params/nope", "unknown_field")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Validate(tt.in)
			for i := range got {
				if got[i].Detail == "" {
					t.Errorf("%s has no detail", got[i].Pointer)
				}
				got[i].Detail = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate_UnknownScenarioSaysWhatIsAvailable(t *testing.T) {
	errs := Validate(Input{Scenario: "meteor"})
	want := "must be one of backup, restore_verify, failover, cache_loss, capacity, db_degraded, cache_degraded"
	if len(errs) != 1 || errs[0].Detail != want {
		t.Errorf("errors = %v", errs)
	}
}

func TestDecodeParams_ReadsTheBackupID(t *testing.T) {
	p, errs := DecodeParams(ScenarioRestoreVerify, json.RawMessage(`{"backup_id":"bkp_01jq4"}`))
	if len(errs) != 0 || p.BackupID != "bkp_01jq4" {
		t.Errorf("params %+v, errors %v", p, errs)
	}
}

func TestValidBackupID(t *testing.T) {
	for id, want := range map[string]bool{
		"bkp_01jq4zv8x3k2m9c7b6n5t4r3w2": true, "bkp_a": true, "bkp_": false, "bkp": false, "job_1": false,
		"bkp_ABC": false, "bkp_a/b": false, "bkp_..": false, "bkp_" + string(make([]byte, 65)): false,
	} {
		if got := ValidBackupID(id); got != want {
			t.Errorf("ValidBackupID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestMeasurementHelpers(t *testing.T) {
	if diff := cmp.Diff(map[string]float64{"restore_postgres_seconds": 1, "restore_redis_seconds": 2},
		parts("restore", map[string]float64{"postgres": 1, "redis_seconds": 2})); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
	m := manifest()
	m.Artefacts = append(m.Artefacts, Artefact{Name: "extra", Kind: "other", Size: 5})
	want := map[string]float64{"postgres_bytes": 1000, "redis_bytes": 200, "config_bytes": 30, "total_bytes": 1235}
	if diff := cmp.Diff(want, sizes(m)); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	if got := list([]string{"a", "b"}); got != "a; b" {
		t.Errorf("list = %q", got)
	}
	if got := list(make([]string, 12)); got != "; ; ; ; ; ; ; ; ; ; and 2 more" {
		t.Errorf("list of 12 = %q", got)
	}
	if got := clip("héllo", 2); got != "h…" {
		t.Errorf("clip = %q", got)
	}
}

func TestEveryScenarioHasAHypothesis(t *testing.T) {
	for _, s := range Scenarios {
		if h := report.Hypothesis(s, Objectives{}); strings.HasPrefix(h, "No hypothesis") {
			t.Errorf("scenario %s: %s", s, h)
		}
	}
}
