package rollout

import (
	"encoding/json"
	"testing"
)

func TestExpandPromQL_EscapesTheVariant(t *testing.T) {
	got := expandPromQL(`rate(x{variant="{{variant}}",flag="{{flag}}"}[{{window}}])`, `a"b\c`, "checkout", 90)
	want := `rate(x{variant="a\"b\\c",flag="checkout"}[90s])`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestPromValue_ReadsOneNumberOrSaysWhyNot(t *testing.T) {
	tests := []struct {
		name, answer string
		value        float64
		note         bool
	}{
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"0.25"]}}`, 0.25, false},
		{"one series", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}]}}`, 12.5, false},
		{"no data", `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, true},
		{"two series", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`, 0, true},
		{"NaN", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}}`, 0, true},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pr promResponse
			if err := json.Unmarshal([]byte(tt.answer), &pr); err != nil {
				t.Fatal(err)
			}
			v, note, err := promValue(pr)
			if err != nil || v != tt.value || (note != "") != tt.note {
				t.Errorf("got %v %q %v", v, note, err)
			}
		})
	}
}
