package uploads

import "time"

// uploadView is an upload as the API shows it; JobID only when the request
// started its processing.
type uploadView struct {
	ID          string    `json:"id"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	ContentType string    `json:"content_type"`
	CreatedAt   time.Time `json:"created_at"`
	JobID       string    `json:"job_id,omitempty"`
}

func toView(u Upload) uploadView {
	return uploadView{ID: u.ID, Size: u.Size, SHA256: u.SHA256, ContentType: u.ContentType, CreatedAt: u.CreatedAt.UTC()}
}
