package api

import (
	"maps"

	"github.com/acme/platform/scaling"
)

// The OpenAPI description of the scaling routes, merged into the document
// by OpenAPI.

func withScalingPaths(ps map[string]map[string]operation) map[string]map[string]operation {
	maps.Copy(ps, scalingPaths())
	return ps
}

func withScalingSchemas(s obj) obj {
	maps.Copy(s, scalingSchemas())
	return s
}

var scalingIfMatch = obj{"name": "If-Match", "in": "header", "description": `ETag from a GET ("v3"); 412 when the policy changed`,
	"schema": obj{"type": "string"}}

func scalingPaths() map[string]map[string]operation {
	target := obj{"name": "target", "in": "path", "required": true, "description": "worker or api",
		"schema": obj{"type": "string", "enum": scaling.Targets}}
	targetFilter := queryParam("target", "only this target", obj{"type": "string", "enum": scaling.Targets})
	control := func(summary string, body obj) operation {
		return operation{summary: summary, scope: "scaling:write", params: []obj{target, idempotencyKeyParam}, body: body,
			responses: map[string]obj{"202": jsonResponse("the target's state", ref("ScalingTarget"))},
			errors:    []string{"400", "404", "413", "415", "422", "503"}}
	}
	return map[string]map[string]operation{
		"/v1/scaling/policies": {"get": {summary: "List the scaling policies (platform-wide, one per target)", scope: "scaling:read",
			responses: map[string]obj{"200": jsonResponse("every policy", listOf(ref("ScalingPolicy")))}, errors: []string{"400"}}},
		"/v1/scaling/policies/{target}": {
			"get": {summary: "Get a target's scaling policy with its ETag", scope: "scaling:read", params: []obj{target},
				responses: map[string]obj{"200": jsonResponse("the policy", ref("ScalingPolicy"))}, errors: []string{"404"}},
			"put": {summary: "Create or replace a target's scaling policy (HPA defaults for what is left out) and start its controller",
				scope: "scaling:write", params: []obj{target, scalingIfMatch}, body: jsonBody(ref("ScalingPolicyInput")),
				responses: map[string]obj{"200": jsonResponse("the policy, replaced", ref("ScalingPolicy")),
					"201": jsonResponse("the policy, created", ref("ScalingPolicy"))},
				errors: []string{"400", "404", "412", "413", "415", "503"}},
			"delete": {summary: "Delete a target's scaling policy; its controller stops at its next interval", scope: "scaling:write",
				params: []obj{target, scalingIfMatch}, responses: map[string]obj{"204": {"description": "deleted"}},
				errors: []string{"404", "412"}},
		},
		"/v1/scaling/policies/{target}/pause":  {"post": control("Pause the target's controller: it records decisions and applies none", nil)},
		"/v1/scaling/policies/{target}/resume": {"post": control("Resume the target's controller", nil)},
		"/v1/scaling/policies/{target}/override": {"post": control("Hold a replica count until a time (replicas 0 clears it)",
			jsonBody(obj{"type": "object", "required": []string{"replicas"}, "additionalProperties": false, "properties": obj{
				"replicas": obj{"type": "integer", "minimum": 0, "maximum": scaling.MaxReplicasLimit},
				"until":    obj{"type": "string", "format": "date-time"}}}))},
		"/v1/scaling/targets/{target}": {"get": {summary: "A target's desired and ready replicas, policy version, pause, override and last decision",
			scope: "scaling:read", params: []obj{target}, responses: map[string]obj{"200": jsonResponse("the target", ref("ScalingTarget"))},
			errors: []string{"404"}}},
		"/v1/scaling/decisions": {"get": {summary: "List the controllers' decisions, newest first, with every signal and reason",
			scope: "scaling:read", params: append([]obj{targetFilter}, pageParams...),
			responses: map[string]obj{"200": jsonResponse("a page of decisions", listOf(ref("ScalingDecision")))}, errors: []string{"400"}}},
		"/v1/scaling/actions": {
			"post": {summary: "Change a target's replica count; waits ready, checks serving, rolls back otherwise", scope: "scaling:write",
				params: []obj{idempotencyKeyParam}, body: jsonBody(ref("ScalingActionInput")),
				responses: map[string]obj{"201": jsonResponse("the action, running", ref("ScalingAction"))},
				errors:    []string{"400", "413", "415", "422", "503"}},
			"get": {summary: "List scaling actions, newest first", scope: "scaling:read",
				params: append([]obj{targetFilter, queryParam("status", "only actions in this status",
					obj{"type": "string", "enum": scaling.ActionStatuses})}, pageParams...),
				responses: map[string]obj{"200": jsonResponse("a page of actions", listOf(ref("ScalingAction")))}, errors: []string{"400"}},
		},
		"/v1/scaling/actions/{id}": {"get": {summary: "Get a scaling action with its steps and timings", scope: "scaling:read",
			params: []obj{pathParam("id", "sca_…")}, responses: map[string]obj{"200": jsonResponse("the action", ref("ScalingAction"))},
			errors: []string{"404"}}},
	}
}

func scalingSchemas() obj {
	num := obj{"type": "number"}
	integer := obj{"type": "integer"}
	behavior := obj{"type": "object", "properties": obj{"stabilization_seconds": integer, "max_step_percent": integer,
		"max_step_replicas": integer, "period_seconds": integer}}
	signals := obj{"type": "object", "properties": obj{"backlog_per_replica": num, "max_backlog_age_seconds": num,
		"p95_latency_ms": num, "cpu_utilization": num, "memory_utilization": num, "slot_utilization": num}}
	policy := obj{"driver": obj{"type": "string", "enum": scaling.Drivers}, "mode": obj{"type": "string", "enum": []string{"auto", "recommend"}},
		"min_replicas": integer, "max_replicas": integer, "interval_seconds": integer, "signals": signals, "tolerance": num,
		"scale_up": behavior, "scale_down": behavior}
	full := maps.Clone(policy)
	full["target"], full["version"], full["updated_at"] = obj{"type": "string"}, integer, obj{"type": "string", "format": "date-time"}
	return obj{
		"ScalingPolicyInput": obj{"type": "object", "required": []string{"max_replicas"}, "additionalProperties": false, "properties": policy},
		"ScalingPolicy":      obj{"type": "object", "properties": full},
		"ScalingDecision": obj{"type": "object", "description": "one controller interval: signals, recommendations, outcome and reason",
			"properties": obj{"id": obj{"type": "string"}, "target": obj{"type": "string"}, "at": obj{"type": "string", "format": "date-time"},
				"signals": obj{"type": "array", "items": obj{"type": "object"}}, "combined": integer, "stabilized": integer,
				"rate_limited": integer, "desired": integer, "outcome": obj{"type": "string", "enum": []string{"scaled", "none"}},
				"action_id": obj{"type": "string"}, "reason": obj{"type": "string"}, "notes": obj{"type": "array", "items": obj{"type": "string"}}}},
		"ScalingTarget": obj{"type": "object", "properties": obj{"target": obj{"type": "string"}, "policy_version": integer,
			"desired_replicas": integer, "ready_replicas": integer, "paused": obj{"type": "boolean"}, "override": obj{"type": []string{"object", "null"}},
			"last_decision": obj{"type": []string{"object", "null"}}}},
		"ScalingActionInput": obj{"type": "object", "required": []string{"target", "replicas", "reason"}, "additionalProperties": false,
			"properties": obj{"target": obj{"type": "string", "enum": scaling.Targets}, "replicas": integer, "reason": obj{"type": "string"},
				"driver": obj{"type": "string", "enum": scaling.Drivers}, "timeout_seconds": integer}},
		"ScalingAction": obj{"type": "object", "properties": obj{"id": obj{"type": "string"}, "target": obj{"type": "string"},
			"replicas": integer, "previous_replicas": integer, "status": obj{"type": "string", "enum": scaling.ActionStatuses},
			"steps": obj{"type": "array", "items": obj{"type": "object"}}, "error": obj{"type": "string"}}},
	}
}
