package usage

import "time"

// hourView is one hourly roll-up row. errors counts 5xx answers,
// client_errors 4xx; latencies are in milliseconds.
type hourView struct {
	Hour         time.Time `json:"hour"`
	Principal    string    `json:"principal"`
	Route        string    `json:"route"`
	Count        int64     `json:"count"`
	Errors       int64     `json:"errors"`
	ClientErrors int64     `json:"client_errors"`
	P50MS        float64   `json:"p50_ms"`
	P95MS        float64   `json:"p95_ms"`
}

func toView(h Hour) hourView {
	return hourView{Hour: h.Hour.UTC(), Principal: h.Principal, Route: h.Route, Count: h.Count, Errors: h.Errors,
		ClientErrors: h.ClientErrors, P50MS: h.P50MS, P95MS: h.P95MS}
}
