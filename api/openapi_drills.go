package api

import (
	"maps"
	"strings"

	"github.com/acme/platform/drills"
	"github.com/acme/platform/drills/chart"
)

// The OpenAPI description of the disaster-recovery routes (drills and
// backups), merged into the document by OpenAPI.

func withDrillPaths(ps map[string]map[string]operation) map[string]map[string]operation {
	maps.Copy(ps, drillPaths())
	return ps
}

func withDrillSchemas(s obj) obj {
	maps.Copy(s, drillSchemas())
	return s
}

var drillStatuses = []string{drills.Queued, drills.Running, drills.Succeeded, drills.Failed, drills.Aborted}

func drillPaths() map[string]map[string]operation {
	drillID := pathParam("id", "drl_…, or any workflow id of a platform.drill run")
	return map[string]map[string]operation{
		"/v1/drills": {
			"post": {summary: "Start a disaster-recovery drill (backup, restore_verify, failover, cache_loss) on the platform's control task queue", scope: "drills:run",
				params: []obj{idempotencyKeyParam}, body: jsonBody(ref("DrillCreate")),
				responses: map[string]obj{"201": jsonResponse("the drill, queued", ref("Drill"))},
				errors:    []string{"400", "413", "415", "422"}},
			"get": {summary: "List drills, newest first", scope: "drills:read",
				params: append([]obj{
					queryParam("scenario", "only drills of this scenario", obj{"type": "string", "enum": drills.Scenarios}),
					queryParam("status", "only drills in this status", obj{"type": "string", "enum": drillStatuses}),
					queryParam("principal", "admin only: drills of one principal (default: all)", obj{"type": "string"}),
				}, pageParams...),
				responses: map[string]obj{"200": jsonResponse("a page of drills", listOf(ref("Drill")))}, errors: []string{"400"}},
		},
		"/v1/drills/{id}": {"get": {summary: "Get a drill: status, verdict, objectives, measurements and timeline", scope: "drills:read",
			params: []obj{drillID}, responses: map[string]obj{"200": jsonResponse("the drill", ref("Drill"))}, errors: []string{"404"}}},
		"/v1/drills/{id}/report": {"get": {summary: "The drill's postmortem draft in Markdown", scope: "drills:read",
			params: []obj{drillID}, responses: map[string]obj{"200": obj{"description": "the report",
				"content": obj{"text/markdown": obj{"schema": obj{"type": "string"}}}}}, errors: []string{"404"}}},
		"/v1/drills/{id}/charts/{name}": {"get": {summary: "A load experiment's chart as SVG: latency p50/p90/p99 and error rate against offered rate for one endpoint class, its p99 bound and knee marked", scope: "drills:read",
			params: []obj{drillID, pathParam("name", "an endpoint class: "+strings.Join(chart.Names, ", "))},
			responses: map[string]obj{"200": obj{"description": "the chart",
				"content": obj{"image/svg+xml": obj{"schema": obj{"type": "string"}}}}}, errors: []string{"404"}}},
		"/v1/drills/{id}/abort": {"post": {summary: "Abort a drill: its step stops, scratch targets are removed, it ends aborted", scope: "drills:run",
			params: []obj{drillID, idempotencyKeyParam}, responses: map[string]obj{"202": jsonResponse("abort accepted", ref("Drill"))},
			errors: []string{"400", "404", "409"}}},
		"/v1/backups": {"get": {summary: "List complete backups (their manifests), newest first", scope: "drills:read",
			params: pageParams, responses: map[string]obj{"200": jsonResponse("a page of manifests", listOf(ref("BackupManifest")))},
			errors: []string{"400", "503"}}},
		"/v1/backups/{id}": {"get": {summary: "Get a backup's manifest", scope: "drills:read",
			params: []obj{pathParam("id", "bkp_…")}, responses: map[string]obj{"200": jsonResponse("the manifest", ref("BackupManifest"))},
			errors: []string{"404", "503"}}},
	}
}

func drillSchemas() obj {
	ts := obj{"type": "string", "format": "date-time"}
	nullableTS := obj{"type": []string{"string", "null"}, "format": "date-time"}
	objectives := obj{"type": "object", "properties": obj{
		"rto_seconds": obj{"type": "number", "minimum": 0}, "rpo_seconds": obj{"type": "number", "minimum": 0}}}
	return obj{
		"DrillCreate": obj{"type": "object", "required": []string{"scenario"}, "additionalProperties": false, "properties": obj{
			"scenario":   obj{"type": "string", "enum": drills.Scenarios},
			"objectives": objectives,
			"params": obj{"type": "object", "description": "restore_verify: backup_id (default the newest backup); " +
				"failover: driver (sql, patroni or dry_run, required; patroni needs the server's PLATFORM_DRILL_PATRONI_URL, else 400), " +
				"max_unavailable_seconds (30), heartbeat_interval_ms (100); " +
				"cache_loss: mode (flush or pause), duration_seconds (10), rate_per_second (20), pause_seconds (3). " +
				"Unknown fields are refused."},
		}},
		"Drill": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "scenario": obj{"type": "string"},
			"status":       obj{"type": "string", "enum": drillStatuses},
			"verdict":      obj{"type": []string{"string", "null"}, "enum": []any{drills.Met, drills.Missed, nil}},
			"reasons":      obj{"type": "array", "items": obj{"type": "string"}},
			"objectives":   objectives,
			"measurements": obj{"type": "object", "additionalProperties": obj{"type": "number"}},
			"timeline": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
				"name": obj{"type": "string"}, "status": obj{"type": "string"}, "started_at": ts,
				"finished_at": nullableTS, "detail": obj{"type": "string"}}}},
			"backup_id": obj{"type": []string{"string", "null"}}, "principal": obj{"type": "string"},
			"workflow": obj{"type": "object", "properties": obj{
				"id": obj{"type": "string"}, "run_id": obj{"type": "string"}, "url": obj{"type": "string", "format": "uri"}}},
			"created_at": ts, "started_at": nullableTS, "finished_at": nullableTS,
		}},
		"BackupManifest": obj{"type": "object", "properties": obj{
			"id": obj{"type": "string"}, "created_at": ts, "snapshot_time": ts,
			"postgres": obj{"type": "object", "properties": obj{
				"database": obj{"type": "string"}, "server_version": obj{"type": "string"},
				"schema_version": obj{"type": "integer"}, "wal_lsn": obj{"type": "string"},
				"tables": obj{"type": "object", "additionalProperties": obj{"type": "integer"}}}},
			"redis": obj{"type": "object", "properties": obj{
				"server_version": obj{"type": "string"}, "keys": obj{"type": "integer"}, "db": obj{"type": "integer"}}},
			"artefacts": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
				"name": obj{"type": "string"}, "kind": obj{"type": "string"}, "size": obj{"type": "integer"},
				"sha256": obj{"type": "string"}}}},
			"durations": obj{"type": "object", "additionalProperties": obj{"type": "number"}},
		}},
	}
}
