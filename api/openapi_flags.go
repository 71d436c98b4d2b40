package api

import "maps"

// The OpenAPI description of the flag routes (/v1/flags, OFREP) and the
// rollout routes, merged into the document by OpenAPI.

func withFlagPaths(ps map[string]map[string]operation) map[string]map[string]operation {
	maps.Copy(ps, flagPaths())
	maps.Copy(ps, rolloutPaths())
	return ps
}

func withFlagSchemas(s obj) obj {
	maps.Copy(s, flagSchemas())
	return s
}

var (
	flagKeyParam = pathParam("key", "flag key: 1–128 of A-Z, a-z, 0-9, '.', '_', '-'")
	ifMatchParam = obj{"name": "If-Match", "in": "header", "description": `ETag from a GET ("42"), or *; 412 when the flag changed`,
		"schema": obj{"type": "string"}}
	changeReasonParam = obj{"name": "X-Change-Reason", "in": "header", "description": "why: kept in the flag's audit (or the reason query parameter)",
		"schema": obj{"type": "string", "maxLength": 500}}
	reasonQueryParam = queryParam("reason", "why: kept in the flag's audit", obj{"type": "string", "maxLength": 500})
	etagHeader       = obj{"ETag": obj{"description": "the flag's version, quoted", "schema": obj{"type": "string"}}}
)

func flagResponse(desc string) obj {
	r := jsonResponse(desc, ref("Flag"))
	r["headers"] = etagHeader
	return r
}

func flagPaths() map[string]map[string]operation {
	writeParams := []obj{flagKeyParam, ifMatchParam, changeReasonParam, reasonQueryParam}
	ofrepBody := obj{"required": false, "content": obj{"application/json": obj{"schema": ref("OFREPRequest")}}}
	return map[string]map[string]operation{
		"/v1/flags": {"get": {summary: "List flags, newest first", scope: "flags:read", params: pageParams,
			responses: map[string]obj{"200": jsonResponse("a page of flags", listOf(ref("Flag")))}, errors: []string{"400"}}},
		"/v1/flags/{key}": {
			"get": {summary: "Get a flag's flagd definition with its version (ETag)", scope: "flags:read", params: []obj{flagKeyParam},
				responses: map[string]obj{"200": flagResponse("the flag")}, errors: []string{"404"}},
			"put": {summary: "Create or replace a flag; If-Match makes it conditional, If-None-Match: * creates only", scope: "flags:write",
				params:    append(writeParams, obj{"name": "If-None-Match", "in": "header", "description": "* to create only", "schema": obj{"type": "string"}}),
				body:      jsonBody(ref("FlagDefinition")),
				responses: map[string]obj{"200": flagResponse("replaced"), "201": flagResponse("created")},
				errors:    []string{"400", "412", "413", "415"}},
			"patch": {summary: "Change a flag with an RFC 7396 JSON merge patch of its definition", scope: "flags:write", params: writeParams,
				body:      obj{"required": true, "content": obj{"application/merge-patch+json": obj{"schema": obj{"type": "object"}}}},
				responses: map[string]obj{"200": flagResponse("the patched flag")}, errors: []string{"400", "404", "412", "413", "415"}},
			"delete": {summary: "Delete a flag", scope: "flags:write", params: writeParams,
				responses: map[string]obj{"204": {"description": "deleted"}}, errors: []string{"400", "404", "412"}},
		},
		"/ofrep/v1/evaluate/flags/{key}": {"post": {summary: "OFREP: evaluate one flag", scope: "flags:read",
			params: []obj{flagKeyParam}, body: ofrepBody, responses: map[string]obj{
				"200": jsonResponse("the evaluation (no value: use the code default)", ref("OFREPEvaluation")),
				"400": jsonResponse("evaluation failed", ref("OFREPFailure")),
				"404": jsonResponse("FLAG_NOT_FOUND", ref("OFREPFailure")),
			}, errors: []string{"413"}}},
		"/ofrep/v1/evaluate/flags": {"post": {summary: "OFREP: evaluate every flag; ETag and If-None-Match for polling", scope: "flags:read",
			params: []obj{{"name": "If-None-Match", "in": "header", "description": "ETag of an earlier answer", "schema": obj{"type": "string"}}},
			body:   ofrepBody, responses: map[string]obj{
				"200": jsonResponse("the evaluations", obj{"type": "object", "properties": obj{"flags": obj{"type": "array",
					"items": obj{"oneOf": []obj{ref("OFREPEvaluation"), ref("OFREPFailure")}}}}}),
				"304": {"description": "not modified since the ETag"},
				"400": jsonResponse("the request could not be evaluated", obj{"type": "object", "properties": obj{
					"errorCode": obj{"type": "string"}, "errorDetails": obj{"type": "string"}}}),
			}, errors: []string{"413"}}},
	}
}

func rolloutPaths() map[string]map[string]operation {
	id := pathParam("id", "rol_…")
	command := func(what string) map[string]operation {
		return map[string]operation{"post": {summary: what, scope: "rollouts:write", params: []obj{id, idempotencyKeyParam},
			body:      obj{"required": false, "content": obj{"application/json": obj{"schema": ref("RolloutCommand")}}},
			responses: map[string]obj{"200": jsonResponse("the rollout with its new status", ref("Rollout"))},
			errors:    []string{"400", "404", "409", "415"}}}
	}
	return map[string]map[string]operation{
		"/v1/rollouts": {
			"post": {summary: "Start a guarded rollout (workflow platform.rollout)", scope: "rollouts:write",
				params: []obj{idempotencyKeyParam}, body: jsonBody(ref("RolloutCreate")),
				responses: map[string]obj{"202": jsonResponse("started", ref("Rollout"))}, errors: []string{"400", "409", "413", "415", "422"}},
			"get": {summary: "List rollouts, newest first", scope: "rollouts:read",
				params:    append([]obj{queryParam("flag", "only rollouts of this flag", obj{"type": "string"})}, pageParams...),
				responses: map[string]obj{"200": jsonResponse("a page of rollouts", listOf(ref("Rollout")))}, errors: []string{"400"}},
		},
		"/v1/rollouts/{id}": {"get": {summary: "A rollout: current step, per-step checks with their numbers and evidence", scope: "rollouts:read",
			params: []obj{id}, responses: map[string]obj{"200": jsonResponse("the rollout", ref("Rollout"))}, errors: []string{"404"}}},
		"/v1/rollouts/{id}/pause":  command("Pause a running rollout (the split stays)"),
		"/v1/rollouts/{id}/resume": command("Resume a paused rollout: the step restarts on the flag's current version"),
		"/v1/rollouts/{id}/abort":  command("Abort a rollout: control for everyone unless someone else changed the flag"),
		"/v1/rollouts/{id}/events": {"post": {summary: "Report outcome events for the events guard source", scope: "rollouts:write",
			params: []obj{id, idempotencyKeyParam}, body: jsonBody(ref("RolloutEvents")),
			responses: map[string]obj{"202": jsonResponse("stored", obj{"type": "object", "properties": obj{"accepted": obj{"type": "integer"}}})},
			errors:    []string{"400", "404", "409", "413", "415", "422"}}},
	}
}

func flagSchemas() obj {
	ts := obj{"type": "string", "format": "date-time"}
	nullableTS := obj{"type": []string{"string", "null"}, "format": "date-time"}
	definition := obj{
		"state":          obj{"type": "string", "enum": []string{"ENABLED", "DISABLED"}},
		"variants":       obj{"type": "object", "description": "variant name → value; one type for all"},
		"defaultVariant": obj{"type": []string{"string", "null"}},
		"targeting":      obj{"type": "object", "description": "JSONLogic with flagd's fractional, sem_ver, starts_with, ends_with"},
		"metadata":       obj{"type": "object"},
	}
	flag := maps.Clone(definition)
	flag["key"], flag["version"], flag["updated_at"] = obj{"type": "string"}, obj{"type": "integer"}, ts
	step := obj{"type": "object", "required": []string{"percent", "hold_seconds"}, "properties": obj{
		"percent": obj{"type": "integer", "minimum": 1, "maximum": 100}, "hold_seconds": obj{"type": "integer", "minimum": 1}}}
	guard := obj{"type": "object", "required": []string{"source"}, "properties": obj{
		"source": obj{"type": "string", "enum": []string{"events", "prometheus"}}, "interval_seconds": obj{"type": "integer", "default": 30},
		"min_samples": obj{"type": "integer", "default": 200}, "max_error_rate_delta": obj{"type": "number", "default": 0.01},
		"max_latency_ratio": obj{"type": "number", "default": 1.25}, "max_error_rate": obj{"type": "number", "default": 0},
		"max_p95_latency_ms": obj{"type": "number", "default": 0}, "failure_limit": obj{"type": "integer", "default": 2},
		"max_inconclusive_extensions": obj{"type": "integer", "default": 3},
		"prometheus": obj{"type": "object", "additionalProperties": false, "properties": obj{
			"error_rate_query": obj{"type": "string", "description": `PromQL template selecting its series with label="{{flag}}" and label="{{variant}}" matchers; {{window}} is the time since the step began. The server is the platform's (PLATFORM_PROMETHEUS_URL).`},
			"latency_query":    obj{"type": "string"}, "samples_query": obj{"type": "string"}}},
	}}
	return obj{
		"FlagDefinition": obj{"type": "object", "required": []string{"state", "variants"}, "properties": definition,
			"description": "a flagd flag definition (one entry of a flagd file's flags); key, version and updated_at from a GET are accepted and ignored"},
		"Flag": obj{"type": "object", "properties": flag},
		"OFREPRequest": obj{"type": "object", "properties": obj{"context": obj{"type": "object",
			"description": "evaluation context; targetingKey is the subject"}}},
		"OFREPEvaluation": obj{"type": "object", "required": []string{"key", "reason"}, "properties": obj{
			"key": obj{"type": "string"}, "value": obj{}, "reason": obj{"type": "string"}, "variant": obj{"type": "string"},
			"metadata": obj{"type": "object"}}},
		"OFREPFailure": obj{"type": "object", "required": []string{"key", "errorCode"}, "properties": obj{
			"key": obj{"type": "string"}, "errorCode": obj{"type": "string"}, "errorDetails": obj{"type": "string"}}},
		"RolloutCreate": obj{"type": "object", "additionalProperties": false, "required": []string{"flag", "variant", "steps", "guard"},
			"properties": obj{"flag": obj{"type": "string"}, "variant": obj{"type": "string"},
				"control": obj{"type": "string", "description": "default: the flag's default variant"},
				"steps":   obj{"type": "array", "items": step, "description": "increasing percents ending at 100"}, "guard": guard}},
		"RolloutCommand": obj{"type": "object", "properties": obj{"reason": obj{"type": "string"}}},
		"RolloutEvents": obj{"type": "object", "required": []string{"events"}, "properties": obj{"events": obj{"type": "array",
			"maxItems": 1000, "items": obj{"type": "object", "required": []string{"targeting_key", "variant", "error"}, "properties": obj{
				"targeting_key": obj{"type": "string"}, "variant": obj{"type": "string"}, "error": obj{"type": "boolean"},
				"latency_ms": obj{"type": "number", "minimum": 0}}}}}},
		"Rollout": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "principal": obj{"type": "string"}, "flag": obj{"type": "string"},
			"variant": obj{"type": "string"}, "control": obj{"type": "string"},
			"status": obj{"type": "string", "enum": []string{"running", "paused", "succeeded", "rolled_back", "aborted", "failed"}},
			"reason": obj{"type": "string"}, "current_step": obj{"type": "integer"}, "percent": obj{"type": "integer"},
			"flag_version": obj{"type": []string{"integer", "null"}}, "guard": guard,
			"steps":       obj{"type": "array", "items": obj{"type": "object", "description": "the step, its progress and its checks (verdict, numbers, evidence)"}},
			"evidence":    obj{"type": "object", "description": "why it ended: decision, checks, queries and values"},
			"workflow_id": obj{"type": "string"}, "run_id": obj{"type": "string"}, "temporal_url": obj{"type": "string"},
			"created_at": ts, "updated_at": ts, "finished_at": nullableTS}},
	}
}
