package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxConfigBody caps PUT /v1/config: a steering config with a topology of
// tens of thousands of networks is a few MB (50,000 /24s in YAML: about
// 1.9 MB).
const maxConfigBody = 16 << 20

// readConfigBody reads a steering config body, capped at maxConfigBody.
func readConfigBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConfigBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("steering config larger than %d bytes", maxConfigBody)
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}
