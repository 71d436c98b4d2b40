package job

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/workflow"
)

// ProcessUploadActivity is the upload job's attempt activity.
const ProcessUploadActivity = "platform.upload.process"

// UploadInput is the input of an upload.process job.
type UploadInput struct {
	UploadID string `json:"upload_id"`
}

// uploadAttemptLimit bounds one processing attempt of a file of up to the
// upload limit; heartbeats notice a lost worker much sooner.
const uploadAttemptLimit = 30 * time.Minute

// Upload verifies an upload's checksum, detects its type and validates
// and counts its records.
func Upload(ctx workflow.Context, in Input) (json.RawMessage, error) {
	return runJob(ctx, in, jobKind{activity: ProcessUploadActivity, startToClose: uploadAttemptLimit})
}
