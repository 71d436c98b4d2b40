package signing

import (
	"strings"
	"testing"
)

// The Standard Webhooks specification's published test vector: matching it is
// what says a receiver's stock library will accept our signatures.
func TestSign_MatchesTheSpecificationTestVector(t *testing.T) {
	got, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestHeader_SignsWithEverySecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	h, err := Header([]string{a, b}, "msg_1", 1, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := Sign(a, "msg_1", 1, []byte("{}"))
	sb, _ := Sign(b, "msg_1", 1, []byte("{}"))
	if h != sa+" "+sb || sa == sb {
		t.Errorf("header %q, want %q and %q space-separated", h, sa, sb)
	}
}

func TestNewSecret_IsPrefixedAndDecodes(t *testing.T) {
	s := NewSecret()
	key, err := Key(s)
	if !strings.HasPrefix(s, SecretPrefix) || err != nil || len(key) != secretBytes {
		t.Errorf("secret %q: key %d bytes, err %v", s, len(key), err)
	}
	if _, err := Sign("whsec_not base64!", "m", 1, nil); err == nil {
		t.Error("a malformed secret signed")
	}
}
