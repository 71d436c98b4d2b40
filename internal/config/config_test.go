package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad_DefaultsWorkOnThisMachine(t *testing.T) {
	c, err := load(nil, lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"database": {c.DatabaseURL, "postgres://postgres@127.0.0.1:5432/platform?sslmode=disable"},
		"redis":    {c.RedisURL, "redis://127.0.0.1:6379/0"},
		"temporal": {c.TemporalAddress, "127.0.0.1:7233"},
		"ns":       {c.TemporalNamespace, "default"},
		"http":     {c.HTTPAddr, ":8080"},
	}
	for name, got := range checks {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", name, got[0], got[1])
		}
	}
	if c.ControlTaskQueue != "platform-control" || c.WorkerControlMaxActivities != 50 ||
		c.WebhookMaxInFlightPerPrincipal != 16 || c.WebhookRatePerPrincipal != (Rate{20, time.Second}) {
		t.Errorf("control queue and webhook limits = %q %d %d %v", c.ControlTaskQueue, c.WorkerControlMaxActivities,
			c.WebhookMaxInFlightPerPrincipal, c.WebhookRatePerPrincipal)
	}
	if c.RateLimitWrite != (Rate{300, time.Minute}) || c.DrainTimeout != 15*time.Second {
		t.Errorf("rate/drain defaults = %v, %v", c.RateLimitWrite, c.DrainTimeout)
	}
}

func TestLoad_BackupDefaults(t *testing.T) {
	c, err := load(nil, lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.BackupURL != DefaultBackupURL || c.BackupRetention != 14 || c.PGBinDir != "" ||
		c.RedisServerBin != "redis-server" || c.RedisCLIBin != "redis-cli" || c.DrillScratchDir != "" {
		t.Errorf("backup defaults = %q %d %q %q %q %q", c.BackupURL, c.BackupRetention, c.PGBinDir,
			c.RedisServerBin, c.RedisCLIBin, c.DrillScratchDir)
	}
}

func TestLoad_FlagOverridesEnvOverridesDefault(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--http-addr=:9999"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PLATFORM_HTTP_ADDR": ":7777", "PLATFORM_TEMPORAL_NAMESPACE": "ops"}
	c, err := load(fs, lookupFrom(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9999" || c.TemporalNamespace != "ops" {
		t.Errorf("http=%q namespace=%q", c.HTTPAddr, c.TemporalNamespace)
	}
}

func TestLoad_InvalidValueNamesTheVariableOnOneLine(t *testing.T) {
	cases := map[string]string{
		"PLATFORM_DATABASE_URL":                        "mysql://x",
		"PLATFORM_REDIS_URL":                           "http://x",
		"PLATFORM_REDIS_PREFIX":                        "p{}:",
		"PLATFORM_DATABASE_DIRECT_URL":                 "mysql://x",
		"PLATFORM_TEMPORAL_ADDRESS":                    "nohost",
		"PLATFORM_DRAIN_TIMEOUT":                       "soon",
		"PLATFORM_RATE_LIMIT_WRITE":                    "300",
		"PLATFORM_TRACE_SAMPLE_RATIO":                  "2",
		"PLATFORM_LOG_LEVEL":                           "loud",
		"PLATFORM_SECRET_KEY":                          "short",
		"PLATFORM_DATABASE_MAX_CONNS":                  "0",
		"PLATFORM_BACKUP_URL":                          "ftp://x/backups",
		"PLATFORM_BACKUP_RETENTION":                    "0",
		"PLATFORM_REDIS_SERVER_BIN":                    "",
		"PLATFORM_CONTROL_TASK_QUEUE":                  "platform", // the jobs' queue: its slots are what it must stay out of
		"PLATFORM_WEBHOOK_MAX_IN_FLIGHT_PER_PRINCIPAL": "0",
		"PLATFORM_WEBHOOK_RATE_PER_PRINCIPAL":          "20000/1s",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := load(nil, lookupFrom(map[string]string{name: value}))
			if err == nil {
				t.Fatalf("%s=%q accepted", name, value)
			}
			msg := err.Error()
			if !strings.Contains(msg, name) || strings.Contains(msg, "\n") {
				t.Errorf("error %q does not name %s on one line", msg, name)
			}
		})
	}
}

func TestSessionDatabaseURL_PrefersTheDirectURL(t *testing.T) {
	c, err := load(nil, lookupFrom(map[string]string{"PLATFORM_DATABASE_URL": "postgres://bouncer:6432/p"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SessionDatabaseURL(); got != "postgres://bouncer:6432/p" {
		t.Errorf("without a direct URL: %q", got)
	}
	c, err = load(nil, lookupFrom(map[string]string{"PLATFORM_DATABASE_URL": "postgres://bouncer:6432/p",
		"PLATFORM_DATABASE_DIRECT_URL": "postgres://db:5432/p", "PLATFORM_REDIS_URL": "redis-sentinel://s1:26379,s2:26379/mymaster"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SessionDatabaseURL(); got != "postgres://db:5432/p" {
		t.Errorf("with a direct URL: %q", got)
	}
}

func TestLoad_InvalidFlagNamesTheFlag(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	_ = fs.Parse([]string{"--request-timeout=never"})
	_, err := load(fs, lookupFrom(nil))
	if err == nil || !strings.Contains(err.Error(), "--request-timeout") {
		t.Fatalf("err = %v", err)
	}
}

func TestLogValue_MasksPasswords(t *testing.T) {
	c, err := load(nil, lookupFrom(map[string]string{"PLATFORM_DATABASE_URL": "postgres://u:hunter2@db/x"}))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.LogValue().String(); strings.Contains(s, "hunter2") {
		t.Errorf("password visible in %s", s)
	}
}

// TestLogValue_MasksEveryPasswordForm covers the forms a password can take
// in a connection URL besides userinfo (security review L9).
func TestLogValue_MasksEveryPasswordForm(t *testing.T) {
	for _, url := range []string{
		"postgres://u@db/x?password=hunter2&sslmode=disable",
		"postgres://u@db/x?sslpassword=hunter2",
		"postgres://u:hunter2@db1:5432,db2:5432/x?target_session_attrs=read-write",
	} {
		c, err := load(nil, lookupFrom(map[string]string{"PLATFORM_DATABASE_URL": url}))
		if err != nil {
			t.Fatal(err)
		}
		if s := c.LogValue().String(); strings.Contains(s, "hunter2") {
			t.Errorf("password visible in %s", s)
		}
	}
}

// TestLoad_InvalidSecretIsNotEchoed: a secret key that fails validation is
// named but never shown, even when it looks like a URL (review L9).
func TestLoad_InvalidSecretIsNotEchoed(t *testing.T) {
	_, err := load(nil, lookupFrom(map[string]string{"PLATFORM_SECRET_KEY": "ab:hunter2"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "PLATFORM_SECRET_KEY") {
		t.Errorf("err = %v", err)
	}
}

// TestREADME_DocumentsEverySetting keeps the README's configuration table in
// step with the settings.
func TestREADME_DocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields() {
		row := "| `" + f.env + "` | `--" + f.flag + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README has no configuration row for %s / --%s", f.env, f.flag)
		}
	}
}

func TestLoad_OpsListenerAndShutdownDelay(t *testing.T) {
	c, err := load(nil, lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.OpsAddr != ":8082" || c.ShutdownDelay != 5*time.Second {
		t.Errorf("defaults: ops %q, delay %s", c.OpsAddr, c.ShutdownDelay)
	}
	c, err = load(nil, lookupFrom(map[string]string{"PLATFORM_OPS_ADDR": "127.0.0.1:9102", "PLATFORM_SHUTDOWN_DELAY": "0s"}))
	if err != nil || c.OpsAddr != "127.0.0.1:9102" || c.ShutdownDelay != 0 {
		t.Errorf("set: ops %q, delay %s, err %v", c.OpsAddr, c.ShutdownDelay, err)
	}
	if _, err := load(nil, lookupFrom(map[string]string{"PLATFORM_SHUTDOWN_DELAY": "-1s"})); err == nil {
		t.Error("a negative delay was accepted")
	}
}
func TestLoad_RetentionAndPrometheus(t *testing.T) {
	c, err := load(nil, lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	if c.RetentionUploads != 7*day || c.RetentionUsageEvents != 3*day || c.RetentionRolloutEvents != 30*day ||
		c.RetentionRolloutChecks != 30*day || c.RetentionFlagAudit != 365*day || c.PrometheusURL != "" {
		t.Errorf("defaults %v %v %v %v %v %q", c.RetentionUploads, c.RetentionUsageEvents, c.RetentionRolloutEvents,
			c.RetentionRolloutChecks, c.RetentionFlagAudit, c.PrometheusURL)
	}
	c, err = load(nil, lookupFrom(map[string]string{"PLATFORM_RETENTION_UPLOADS": "0", "PLATFORM_RETENTION_FLAG_AUDIT": "36h",
		"PLATFORM_PROMETHEUS_URL": "http://prom:9090/"}))
	if err != nil || c.RetentionUploads != 0 || c.RetentionFlagAudit != 36*time.Hour || c.PrometheusURL != "http://prom:9090" {
		t.Errorf("%v %v %q %v", c.RetentionUploads, c.RetentionFlagAudit, c.PrometheusURL, err)
	}
	for name, value := range map[string]string{
		"PLATFORM_RETENTION_USAGE_EVENTS":   "1d", // the daily roll-up may not have read them yet
		"PLATFORM_RETENTION_ROLLOUT_CHECKS": "6d",
		"PLATFORM_RETENTION_UPLOADS":        "-1h",
		"PLATFORM_RETENTION_FLAG_AUDIT":     "a year",
		"PLATFORM_PROMETHEUS_URL":           "http://prom:9090/#",
	} {
		if _, err := load(nil, lookupFrom(map[string]string{name: value})); err == nil {
			t.Errorf("%s=%q accepted", name, value)
		}
	}
}

func TestLoad_DrillAPIURL(t *testing.T) {
	c, err := load(nil, lookupFrom(nil))
	if err != nil || c.DrillAPIURL != "http://127.0.0.1:8080" {
		t.Fatalf("default %q, err %v", c.DrillAPIURL, err)
	}
	c, err = load(nil, lookupFrom(map[string]string{"PLATFORM_DRILL_API_URL": "https://api.internal:8443/"}))
	if err != nil || c.DrillAPIURL != "https://api.internal:8443" {
		t.Errorf("set: %q, err %v", c.DrillAPIURL, err)
	}
	for _, bad := range []string{"", "api.internal:8080", "ftp://api.internal/"} {
		if _, err := load(nil, lookupFrom(map[string]string{"PLATFORM_DRILL_API_URL": bad})); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestParseLag(t *testing.T) {
	for in, want := range map[string]Lag{
		"5s": {Time: 5 * time.Second}, "250ms": {Time: 250 * time.Millisecond},
		"16MB": {Bytes: 16 << 20}, "512kB": {Bytes: 512 << 10}, "1GB": {Bytes: 1 << 30}, "4096B": {Bytes: 4096},
	} {
		if got, err := parseLag(in); err != nil || got != want {
			t.Errorf("parseLag(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "-1MB", "0B", "1TB", "2h", "MB"} {
		if _, err := parseLag(in); err == nil {
			t.Errorf("parseLag(%q) accepted", in)
		}
	}
}

func TestSplitURLs(t *testing.T) {
	got := splitURLs("postgres://a:5432,b:5433/db?sslmode=disable, postgresql://c/db,,")
	want := []string{"postgres://a:5432,b:5433/db?sslmode=disable", "postgresql://c/db"}
	if !slices.Equal(got, want) {
		t.Fatalf("splitURLs = %q, want %q", got, want)
	}
}

func TestParseTargetMap(t *testing.T) {
	m, err := parseTargetMap(" worker = w ,api=a,")
	if err != nil || m["worker"] != "w" || m["api"] != "a" || len(m) != 2 {
		t.Errorf("got %v, %v", m, err)
	}
	for _, bad := range []string{"worker", "worker=", "jobs=x", "worker=a,worker=b"} {
		if _, err := parseTargetMap(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
