package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
)

// statusClientClosed is the status recorded (never sent) for requests
// whose client went away before the answer, as nginx does.
const statusClientClosed = 499

// apiError is an error with the HTTP status it should be answered with.
// Its message is shown to the client, so it names the problem in the
// client's terms.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorf returns an apiError with a formatted message.
func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// classify returns the status and client message for err, the error a
// handler failed with. Unexpected errors give 500 with a generic message
// (the details go to the log).
func classify(err error, maxBody int64) (status int, msg string) {
	var ae *apiError
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody)
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request deadline exceeded"
	case errors.Is(err, context.Canceled):
		return statusClientClosed, "request cancelled"
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusRequestTimeout, "timed out reading the request body"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// writeError answers r with status and a JSON error body.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, RequestID: requestIDFrom(r.Context())})
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only for values that cannot be marshalled: a bug
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error: encoding the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
