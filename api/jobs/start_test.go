package jobs

import (
	"encoding/json"
	"testing"

	"github.com/acme/platform/jobs/retry"
	"github.com/acme/platform/workflows"
)

func TestJobRequestFingerprint(t *testing.T) {
	job := func(typ, input string, p retry.Policy) workflows.JobInput {
		return workflows.JobInput{ID: "job_1", Principal: "acme", Type: typ, Input: json.RawMessage(input), Retry: p}
	}
	base := job("webhook", `{"url":"https://example.com/","payload":{"a":1,"b":[1,2]}}`, retry.Defaults())
	fp := func(in workflows.JobInput) string {
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
	same := job("webhook", "{ \"payload\": {\"b\":[1, 2], \"a\":1},\n \"url\":\"https://example.com/\" }", retry.Defaults())
	same.ID, same.Principal = "job_2", "beta" // not part of the request's fingerprint
	if got := fp(same); got != want {
		t.Errorf("member order and spacing changed the fingerprint: %s, want %s", got, want)
	}
	longer := retry.Defaults()
	longer.TTLSeconds++
	for name, in := range map[string]workflows.JobInput{
		"input":  job("webhook", `{"url":"https://example.com/","payload":{"a":2,"b":[1,2]}}`, retry.Defaults()),
		"order":  job("webhook", `{"url":"https://example.com/","payload":{"a":1,"b":[2,1]}}`, retry.Defaults()),
		"number": job("webhook", `{"url":"https://example.com/","payload":{"a":1.0,"b":[1,2]}}`, retry.Defaults()),
		"type":   job("upload.process", string(base.Input), retry.Defaults()),
		"retry":  job("webhook", string(base.Input), longer),
	} {
		if fp(in) == want {
			t.Errorf("a different %s has the same fingerprint", name)
		}
	}
}
