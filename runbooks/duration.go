package runbooks

import "github.com/evac-sh/evac/internal/duration"

// Duration is evac's one duration type (internal/duration): a Go duration
// string such as "30s" in JSON.
type Duration = duration.Duration
