// Package ids makes the platform's resource ids: a typed prefix followed by a
// ULID, so ids sort by creation time, or by a hash when an id must be derived
// from a business key.
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Prefixes of the platform's resources.
const (
	Job      = "job"
	Key      = "key"
	Rollout  = "rol"
	Drill    = "drl"
	Backup   = "bkp"
	Upload   = "upl"
	Ping     = "png"
	Request  = "req"
	Delivery = "msg"
	Scaling  = "sca"
	Decision = "scd"
)

// New returns prefix_<ulid>, lowercase, sortable by creation time.
func New(prefix string) string {
	id := ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader)
	return prefix + "_" + strings.ToLower(id.String())
}

var hashEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// Derive returns prefix_<hash> where the hash is a SHA-256 of the parts. Two
// calls with the same parts give the same id, which is what makes a resource
// created under an idempotency key collide with itself instead of duplicating.
func Derive(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefix each part so ("ab","c") and ("a","bc") differ.
		var n [8]byte
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	// 26 characters, like a ULID, so derived and random ids look alike.
	return prefix + "_" + hashEncoding.EncodeToString(sum[:16])[:26]
}

// HasPrefix reports whether id is of the given resource type.
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_") && len(id) > len(prefix)+1
}
