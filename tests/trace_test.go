package tests

import (
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// TestTrace_ContinuesIntoWorkflowAndActivities sends a traceparent with a
// request that starts a workflow: the trace id reaches the workflow's start
// event and the activity it schedules, through the tracing interceptor.
func TestTrace_ContinuesIntoWorkflowAndActivities(t *testing.T) {
	s := newStack(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	res := s.do("POST", "/v1/ping", map[string]string{"message": "traced"},
		with(bearer(s.key("ops", "admin")), []string{"traceparent", "00-" + traceID + "-00f067aa0ba902b7-01"})...)
	if res.Status != 202 || res.Header.Get("X-Trace-Id") != traceID {
		t.Fatalf("status %d, X-Trace-Id %q", res.Status, res.Header.Get("X-Trace-Id"))
	}
	var started struct{ ID string }
	res.JSON(t, &started)
	var startHeader, activityHeader string
	eventually(t, 20*time.Second, "the ping's activity to be scheduled", func() bool {
		iter := s.Temporal.GetWorkflowHistory(t.Context(), started.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				return false
			}
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				startHeader = string(a.GetHeader().GetFields()["_tracer-data"].GetData())
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				activityHeader = string(a.GetHeader().GetFields()["_tracer-data"].GetData())
			}
		}
		return activityHeader != ""
	})
	if !strings.Contains(startHeader, traceID) {
		t.Errorf("workflow start header %q lacks trace %s", startHeader, traceID)
	}
	if !strings.Contains(activityHeader, traceID) {
		t.Errorf("activity header %q lacks trace %s", activityHeader, traceID)
	}
}
