package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/platform/workflows/drill"
)

// rejoinTimeout bounds the wait for the old leader to stream from the new
// one: Patroni restarts it as a replica (rewinding it if it must) within
// a few loop_waits.
const rejoinTimeout = 90 * time.Second

// CheckPatroni finds the Patroni cluster's leader and the replica a
// switchover would go to, checks that the platform's database (the
// read-write host of PLATFORM_DATABASE_URL) belongs to that cluster (same
// database system identifier) and that the candidate streams from it, and
// measures the candidate's lag on the leader's pg_stat_replication
// (Patroni's /cluster says "running", not whether a replica streams).
func (a *Activities) CheckPatroni(ctx context.Context) (drill.ReplicationResult, error) {
	var res drill.ReplicationResult
	p, err := a.patroni()
	if err != nil {
		return res, err
	}
	c, err := p.cluster(ctx)
	if err != nil {
		return res, err
	}
	leader, candidate, err := switchoverPair(c)
	if err != nil {
		return res, err
	}
	sysid, err := p.systemID(ctx)
	if err != nil {
		return res, err
	}
	pool, err := a.heartbeatPool(ctx)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	var ours, state string
	err = poolQuery(pool)(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT (SELECT system_identifier::text FROM pg_control_system()),
			coalesce((SELECT state || ' ' || sync_state FROM pg_stat_replication WHERE application_name = $1 LIMIT 1), ''),
			coalesce((SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 FROM pg_stat_replication WHERE application_name = $1 LIMIT 1), 0),
			coalesce((SELECT extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = $1 LIMIT 1), 0)`,
			candidate.Name).Scan(&ours, &state, &res.LagBytes, &res.LagSeconds)
	})
	if err != nil {
		return res, fmt.Errorf("read replication on the platform's read-write database: %w", err)
	}
	if ours != sysid {
		return res, noStandby(fmt.Sprintf("PLATFORM_DATABASE_URL's read-write database (system %s) is not in the Patroni cluster of PLATFORM_DRILL_PATRONI_URL (system %s)", ours, sysid))
	}
	if len(state) < 10 || state[:10] != "streaming " {
		return res, noStandby(fmt.Sprintf("the leader %s shows no streaming replica %s in pg_stat_replication (%q)", leader.Name, candidate.Name, state))
	}
	res.Primary, res.Standby, res.SyncState = leader.Name, candidate.Name, candidate.Name+" "+state[10:]
	return res, nil
}

// switchoverPair returns the leader and the candidate of c, or why the
// cluster is not fit for a drill.
func switchoverPair(c patroniCluster) (patroniMember, patroniMember, error) {
	leader, ok := c.leader()
	switch {
	case c.Pause:
		return leader, patroniMember{}, noStandby("the Patroni cluster is paused (maintenance mode)")
	case len(c.Scheduled) > 0 && string(c.Scheduled) != "null":
		return leader, patroniMember{}, noStandby("the Patroni cluster already has a scheduled switchover")
	case !ok:
		return leader, patroniMember{}, noStandby("the Patroni cluster has no leader")
	}
	candidate, ok := c.candidate()
	if !ok {
		return leader, candidate, noStandby(fmt.Sprintf("the Patroni cluster has no running replica fit to lead (%d members)", len(c.Members)))
	}
	return leader, candidate, nil
}

// failoverPatroni is the patroni driver: heartbeats through the
// platform's read-write pool, POST /switchover from the leader to the
// candidate (Patroni demotes the leader cleanly and promotes the
// candidate: the drill never fences or promotes around it), then the
// first write on the new leader, the RPO check there, and the old leader
// streaming from the new one again. The cluster is left switched over: a
// planned switchover is the drill, and switching back would cost the
// platform a second write outage. Only when the platform cannot write
// after the switchover does the drill switch back.
func (a *Activities) failoverPatroni(ctx context.Context, in drill.FailoverInput) (drill.FailoverResult, error) {
	var res drill.FailoverResult
	p, err := a.patroni()
	if err != nil {
		return res, err
	}
	defer keepAlive(ctx)()
	pool, err := a.heartbeatPool(ctx)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	hb, stop := startHeartbeats(ctx, pool, in)
	defer stop()
	if hb.waitAcks(ctx, steadyBeats, time.Now().Add(10*time.Second)) == 0 {
		return res, stopped("no heartbeat write succeeded before the switchover", ctx.Err())
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	crit, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(in.MaxUnavailable)*time.Second+3*time.Minute)
	defer cancel()
	if err := a.patroniSwitchover(crit, p, hb, in, &res); err != nil {
		return res, err
	}
	stop()
	if err := hb.lost(crit, poolQuery(pool), &res); err != nil {
		return res, err
	}
	if err := rejoined(crit, poolQuery(pool), in.Primary, time.Now().Add(rejoinTimeout)); err != nil {
		return res, stopped(fmt.Sprintf("%s leads and takes writes, but the old leader did not rejoin: see docs/runbooks/dr.md", in.Standby), err)
	}
	if _, err := pool.Exec(crit, `DELETE FROM drill_heartbeats WHERE drill_id = $1`, in.DrillID); err != nil {
		a.Log.Warn("failover drill heartbeats not deleted", "drill", in.DrillID, "error", err)
	}
	return res, nil
}

// patroniSwitchover asks Patroni for the switchover and waits for a write
// started after Patroni's answer to succeed. RTO is the longest time
// without an acknowledged write from the request to that write (Patroni
// checkpoints before it demotes, so the time from the request alone would
// count seconds in which the old leader still took writes).
func (a *Activities) patroniSwitchover(ctx context.Context, p *patroniClient, hb *heartbeats, in drill.FailoverInput, res *drill.FailoverResult) error {
	res.FencedAt = time.Now().UTC()
	deadline := res.FencedAt.Add(time.Duration(in.MaxUnavailable) * time.Second)
	sctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	err := p.switchover(sctx, in.Primary, in.Standby)
	cancel()
	if err == nil {
		res.PromotedAt = time.Now().UTC()
		first, ok := hb.waitWrite(ctx, res.PromotedAt, deadline)
		if ok {
			res.NewPrimary, res.FirstWriteAt = in.Standby, first.end
			res.RTOSeconds = hb.longestGap(res.FencedAt, first.end).Seconds()
			hb.waitAcks(ctx, hb.acked()+steadyBeats, time.Now().Add(10*time.Second))
			return nil
		}
		err = fmt.Errorf("%w within %d s of the switchover request", errNoWrite, in.MaxUnavailable)
	}
	return stopped("switchover stopped: "+a.patroniRecover(ctx, p, hb, in), err)
}

// patroniRecover leaves the cluster with a leader the platform can write
// to after a failed switchover, and says what it found and did. Patroni
// elects leaders; the drill only reads /cluster and, when the candidate
// took over but the platform still cannot write through
// PLATFORM_DATABASE_URL, asks Patroni to switch back.
func (a *Activities) patroniRecover(ctx context.Context, p *patroniClient, hb *heartbeats, in drill.FailoverInput) string {
	var leader patroniMember
	var found bool
	for end := time.Now().Add(60 * time.Second); !found && time.Now().Before(end); {
		if c, err := p.cluster(ctx); err == nil {
			leader, found = c.leader()
		}
		if !found {
			time.Sleep(time.Second)
		}
	}
	since := time.Now()
	switch {
	case !found:
		a.Log.Error("failover drill left a Patroni cluster without a leader", "drill", in.DrillID)
		return "THE PATRONI CLUSTER HAS NO LEADER after 60 s: check patronictl list; see docs/runbooks/dr.md"
	case leader.Name == in.Primary:
		if _, ok := hb.waitWrite(ctx, since, time.Now().Add(30*time.Second)); ok {
			return fmt.Sprintf("%s still leads (the switchover did not happen) and takes writes", in.Primary)
		}
		return fmt.Sprintf("%s still leads (the switchover did not happen) but the platform cannot write to it", in.Primary)
	case leader.Name != in.Standby:
		return fmt.Sprintf("%s leads now, neither %s nor %s", leader.Name, in.Primary, in.Standby)
	}
	if _, ok := hb.waitWrite(ctx, since, time.Now().Add(5*time.Second)); ok {
		return fmt.Sprintf("%s leads and takes writes, but too late", in.Standby)
	}
	if err := switchBack(ctx, p, in); err != nil {
		a.Log.Error("failover drill could not switch back", "drill", in.DrillID, "error", err)
		return fmt.Sprintf("%s leads but the platform cannot write to it (does PLATFORM_DATABASE_URL name it?), and the switch back failed: %v", in.Standby, err)
	}
	if _, ok := hb.waitWrite(ctx, time.Now(), time.Now().Add(30*time.Second)); ok {
		return fmt.Sprintf("%s led but the platform could not write to it (does PLATFORM_DATABASE_URL name it?): switched back to %s, which takes writes", in.Standby, in.Primary)
	}
	return fmt.Sprintf("%s led but the platform could not write to it: switched back to %s, which takes no writes either", in.Standby, in.Primary)
}

// switchBack asks Patroni to move the leader back to the old leader once
// it runs as a replica again (Patroni refuses a candidate that does not).
func switchBack(ctx context.Context, p *patroniClient, in drill.FailoverInput) error {
	err := fmt.Errorf("%s did not run as a replica within %s", in.Primary, rejoinTimeout)
	for end := time.Now().Add(rejoinTimeout); time.Now().Before(end); time.Sleep(2 * time.Second) {
		c, cerr := p.cluster(ctx)
		if cerr != nil {
			continue
		}
		if m, ok := c.member(in.Primary); !ok || !healthyReplica(m) {
			continue
		}
		if err = p.switchover(ctx, in.Standby, in.Primary); err == nil {
			return nil
		}
	}
	return err
}

// rejoined waits until the server behind query (the new leader) shows
// member streaming in pg_stat_replication.
func rejoined(ctx context.Context, query connFunc, member string, deadline time.Time) error {
	for {
		var state string
		err := query(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT coalesce((SELECT state FROM pg_stat_replication WHERE application_name = $1 LIMIT 1), '')`, member).Scan(&state)
		})
		switch {
		case err == nil && state == "streaming":
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%s is not streaming from the new leader after %s (state %q, last error %v)", member, rejoinTimeout, state, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// longestGap is the longest time without an acknowledged write between
// from and to: from from to the first acknowledgement after it, and
// between consecutive acknowledgements up to to.
func (h *heartbeats) longestGap(from, to time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return longestGap(h.beats, from, to)
}

func longestGap(beats []beat, from, to time.Time) time.Duration {
	var longest time.Duration
	prev := from
	for _, b := range beats {
		if !b.ok || !b.end.After(prev) || b.end.After(to) {
			continue
		}
		longest = max(longest, b.end.Sub(prev))
		prev = b.end
	}
	return longest
}
