package job

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/workflow"
)

// DeliverWebhookActivity is the webhook job's attempt activity.
const DeliverWebhookActivity = "platform.webhook.deliver"

// WebhookInput is the input of a webhook job.
type WebhookInput struct {
	URL     string          `json:"url"`
	Payload json.RawMessage `json:"payload"`
}

// WebhookResult is the result of a delivered webhook.
type WebhookResult struct {
	MessageID string  `json:"webhook_id"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
}

// webhookAttemptLimit bounds one delivery attempt; the HTTP client's own
// timeout (PLATFORM_WEBHOOK_TIMEOUT, at most 5 minutes) ends it sooner.
const webhookAttemptLimit = 6 * time.Minute

// Webhook delivers a webhook notification: it POSTs the payload to the
// URL, signed per Standard Webhooks, retrying per the job's policy.
func Webhook(ctx workflow.Context, in Input) (json.RawMessage, error) {
	return runJob(ctx, in, jobKind{activity: DeliverWebhookActivity, startToClose: webhookAttemptLimit})
}
