package job

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/acme/platform/jobs/records"
)

// ProcessUploadActivity is the upload job's attempt activity.
const ProcessUploadActivity = "platform.upload.process"

// UploadInput is the input of an upload.process job.
type UploadInput struct {
	UploadID string `json:"upload_id"`
}

// UploadSummary is the result of an upload.process job: the stored file's
// facts, its detected type and what its records hold.
type UploadSummary struct {
	UploadID     string `json:"upload_id"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256"`
	ContentType  string `json:"content_type"`
	DetectedType string `json:"detected_type"`
	records.Summary
}

// uploadAttemptLimit bounds one processing attempt of a file of up to the
// upload limit; heartbeats notice a lost worker much sooner.
const uploadAttemptLimit = 30 * time.Minute

// Upload verifies an upload's checksum, detects its type and validates
// and counts its records.
func Upload(ctx workflow.Context, in Input) (json.RawMessage, error) {
	return runJob(ctx, in, jobKind{activity: ProcessUploadActivity, startToClose: uploadAttemptLimit})
}
