package retention

import (
	"go.temporal.io/sdk/activity"

	"github.com/acme/platform/workflows/retention"
)

func activityOptions() activity.RegisterOptions {
	return activity.RegisterOptions{Name: retention.PurgeActivity}
}
