package api

import (
	"maps"

	"github.com/acme/platform/slo"
)

// The OpenAPI description of GET /v1/slos, merged into the document by
// OpenAPI.

func withSLOPaths(ps map[string]map[string]operation) map[string]map[string]operation {
	ps["/v1/slos"] = map[string]operation{"get": {
		summary: "Each SLO (availability and latency per endpoint class, 28 days) with its error budget remaining and " +
			"burn rates over 1h, 6h, 1d and 3d, from the platform's usage data; ?principal= (admin) gives one client's, " +
			"other keys always see their own principal's",
		scope: "slo:read",
		params: []obj{queryParam("principal", "admin only: the SLOs of one client's traffic (default: all traffic)",
			obj{"type": "string"})},
		responses: map[string]obj{"200": jsonResponse("every SLO", ref("SLOReport"))},
		errors:    []string{"400"}}}
	return ps
}

func withSLOSchemas(s obj) obj {
	classes := make([]string, len(slo.Classes))
	for i, c := range slo.Classes {
		classes[i] = string(c)
	}
	burn := obj{}
	for _, w := range slo.BurnWindows {
		burn[w.Name] = obj{"type": "number", "minimum": 0}
	}
	maps.Copy(s, obj{
		"SLOReport": obj{"type": "object", "properties": obj{
			"as_of":     obj{"type": "string", "format": "date-time"},
			"principal": obj{"type": []string{"string", "null"}, "description": "whose traffic; null is all traffic"},
			"data":      obj{"type": "array", "items": ref("SLO")},
		}},
		"SLO": obj{"type": "object", "properties": obj{
			"name":                 obj{"type": "string"},
			"class":                obj{"type": "string", "enum": classes},
			"sli":                  obj{"type": "string", "enum": []string{slo.Availability, slo.Latency}},
			"description":          obj{"type": "string"},
			"objective":            obj{"type": "number", "description": "share of good events, such as 0.999"},
			"latency_threshold_ms": obj{"type": []string{"number", "null"}},
			"window":               obj{"type": "string", "enum": []string{"28d"}},
			"events": obj{"type": "object", "properties": obj{
				"total": obj{"type": "integer"}, "bad": obj{"type": "integer"}}},
			"sli_value":              obj{"type": []string{"number", "null"}, "description": "null without events"},
			"error_budget_remaining": obj{"type": "number", "description": "1 untouched, 0 spent, negative overspent"},
			"burn_rates": obj{"type": "object", "properties": burn,
				"description": "1 spends the budget exactly over the window; windows are whole UTC hours ending with the current one"},
		}},
	})
	return s
}
