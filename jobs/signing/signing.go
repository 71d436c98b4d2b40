// Package signing signs webhook deliveries per the Standard Webhooks
// specification (https://www.standardwebhooks.com): the signature of a
// delivery is base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"))
// where key is the base64-decoded part of a "whsec_…" secret, sent as
// "webhook-signature: v1,<signature>". Several space-separated signatures
// may be sent, which is how a rotated-out secret stays valid for a while.
//
// It is about fifteen lines of HMAC, so it is written here rather than taken
// from a library; the specification's own test vector pins it down.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Header names of the specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// secretBytes is the key length: the specification asks for 24 to 64 bytes.
const secretBytes = 32

// NewSecret returns a fresh random secret, "whsec_" and base64 of 32 bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Key returns the HMAC key of secret: its base64 part after "whsec_".
func Key(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("signing secret is not whsec_ and base64: %w", err)
	}
	return key, nil
}

// Sign returns "v1,<signature>" of one delivery under secret.
func Sign(secret, msgID string, timestamp int64, body []byte) (string, error) {
	key, err := Key(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Header returns the webhook-signature value: one signature per secret,
// space-separated, so that receivers holding any of the secrets verify it.
func Header(secrets []string, msgID string, timestamp int64, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, msgID, timestamp, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}
