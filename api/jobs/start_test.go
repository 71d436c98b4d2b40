package jobs

import (
	"encoding/json"
	"testing"

	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/workflows/job"
)

func TestJobRequestFingerprint(t *testing.T) {
	mk := func(typ, input string, p retry.Policy) job.Input {
		return job.Input{ID: "job_1", Principal: "acme", Type: typ, Input: json.RawMessage(input), Retry: p}
	}
	base := mk("webhook", `{"url":"https://example.com/","payload":{"a":1,"b":[1,2]}}`, retry.Defaults())
	fp := func(in job.Input) string {
		t.Helper()
		s, err := requestFingerprint(in)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := fp(base)
	if len(want) != 64 {
		t.Fatalf("fingerprint %q is not a hex SHA-256", want)
	}
	same := mk("webhook", "{ \"payload\": {\"b\":[1, 2], \"a\":1},\n \"url\":\"https://example.com/\" }", retry.Defaults())
	same.ID, same.Principal = "job_2", "beta" // not part of the request's fingerprint
	if got := fp(same); got != want {
		t.Errorf("member order and spacing changed the fingerprint: %s, want %s", got, want)
	}
	longer := retry.Defaults()
	longer.TTLSeconds++
	for name, in := range map[string]job.Input{
		"input":  mk("webhook", `{"url":"https://example.com/","payload":{"a":2,"b":[1,2]}}`, retry.Defaults()),
		"order":  mk("webhook", `{"url":"https://example.com/","payload":{"a":1,"b":[2,1]}}`, retry.Defaults()),
		"number": mk("webhook", `{"url":"https://example.com/","payload":{"a":1.0,"b":[1,2]}}`, retry.Defaults()),
		"type":   mk("upload.process", string(base.Input), retry.Defaults()),
		"retry":  mk("webhook", string(base.Input), longer),
	} {
		if fp(in) == want {
			t.Errorf("a different %s has the same fingerprint", name)
		}
	}
}
