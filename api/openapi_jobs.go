package api

import "maps"

// The OpenAPI description of the background jobs' routes (jobs, uploads,
// usage, webhook secret), merged into the document by OpenAPI.

func withJobPaths(ps map[string]map[string]operation) map[string]map[string]operation {
	maps.Copy(ps, jobPaths())
	return ps
}

func withJobSchemas(s obj) obj {
	maps.Copy(s, jobSchemas())
	return s
}

func jobPaths() map[string]map[string]operation {
	jobID := pathParam("id", "job_…")
	return map[string]map[string]operation{
		"/v1/jobs": {
			"post": {summary: "Start a background job (webhook, analytics.rollup or upload.process)", scope: "jobs:write",
				params: []obj{idempotencyKeyParam}, body: jsonBody(ref("JobCreate")),
				responses: map[string]obj{"201": jsonResponse("the job, queued: accepted by Temporal, whether or not a worker runs", ref("Job"))},
				errors:    []string{"400", "413", "415", "422"}},
			"get": {summary: "List jobs, newest first; a job is listed once a worker has started it", scope: "jobs:read",
				params: append([]obj{
					queryParam("status", "only jobs in this status", obj{"type": "string", "enum": jobStatuses}),
					queryParam("type", "only jobs of this type", obj{"type": "string", "enum": jobTypes}),
					queryParam("principal", "admin only: jobs of one principal (default: all)", obj{"type": "string"}),
				}, pageParams...),
				responses: map[string]obj{"200": jsonResponse("a page of jobs", listOf(ref("Job")))}, errors: []string{"400"}},
		},
		"/v1/jobs/{id}": {"get": {summary: "Get a job", scope: "jobs:read", params: []obj{jobID},
			responses: map[string]obj{"200": jsonResponse("the job", ref("Job"))}, errors: []string{"404"}}},
		"/v1/jobs/{id}/attempts": {"get": {summary: "A job's ended attempts, newest first (at most 100, one page)", scope: "jobs:read",
			params: []obj{jobID}, responses: map[string]obj{"200": jsonResponse("the attempts", listOf(ref("JobAttempt")))},
			errors: []string{"400", "404"}}},
		"/v1/jobs/{id}/cancel": {"post": {summary: "Cancel a job: its running attempt stops and the job ends canceled", scope: "jobs:write",
			params: []obj{jobID, idempotencyKeyParam}, responses: map[string]obj{"202": jsonResponse("cancellation requested", ref("Job"))},
			errors: []string{"404", "409"}}},
		"/v1/uploads": {"post": {summary: "Upload a file (streamed to storage; limit PLATFORM_UPLOAD_MAX_BYTES)", scope: "jobs:write",
			params: []obj{idempotencyKeyParam,
				queryParam("process", "also start its upload.process job", obj{"type": "boolean", "default": false})},
			body:      obj{"required": true, "content": obj{"*/*": obj{"schema": obj{"type": "string", "format": "binary"}}}},
			responses: map[string]obj{"201": jsonResponse("stored", ref("Upload"))},
			errors:    []string{"400", "409", "413", "415", "422"}}},
		"/v1/usage": {"get": {summary: "Hourly API usage per principal and route, newest hour first", scope: "jobs:read",
			params: append([]obj{
				{"name": "from", "in": "query", "required": true, "description": "RFC 3339; hours starting at or after", "schema": obj{"type": "string", "format": "date-time"}},
				{"name": "to", "in": "query", "required": true, "description": "RFC 3339; hours starting before", "schema": obj{"type": "string", "format": "date-time"}},
				queryParam("principal", "admin only: one principal (default: all)", obj{"type": "string"}),
			}, pageParams...),
			responses: map[string]obj{"200": jsonResponse("a page of hourly rows", listOf(ref("UsageHour")))}, errors: []string{"400"}}},
		"/v1/webhook-secret": {"get": {summary: "The principal's webhook signing secret (created on first use)", scope: "jobs:write",
			responses: map[string]obj{"200": jsonResponse("the current secret", ref("WebhookSecret"))}}},
		"/v1/webhook-secret/rotate": {"post": {summary: "Rotate the signing secret; the previous one signs too for 24 hours", scope: "jobs:write",
			params: []obj{idempotencyKeyParam}, responses: map[string]obj{"200": jsonResponse("the new secret", ref("WebhookSecret"))},
			errors: []string{"400", "415", "422"}}},
	}
}

var (
	jobStatuses = []string{"queued", "running", "retrying", "succeeded", "failed", "canceled", "timed_out"}
	jobTypes    = []string{"webhook", "analytics.rollup", "upload.process"}
)

func jobSchemas() obj {
	ts := obj{"type": "string", "format": "date-time"}
	nullableTS := obj{"type": []string{"string", "null"}, "format": "date-time"}
	num := obj{"type": "number"}
	return obj{
		"JobCreate": obj{"type": "object", "additionalProperties": false, "required": []string{"type", "input"},
			"properties": obj{
				"type": obj{"type": "string", "enum": jobTypes},
				"input": obj{"type": "object", "description": "webhook: {url, payload}; analytics.rollup: {from, to} (RFC 3339, at most 31 days); " +
					"upload.process: {upload_id}"},
				"retry": obj{"type": "object", "additionalProperties": false, "properties": obj{
					"max_attempts":             obj{"type": "integer", "minimum": 1, "maximum": 100, "default": 5},
					"initial_interval_seconds": obj{"type": "number", "minimum": 0.1, "maximum": 3600, "default": 1},
					"max_interval_seconds":     obj{"type": "number", "minimum": 0.1, "maximum": 86400, "default": 60},
					"backoff_coefficient":      obj{"type": "number", "minimum": 1, "maximum": 10, "default": 2},
					"ttl_seconds":              obj{"type": "integer", "minimum": 1, "maximum": 604800, "default": 3600},
				}},
			}},
		"Job": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "type": obj{"type": "string", "enum": jobTypes},
			"status": obj{"type": "string", "enum": jobStatuses}, "attempts": obj{"type": "integer"},
			"last_error": obj{"type": []string{"object", "null"}, "properties": obj{
				"message": obj{"type": "string"}, "attempt": obj{"type": "integer"}, "at": ts, "retryable": obj{"type": "boolean"}}},
			"input": obj{"type": "object"}, "result": obj{"type": []string{"object", "null"}},
			"created_at": ts, "updated_at": ts, "started_at": nullableTS, "finished_at": nullableTS,
			"workflow": obj{"type": "object", "properties": obj{
				"id": obj{"type": "string"}, "run_id": obj{"type": "string"},
				"url": obj{"type": "string", "format": "uri", "description": "the run in the Temporal UI"}}},
		}},
		"JobAttempt": obj{"type": "object", "properties": obj{
			"attempt": obj{"type": "integer"}, "status": obj{"type": "string", "enum": []string{"succeeded", "failed", "canceled"}},
			"error": obj{"type": []string{"string", "null"}}, "retryable": obj{"type": "boolean"},
			"started_at": ts, "finished_at": ts,
			"response": obj{"type": []string{"object", "null"}, "description": "webhooks: what the receiver answered", "properties": obj{
				"status": obj{"type": "integer"}, "latency_ms": num, "body": obj{"type": "string", "maxLength": 2048},
				"body_truncated": obj{"type": "boolean"}}},
		}},
		"Upload": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "size": obj{"type": "integer"}, "sha256": obj{"type": "string"},
			"content_type": obj{"type": "string"}, "created_at": ts,
			"job_id": obj{"type": "string", "description": "with ?process=true: the upload.process job"}}},
		"UsageHour": obj{"type": "object", "properties": obj{
			"hour": ts, "principal": obj{"type": "string"}, "route": obj{"type": "string"},
			"count": obj{"type": "integer"}, "errors": obj{"type": "integer", "description": "5xx answers"},
			"client_errors": obj{"type": "integer", "description": "4xx answers"}, "p50_ms": num, "p95_ms": num}},
		"WebhookSecret": obj{"type": "object", "properties": obj{
			"secret": obj{"type": "string", "description": "whsec_…: Standard Webhooks signing secret"}, "created_at": ts,
			"previous_valid_until": nullableTS}},
	}
}
