package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/flags/guard"
	"github.com/acme/platform/flags/store"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/workflows/rollout"
)

// Observe gathers both cohorts' numbers since the step began, from the
// rollout's outcome events or from Prometheus, and reports the flag's
// current version so that the workflow notices a human change during the
// hold. At 100% the control cohort has no traffic left, so the control
// numbers of the last step (the baseline) stand in for it, and the evidence
// says so.
func (a *Activities) Observe(ctx context.Context, in rollout.ObserveInput) (rollout.ObserveResult, error) {
	var res rollout.ObserveResult
	rec, err := a.Flags.Get(ctx, in.Flag)
	switch {
	case errors.Is(err, store.ErrNotFound):
		d := a.deleted(ctx, in.Flag)
		res.FlagVersion, res.ChangedBy = d.CurrentVersion, d.ChangedBy
		if res.FlagVersion == in.FlagVersion {
			res.FlagVersion = -1 // deleted: never the version the rollout wrote
		}
		return res, nil
	case err != nil:
		return res, fmt.Errorf("observe rollout %s: %w", in.ID, err)
	}
	res.FlagVersion, res.ChangedBy = rec.Version, rec.UpdatedBy
	if rec.Version != in.FlagVersion {
		return res, nil // the workflow pauses; numbers would not count
	}
	useBaseline := in.Percent == 100 && in.Baseline != nil
	switch in.Guard.Source {
	case rollout.GuardSourceEvents:
		res.Observation, res.Evidence, err = a.observeEvents(ctx, in, useBaseline)
	case rollout.GuardSourcePrometheus:
		res.Observation, res.Evidence, err = a.observePrometheus(ctx, in, useBaseline)
		if err != nil {
			return res, a.promFailed(in, err)
		}
	default:
		err = fmt.Errorf("unknown guard source %q", in.Guard.Source)
	}
	if err != nil {
		return res, fmt.Errorf("observe rollout %s: %w", in.ID, err)
	}
	if useBaseline {
		res.Observation.Control = *in.Baseline
		res.Evidence.ControlFromBaseline = true
	}
	return res, nil
}

const aggregateEvents = `
SELECT variant, count(*)::int, (count(*) FILTER (WHERE error))::int,
       COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), 0)
FROM rollout_events
WHERE rollout_id = $1 AND at >= $2 AND at < $3 AND variant = ANY($4)
GROUP BY variant`

// observeEvents aggregates the outcome events reported for the rollout
// since the step began, per cohort: count, errors and p95 latency.
func (a *Activities) observeEvents(ctx context.Context, in rollout.ObserveInput, skipControl bool) (guard.Observation, rollout.Evidence, error) {
	var end time.Time
	if err := a.DB.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&end); err != nil {
		return guard.Observation{}, rollout.Evidence{}, err
	}
	variants := []string{in.Variant}
	if !skipControl {
		variants = append(variants, in.Control)
	}
	rows, err := a.DB.Query(ctx, aggregateEvents, in.ID, in.Since, end, variants)
	if err != nil {
		return guard.Observation{}, rollout.Evidence{}, err
	}
	defer rows.Close()
	var obs guard.Observation
	ev := rollout.Evidence{Source: rollout.GuardSourceEvents, WindowStart: in.Since.UTC(), WindowEnd: end.UTC(),
		Queries: map[string]string{"events": strings.Join(strings.Fields(aggregateEvents), " ")}, Values: map[string]float64{}}
	for rows.Next() {
		var variant string
		var c guard.Cohort
		if err := rows.Scan(&variant, &c.Samples, &c.Errors, &c.P95LatencyMs); err != nil {
			return guard.Observation{}, rollout.Evidence{}, err
		}
		name := "control"
		if variant == in.Variant {
			name, obs.Treatment = "treatment", c
		} else {
			obs.Control = c
		}
		ev.Values[name+"_samples"], ev.Values[name+"_errors"], ev.Values[name+"_p95_ms"] = float64(c.Samples), float64(c.Errors), c.P95LatencyMs
	}
	return obs, ev, rows.Err()
}

// observePrometheus runs the guard's PromQL templates for each cohort at
// one instant. A cohort whose error-rate query returns nothing has no
// samples, which the judgement treats as too little data.
func (a *Activities) observePrometheus(ctx context.Context, in rollout.ObserveInput, skipControl bool) (guard.Observation, rollout.Evidence, error) {
	p := in.Guard.Prometheus
	if p == nil {
		return guard.Observation{}, rollout.Evidence{}, errors.New("the guard has no prometheus settings")
	}
	now := time.Now()
	window := max(1, int(math.Ceil(now.Sub(in.Since).Seconds())))
	ev := rollout.Evidence{Source: rollout.GuardSourcePrometheus, WindowStart: in.Since.UTC(), WindowEnd: now.UTC(),
		Queries: map[string]string{}, Values: map[string]float64{}}
	if a.PrometheusURL == "" {
		return guard.Observation{}, ev, promFailure(PromNotSet, errors.New("PLATFORM_PROMETHEUS_URL is not set on this worker"))
	}
	q := promQuery{http: a.HTTP, base: a.PrometheusURL, at: now, ev: &ev}
	var obs guard.Observation
	var err error
	if obs.Treatment, err = q.cohort(ctx, "treatment", in, in.Variant, window); err != nil {
		return obs, ev, err
	}
	if !skipControl {
		if obs.Control, err = q.cohort(ctx, "control", in, in.Control, window); err != nil {
			return obs, ev, err
		}
	}
	return obs, ev, nil
}

// promFailed logs a failed Prometheus observation with its details and
// returns the error the workflow notes: its category alone.
func (a *Activities) promFailed(in rollout.ObserveInput, err error) error {
	category := PromBadResponse
	var pe *promError
	if errors.As(err, &pe) {
		category = pe.category
		err = pe.cause
	}
	a.Log.Warn("prometheus guard query failed", "rollout", in.ID, "flag", in.Flag, "category", category, "error", err)
	return temporal.NewApplicationError("prometheus: "+category, rollout.ErrTypeObserveFailed)
}

// promQuery runs instant queries against one Prometheus and keeps the
// evidence: every query as run and every value it returned.
type promQuery struct {
	http *http.Client
	base string
	at   time.Time
	ev   *rollout.Evidence
}

func (q promQuery) cohort(ctx context.Context, name string, in rollout.ObserveInput, variant string, window int) (guard.Cohort, error) {
	p := in.Guard.Prometheus
	fill := func(tmpl string) string { return expandPromQL(tmpl, variant, in.Flag, window) }
	rate, hasRate, err := q.value(ctx, name+"_error_rate", fill(p.ErrorRateQuery))
	if err != nil || !hasRate {
		return guard.Cohort{}, err
	}
	var c guard.Cohort
	if p.SamplesQuery != "" {
		n, ok, err := q.value(ctx, name+"_samples", fill(p.SamplesQuery))
		if err != nil || !ok {
			return guard.Cohort{}, err
		}
		c.Samples = int(math.Round(n))
	} else {
		c.Samples = in.Guard.MinSamples
		q.ev.Notes = append(q.ev.Notes, name+": no samples_query, so an answered error-rate query counts as min_samples requests")
	}
	c.Errors = min(c.Samples, int(math.Round(math.Max(rate, 0)*float64(c.Samples))))
	latency, ok, err := q.value(ctx, name+"_p95_ms", fill(p.LatencyQuery))
	if err != nil {
		return guard.Cohort{}, err
	}
	if ok {
		c.P95LatencyMs = math.Max(latency, 0)
	}
	return c, nil
}

// value runs one instant query. It returns ok=false, with a note in the
// evidence, when the answer is not one finite number (no data, several
// series, a query Prometheus rejects): that is missing data, not an error
// to retry. Transport failures and server errors are errors.
func (q promQuery) value(ctx context.Context, name, query string) (float64, bool, error) {
	q.ev.Queries[name] = query
	v, note, err := instantQuery(ctx, q.http, q.base, query, q.at)
	if err != nil {
		return 0, false, err
	}
	if note != "" {
		q.ev.Notes = append(q.ev.Notes, name+": "+note)
		return 0, false, nil
	}
	q.ev.Values[name] = v
	return v, true, nil
}

// expandPromQL substitutes a template's placeholders. The variant and flag
// are escaped for a double-quoted PromQL string, where templates put them.
func expandPromQL(tmpl, variant, flag string, windowSeconds int) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return strings.NewReplacer(
		"{{variant}}", esc.Replace(variant),
		"{{flag}}", esc.Replace(flag),
		"{{window}}", strconv.Itoa(windowSeconds)+"s",
	).Replace(tmpl)
}

// promResponse is the Prometheus HTTP API's answer to /api/v1/query.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Failure categories of a Prometheus query: the only words about a failure
// that reach the rollout's evidence. The details (addresses, transport
// errors, bodies) stay in the worker's log.
const (
	PromUnreachable = "unreachable"
	PromTimeout     = "timeout"
	PromStatus3xx   = "http_status_3xx"
	PromStatus4xx   = "http_status_4xx"
	PromStatus5xx   = "http_status_5xx"
	PromBadResponse = "bad_response"
	PromNotSet      = "not_configured"
)

// maxPromAnswer bounds the body read from Prometheus; an instant query for
// one number answers in a few hundred bytes.
const maxPromAnswer = 1 << 20

// promError is a failed query. Its text is the category alone; cause is for
// the worker's log.
type promError struct {
	category string
	cause    error
}

func (e *promError) Error() string { return e.category }

func promFailure(category string, cause error) error {
	return &promError{category: category, cause: cause}
}

// NewPrometheusClient is the client of guard queries: no proxy from the
// environment, no redirects (a 3xx is an error, never followed) and bounded
// time. The server is the operator's, so private addresses are allowed.
func NewPrometheusClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: telemetry.TracedTransport(&http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}, true), // the operator's Prometheus
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// knownErrorTypes are the errorType values of the Prometheus HTTP API; any
// other is reported as bad_data, so that no server text reaches a note.
var knownErrorTypes = map[string]bool{
	"bad_data": true, "execution": true, "timeout": true, "canceled": true,
	"internal": true, "unavailable": true, "not_found": true,
}

// instantQuery asks Prometheus for query at time at and returns its one
// value, or a note saying why there is none. Errors are *promError.
func instantQuery(ctx context.Context, client *http.Client, base, query string, at time.Time) (float64, string, error) {
	u := strings.TrimRight(base, "/") + "/api/v1/query?" + url.Values{
		"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", promFailure(PromNotSet, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", promFailure(transportCategory(err), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPromAnswer+1))
	switch {
	case err != nil:
		return 0, "", promFailure(transportCategory(err), err)
	case resp.StatusCode >= 500:
		return 0, "", promFailure(PromStatus5xx, fmt.Errorf("status %d", resp.StatusCode))
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return 0, "", promFailure(PromStatus3xx, fmt.Errorf("status %d to %q", resp.StatusCode, resp.Header.Get("Location")))
	case len(body) > maxPromAnswer:
		return 0, "", promFailure(PromBadResponse, fmt.Errorf("answer larger than %d bytes", maxPromAnswer))
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		if resp.StatusCode >= 400 {
			return 0, "", promFailure(PromStatus4xx, fmt.Errorf("status %d", resp.StatusCode))
		}
		return 0, "", promFailure(PromBadResponse, err)
	}
	if pr.Status != "success" {
		// Prometheus answers 400 or 422 for a query it rejects: missing
		// data, the tenant's to fix; its message stays out of the note.
		kind := pr.ErrorType
		if !knownErrorTypes[kind] {
			kind = "bad_data"
		}
		return 0, "prometheus refused the query (" + kind + ")", nil
	}
	v, note, err := promValue(pr)
	if err != nil {
		return 0, "", promFailure(PromBadResponse, err)
	}
	return v, note, nil
}

// transportCategory names a failed request or read: timeout or unreachable.
func transportCategory(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return PromTimeout
	}
	return PromUnreachable
}

// promValue reads a scalar or a one-series vector.
func promValue(pr promResponse) (float64, string, error) {
	var sample []any // [time, "value"]
	switch pr.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(pr.Data.Result, &sample); err != nil {
			return 0, "", fmt.Errorf("decode prometheus scalar: %w", err)
		}
	case "vector":
		var series []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(pr.Data.Result, &series); err != nil {
			return 0, "", fmt.Errorf("decode prometheus vector: %w", err)
		}
		switch len(series) {
		case 0:
			return 0, "no data", nil
		case 1:
			sample = series[0].Value
		default:
			return 0, fmt.Sprintf("%d series; aggregate the query to one (sum, max...)", len(series)), nil
		}
	default:
		return 0, "the result is not a scalar or a vector; the query must return a scalar or one series", nil
	}
	if len(sample) != 2 {
		return 0, "", fmt.Errorf("prometheus sample has %d parts", len(sample))
	}
	text, _ := sample[1].(string)
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, "the value is not a finite number", nil
	}
	return v, "", nil
}
