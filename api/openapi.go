package api

import (
	"net/http"
	"strings"

	"github.com/acme/platform/api/httpx/web"
)

// The OpenAPI 3.1 description of every route, built in Go so that shared
// pieces (the problem schema, pagination parameters, error responses) are
// written once. TestOpenAPI_MatchesRouter fails when a route registered on
// the router is missing here, or the other way round.

type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func jsonBody(schema obj) obj {
	return obj{"required": true, "content": obj{"application/json": obj{"schema": schema}}}
}

func jsonResponse(desc string, schema obj) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": schema}}}
}

var problemResponse = obj{"description": "Problem details (RFC 9457)",
	"content": obj{"application/problem+json": obj{"schema": ref("Problem")}}}

// operation describes one method of a path.
type operation struct {
	summary   string
	scope     string // "" for public routes, "any" for any valid key
	params    []obj
	body      obj
	responses map[string]obj
	errors    []string // statuses answered with a problem
}

func (o operation) build(id string) obj {
	op := obj{"summary": o.summary, "operationId": id}
	responses := obj{}
	for code, r := range o.responses {
		responses[code] = r
	}
	errs := o.errors
	if o.scope != "" {
		op["security"] = []obj{{"apiKey": []string{}}}
		op["description"] = "Needs any valid API key."
		if o.scope != "any" {
			op["security"] = []obj{{"apiKey": []string{o.scope}}}
			op["description"] = "Needs the `" + o.scope + "` scope."
		}
		errs = append(errs, "401", "403", "429")
	}
	for _, code := range errs {
		responses[code] = problemResponse
	}
	responses["500"] = problemResponse
	responses["503"] = problemResponse
	op["responses"] = responses
	if len(o.params) > 0 {
		op["parameters"] = o.params
	}
	if o.body != nil {
		op["requestBody"] = o.body
	}
	return op
}

func pathParam(name, desc string) obj {
	return obj{"name": name, "in": "path", "required": true, "description": desc, "schema": obj{"type": "string"}}
}

func queryParam(name, desc string, schema obj) obj {
	return obj{"name": name, "in": "query", "description": desc, "schema": schema}
}

var idempotencyKeyParam = obj{"name": "Idempotency-Key", "in": "header",
	"description": "1–255 printable ASCII characters; replays return the first response for 24 hours",
	"schema":      obj{"type": "string", "minLength": 1, "maxLength": 255}}

var pageParams = []obj{
	queryParam("limit", "page size, 1–100", obj{"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
	queryParam("cursor", "opaque cursor from next_cursor", obj{"type": "string"}),
}

func listOf(item obj) obj {
	return obj{"type": "object", "required": []string{"data", "has_more", "next_cursor"}, "properties": obj{
		"data": obj{"type": "array", "items": item}, "has_more": obj{"type": "boolean"},
		"next_cursor": obj{"type": []string{"string", "null"}},
	}}
}

// paths lists every route's operations by path and method.
func paths() map[string]map[string]operation {
	return map[string]map[string]operation{
		"/healthz": {"get": {summary: "The process lives", responses: map[string]obj{"200": jsonResponse("alive", obj{"type": "object"})}}},
		"/readyz": {"get": {summary: "Postgres, Redis and Temporal reachable and not draining",
			responses: map[string]obj{"200": jsonResponse("ready", obj{"type": "object"})}}},
		"/openapi.json": {"get": {summary: "This document", responses: map[string]obj{"200": jsonResponse("OpenAPI 3.1", obj{"type": "object"})}}},
		"/problems/{code}": {"get": {summary: "What a problem code means", params: []obj{pathParam("code", "problem code")},
			responses: map[string]obj{"200": {"description": "HTML page"}}, errors: []string{"404"}}},
		"/v1/ping": {"post": {summary: "Start the platform.ping workflow", scope: "any", params: []obj{idempotencyKeyParam}, body: jsonBody(ref("PingRequest")),
			responses: map[string]obj{"202": jsonResponse("started", ref("Ping"))}, errors: []string{"400", "413", "415"}}},
		"/v1/ping/{id}": {"get": {summary: "A ping workflow's status and writes", scope: "any", params: []obj{pathParam("id", "png_…")},
			responses: map[string]obj{"200": jsonResponse("the ping", ref("Ping"))}, errors: []string{"404"}}},
		"/v1/keys": {
			"post": {summary: "Create an API key (the secret is shown once)", scope: "keys:admin",
				params: []obj{idempotencyKeyParam}, body: jsonBody(ref("KeyCreate")),
				responses: map[string]obj{"201": jsonResponse("created", ref("Key"))}, errors: []string{"400", "409", "413", "415", "422"}},
			"get": {summary: "List API keys, newest first", scope: "keys:admin",
				params:    append([]obj{queryParam("principal", "admin only: keys of one principal", obj{"type": "string"})}, pageParams...),
				responses: map[string]obj{"200": jsonResponse("a page of keys", listOf(ref("Key")))}, errors: []string{"400"}},
		},
		"/v1/keys/{id}": {
			"get": {summary: "Get an API key", scope: "keys:admin", params: []obj{pathParam("id", "key_…")},
				responses: map[string]obj{"200": jsonResponse("the key", ref("Key"))}, errors: []string{"404"}},
			"delete": {summary: "Revoke an API key", scope: "keys:admin", params: []obj{pathParam("id", "key_…")},
				responses: map[string]obj{"204": {"description": "revoked"}}, errors: []string{"404"}},
		},
	}
}

func schemas() obj {
	ts := obj{"type": "string", "format": "date-time"}
	nullableTS := obj{"type": []string{"string", "null"}, "format": "date-time"}
	return obj{
		"Problem": obj{"type": "object", "required": []string{"type", "title", "status", "code", "request_id", "trace_id"},
			"properties": obj{
				"type": obj{"type": "string", "format": "uri"}, "title": obj{"type": "string"}, "status": obj{"type": "integer"},
				"detail": obj{"type": "string"}, "instance": obj{"type": "string"}, "code": obj{"type": "string"},
				"request_id": obj{"type": "string"}, "trace_id": obj{"type": "string", "pattern": "^[0-9a-f]{32}$"},
				"errors": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
					"pointer": obj{"type": "string"}, "detail": obj{"type": "string"}, "code": obj{"type": "string"}}}},
				"violated-policies": obj{"type": "array", "items": obj{"type": "string"}},
			}},
		"PingRequest": obj{"type": "object", "additionalProperties": false,
			"properties": obj{"message": obj{"type": "string", "maxLength": 1000}}},
		"Ping": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "status": obj{"type": "string"}, "workflow_id": obj{"type": "string"},
			"run_id": obj{"type": "string"}, "message": obj{"type": "string"}, "row_written": obj{"type": "boolean"},
			"key_written": obj{"type": "boolean"}, "written_at": ts}},
		"KeyCreate": obj{"type": "object", "additionalProperties": false, "required": []string{"name", "scopes"},
			"properties": obj{
				"principal":  obj{"type": "string", "description": "defaults to the caller's; another principal needs admin"},
				"name":       obj{"type": "string", "minLength": 1, "maxLength": 100},
				"scopes":     obj{"type": "array", "minItems": 1, "items": obj{"type": "string"}},
				"expires_at": nullableTS}},
		"Key": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "principal": obj{"type": "string"}, "name": obj{"type": "string"},
			"scopes":     obj{"type": "array", "items": obj{"type": "string"}},
			"secret":     obj{"type": "string", "description": "only in the response that created the key"},
			"created_at": ts, "expires_at": nullableTS, "last_used_at": nullableTS, "revoked_at": nullableTS}},
	}
}

// OpenAPI returns the document served at /openapi.json.
func OpenAPI(baseURL string) map[string]any {
	ps := obj{}
	for path, methods := range withScalingPaths(withSLOPaths(withDrillPaths(withFlagPaths(withJobPaths(paths()))))) {
		item := obj{}
		for method, op := range methods {
			item[method] = op.build(method + strings.NewReplacer("/", "_", "{", "", "}", "").Replace(path))
		}
		ps[path] = item
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "platform API", "version": "1",
			"description": "Workflow-orchestrated operations platform. Errors are RFC 9457 problem documents; " +
				"Idempotency-Key records are kept 24 hours; lists are cursor-paginated."},
		"servers": []obj{{"url": baseURL}},
		"paths":   ps,
		"components": obj{
			"schemas":         withScalingSchemas(withSLOSchemas(withDrillSchemas(withFlagSchemas(withJobSchemas(schemas()))))),
			"securitySchemes": obj{"apiKey": obj{"type": "http", "scheme": "bearer", "bearerFormat": "plk_…"}},
		},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	return web.WriteJSON(w, http.StatusOK, s.openapi)
}
