package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// patroniRequestTimeout bounds a read of the Patroni REST API; a
// switchover request is bounded by the drill's own deadline instead.
const patroniRequestTimeout = 5 * time.Second

// patroniClient talks to the Patroni REST API of PLATFORM_DRILL_PATRONI_URL
// (basic-auth userinfo in that URL is sent as Authorization).
type patroniClient struct {
	base string
	http *http.Client
}

// patroni returns the client of the configured Patroni REST API, or a
// non-retryable error when there is none.
func (a *Activities) patroni() (*patroniClient, error) {
	if a.Config.DrillPatroniURL == "" {
		return nil, temporal.NewNonRetryableApplicationError(
			"the patroni driver needs PLATFORM_DRILL_PATRONI_URL, which this worker does not have", "BadConfig", nil)
	}
	return &patroniClient{base: a.Config.DrillPatroniURL, http: &http.Client{}}, nil
}

// patroniMember is one member of GET /cluster.
type patroniMember struct {
	Name  string          `json:"name"`
	Role  string          `json:"role"`  // leader, standby_leader, sync_standby, replica
	State string          `json:"state"` // running (3.0.2), streaming (later versions), …
	Host  string          `json:"host"`
	Port  int             `json:"port"`
	Lag   json.RawMessage `json:"lag"` // bytes, or "unknown"
	Tags  map[string]any  `json:"tags"`
}

// patroniCluster is GET /cluster.
type patroniCluster struct {
	Members   []patroniMember `json:"members"`
	Pause     bool            `json:"pause"`
	Scheduled json.RawMessage `json:"scheduled_switchover"`
}

// leader returns the member that holds the leader lock, if any.
func (c patroniCluster) leader() (patroniMember, bool) {
	for _, m := range c.Members {
		if m.Role == "leader" {
			return m, true
		}
	}
	return patroniMember{}, false
}

// member returns the member called name.
func (c patroniCluster) member(name string) (patroniMember, bool) {
	for _, m := range c.Members {
		if m.Name == name {
			return m, true
		}
	}
	return patroniMember{}, false
}

// candidate picks the replica a switchover goes to: running, with a known
// lag, not tagged nofailover; a synchronous standby first (Patroni accepts
// no other in synchronous mode), then the least lag, then the name.
func (c patroniCluster) candidate() (patroniMember, bool) {
	var best []patroniMember
	for _, m := range c.Members {
		if (m.Role == "replica" || m.Role == "sync_standby") && healthyReplica(m) {
			best = append(best, m)
		}
	}
	if len(best) == 0 {
		return patroniMember{}, false
	}
	slices.SortStableFunc(best, func(x, y patroniMember) int {
		if (x.Role == "sync_standby") != (y.Role == "sync_standby") {
			if x.Role == "sync_standby" {
				return -1
			}
			return 1
		}
		if lx, ly := lagBytes(x), lagBytes(y); lx != ly {
			if lx < ly {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	return best[0], true
}

func healthyReplica(m patroniMember) bool {
	if m.State != "running" && m.State != "streaming" {
		return false
	}
	if v, ok := m.Tags["nofailover"].(bool); ok && v {
		return false
	}
	return lagBytes(m) >= 0
}

// lagBytes is the member's lag, or -1 when Patroni does not know it.
func lagBytes(m patroniMember) float64 {
	var n float64
	if json.Unmarshal(m.Lag, &n) != nil {
		return -1
	}
	return n
}

// cluster reads GET /cluster.
func (p *patroniClient) cluster(ctx context.Context) (patroniCluster, error) {
	var c patroniCluster
	return c, p.getJSON(ctx, "/cluster", &c)
}

// systemID reads the database system identifier of the member that
// answers GET /patroni: every member of one cluster shares it.
func (p *patroniClient) systemID(ctx context.Context) (string, error) {
	var st struct {
		SystemID string `json:"database_system_identifier"`
	}
	if err := p.getJSON(ctx, "/patroni", &st); err != nil {
		return "", err
	}
	if st.SystemID == "" {
		return "", errors.New("GET /patroni shows no database_system_identifier (is its PostgreSQL running?)")
	}
	return st.SystemID, nil
}

func (p *patroniClient) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, patroniRequestTimeout)
	defer cancel()
	status, body, err := p.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("patroni GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return fmt.Errorf("patroni GET %s: %w", path, err)
	}
	return nil
}

// switchover asks Patroni to move the leader lock from leader to
// candidate. Patroni answers when the candidate holds it (200), or
// refuses: 412 when the leader is no longer the leader or the candidate
// is not fit, 503 when the switchover failed or its outcome is unknown.
func (p *patroniClient) switchover(ctx context.Context, leader, candidate string) error {
	body, _ := json.Marshal(map[string]string{"leader": leader, "candidate": candidate})
	status, answer, err := p.do(ctx, http.MethodPost, "/switchover", body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("patroni refused the switchover from %s to %s: %d %s", leader, candidate, status, answer)
	}
	return nil
}

// do sends one request and returns the status and up to 64 KiB of body
// (Patroni's answers are small).
func (p *patroniClient) do(ctx context.Context, method, path string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("patroni %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, "", err // a *url.Error: net/http masks the URL's password in it
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, "", fmt.Errorf("patroni %s %s: %w", method, path, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(data)), nil
}
