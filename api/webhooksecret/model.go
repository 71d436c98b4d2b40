package webhooksecret

import "time"

// secretView is the principal's current signing secret.
type secretView struct {
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	// PreviousValidUntil is when the secret it replaced stops being used
	// (null when none is still valid).
	PreviousValidUntil *time.Time `json:"previous_valid_until"`
}

func toView(s Secret) secretView {
	v := secretView{Secret: s.Secret, CreatedAt: s.CreatedAt.UTC()}
	if s.PreviousValidUntil != nil {
		t := s.PreviousValidUntil.UTC()
		v.PreviousValidUntil = &t
	}
	return v
}
