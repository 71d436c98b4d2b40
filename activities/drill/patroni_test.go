package drill

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/platform/internal/config"
)

func TestSwitchoverPair(t *testing.T) {
	member := func(name, role, state, lag string) patroniMember {
		return patroniMember{Name: name, Role: role, State: state, Lag: json.RawMessage(lag)}
	}
	nofailover := member("n9", "replica", "running", "0")
	nofailover.Tags = map[string]any{"nofailover": true}
	tests := []struct {
		name      string
		c         patroniCluster
		candidate string // empty: refused
	}{
		{"one replica", patroniCluster{Members: []patroniMember{member("n1", "leader", "running", ""), member("n2", "replica", "running", "0")}}, "n2"},
		{"the sync standby before a closer replica", patroniCluster{Members: []patroniMember{member("n1", "leader", "running", ""),
			member("n2", "replica", "running", "0"), member("n3", "sync_standby", "running", "4096")}}, "n3"},
		{"the least lag", patroniCluster{Members: []patroniMember{member("n1", "leader", "running", ""),
			member("n2", "replica", "streaming", "900"), member("n3", "replica", "running", "100")}}, "n3"},
		{"no replica fit to lead", patroniCluster{Members: []patroniMember{member("n1", "leader", "running", ""),
			member("n2", "replica", "starting", "0"), member("n3", "replica", "running", `"unknown"`), nofailover}}, ""},
		{"no leader", patroniCluster{Members: []patroniMember{member("n2", "replica", "running", "0")}}, ""},
		{"paused", patroniCluster{Pause: true, Members: []patroniMember{member("n1", "leader", "running", ""), member("n2", "replica", "running", "0")}}, ""},
		{"a switchover already scheduled", patroniCluster{Scheduled: json.RawMessage(`{"at":"2026-12-02T03:00:00+00:00"}`),
			Members: []patroniMember{member("n1", "leader", "running", ""), member("n2", "replica", "running", "0")}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader, candidate, err := switchoverPair(tt.c)
			if tt.candidate == "" {
				var app *temporal.ApplicationError
				if !errors.As(err, &app) || !app.NonRetryable() {
					t.Fatalf("err = %v, want a non-retryable refusal", err)
				}
				return
			}
			if err != nil || leader.Name != "n1" || candidate.Name != tt.candidate {
				t.Fatalf("pair = %s, %s, %v; want n1, %s", leader.Name, candidate.Name, err, tt.candidate)
			}
		})
	}
}

func TestLongestGap(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ack := func(seq int64, end int) beat { return beat{seq: seq, start: at(end - 5), end: at(end), ok: true} }
	beats := []beat{ack(1, -50), ack(2, 50), ack(3, 150), {seq: 4, start: at(200), end: at(2200)}, ack(5, 1900), ack(6, 2000), ack(7, 2100)}
	if got, want := longestGap(beats, at(0), at(2000)), 1750*time.Millisecond; got != want {
		t.Errorf("gap = %s, want %s", got, want)
	}
	if got, want := longestGap(beats, at(0), at(100)), 50*time.Millisecond; got != want {
		t.Errorf("gap before the outage = %s, want %s", got, want)
	}
}

// TestPatroniClient_SwitchoverNamesLeaderAndCandidate: the request is the
// one Patroni 3.0.2 needs, with the URL's basic auth; a refusal is an
// error that carries Patroni's answer.
func TestPatroniClient_SwitchoverNamesLeaderAndCandidate(t *testing.T) {
	var got map[string]string
	var user, pass string
	refuse := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/switchover" {
			http.NotFound(w, r)
			return
		}
		user, pass, _ = r.BasicAuth()
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &got)
		if refuse {
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = w.Write([]byte("leader name does not match"))
			return
		}
		_, _ = w.Write([]byte(`Successfully switched over to "n2"`))
	}))
	defer srv.Close()
	a := &Activities{Config: config.Config{DrillPatroniURL: strings.Replace(srv.URL, "http://", "http://patroni:s3cret@", 1)}}
	p, err := a.patroni()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.switchover(context.Background(), "n1", "n2"); err != nil {
		t.Fatal(err)
	}
	if got["leader"] != "n1" || got["candidate"] != "n2" || user != "patroni" || pass != "s3cret" {
		t.Errorf("request = %v as %s:%s", got, user, pass)
	}
	refuse = true
	if err := p.switchover(context.Background(), "n1", "n2"); err == nil || !strings.Contains(err.Error(), "412 leader name does not match") {
		t.Errorf("refusal = %v", err)
	}
}

func TestPatroni_NeedsTheServerURL(t *testing.T) {
	_, err := (&Activities{}).patroni()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), "PLATFORM_DRILL_PATRONI_URL") {
		t.Errorf("err = %v", err)
	}
}
