// Package ping is the API's end-to-end probe: POST /v1/ping starts the
// platform.ping workflow, which writes a row to Postgres and a key to Redis;
// GET /v1/ping/{id} shows the workflow's status and both writes. Any valid
// key may ping; a ping belongs to its principal, and another principal's
// ping is not found.
package ping

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/validation"
	"github.com/acme/platform/workflows/ping"
)

// Deps holds what the ping handlers use.
type Deps struct {
	DB        *pgxpool.Pool
	Redis     goredis.UniversalClient
	Keys      redis.Keys
	Temporal  client.Client
	TaskQueue string
	// Protect wraps a handler with authentication, rate limiting and
	// idempotency; the ping needs any valid key.
	Protect func(scope string, h http.Handler) http.Handler
}

// Routes registers the ping routes on r.
func Routes(r *mux.Router, d Deps) {
	h := &handlers{d}
	r.Handle("/v1/ping", d.Protect("", web.HandlerFunc(h.create))).Methods(http.MethodPost)
	r.Handle("/v1/ping/{id}", d.Protect("", web.HandlerFunc(h.get))).Methods(http.MethodGet, http.MethodHead)
}

type handlers struct{ Deps }

type createRequest struct {
	Message string `json:"message"`
}

type pingView struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	WorkflowID string     `json:"workflow_id"`
	RunID      string     `json:"run_id,omitempty"`
	Message    string     `json:"message,omitempty"`
	RowWritten bool       `json:"row_written"`
	KeyWritten bool       `json:"key_written"`
	WrittenAt  *time.Time `json:"written_at,omitempty"`
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if r.ContentLength != 0 {
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	if len(req.Message) > 1000 {
		return problem.Validation(validation.FieldError{Pointer: "#/message", Code: "too_long", Detail: "must be at most 1000 characters"})
	}
	if req.Message == "" {
		req.Message = "pong"
	}
	caller, _ := auth.FromContext(r.Context())
	id := idempotency.ResourceID(r.Context(), ids.Ping)
	run, err := h.Temporal.ExecuteWorkflow(r.Context(), client.StartWorkflowOptions{
		ID:                    ping.WorkflowID(id),
		TaskQueue:             h.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		Memo:                  map[string]any{ping.MemoPrincipal: caller.Name},
	}, ping.Name, ping.Input{ID: id, Message: req.Message, Principal: caller.Name})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return problem.Newf(problem.Conflict, "ping %s was already started under this Idempotency-Key", id)
	}
	if err != nil {
		return problem.UnavailableAfter(2, "could not start the ping workflow", err)
	}
	w.Header().Set("Location", "/v1/ping/"+id)
	return web.WriteJSON(w, http.StatusAccepted, pingView{ID: id, Status: "running",
		WorkflowID: run.GetID(), RunID: run.GetRunID(), Message: req.Message})
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	caller, _ := auth.FromContext(r.Context())
	id := mux.Vars(r)["id"]
	notFound := problem.Newf(problem.NotFound, "no ping %q", id)
	if !ids.HasPrefix(id, ids.Ping) {
		return notFound
	}
	desc, err := h.Temporal.DescribeWorkflow(r.Context(), ping.WorkflowID(id), "")
	var missing *serviceerror.NotFound
	if errors.As(err, &missing) {
		return notFound
	}
	if err != nil {
		return problem.UnavailableAfter(2, "could not read the ping workflow", err)
	}
	owner, known := memoOwner(desc)
	info := desc.RawResponse.GetWorkflowExecutionInfo()
	v := pingView{ID: id, WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId(),
		Status: statusName(info.GetStatus())}
	var at time.Time
	var rowOwner string
	err = h.DB.QueryRow(r.Context(), `SELECT message, created_at, principal FROM pings WHERE id = $1`, id).Scan(&v.Message, &at, &rowOwner)
	switch {
	case err == nil:
		v.RowWritten, v.WrittenAt = true, &at
		if !known {
			owner = rowOwner
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	if !caller.CanSee(owner) {
		return notFound // never reveal another principal's ping
	}
	n, err := h.Redis.Exists(r.Context(), h.Keys.Key("ping", id)).Result()
	if err != nil {
		return problem.UnavailableAfter(2, "could not read Redis", err)
	}
	v.KeyWritten = n == 1
	return web.WriteJSON(w, http.StatusOK, v)
}

// memoOwner reads the ping's owner from its workflow's memo; a ping
// started without one (before owners, or from the Temporal UI) has none.
func memoOwner(desc *client.WorkflowExecutionDescription) (string, bool) {
	p, ok := desc.Memo.GetFields()[ping.MemoPrincipal]
	if !ok {
		return "", false
	}
	var owner string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &owner); err != nil {
		return "", false
	}
	return owner, true
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed_out"
	}
	return "unknown"
}
