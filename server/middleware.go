package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// ctxKey is the type of this package's context keys.
type ctxKey int

const (
	requestIDKey ctxKey = iota // string
	loggerKey                  // *slog.Logger
)

// requestIDHeader carries the request id in both directions.
const requestIDHeader = "X-Request-Id"

// requestIDFrom returns the id of the request ctx belongs to, or "".
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// logger returns the request's logger (with its request id), or the
// server's outside a request.
func (s *Server) logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return s.log
}

// requestID gives each request an id: the X-Request-Id a load balancer
// or client sent if it is a plausible id, else a new random one. The id is
// echoed in the response header, error bodies and every log line.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(requestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, loggerKey, s.log.With("request_id", id))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validRequestID reports whether id is 1 to 128 characters from
// [A-Za-z0-9._:-], safe to log and echo.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// observe logs every request and records its count and latency by route
// pattern and status. A request whose client went away before any answer
// is recorded with status 499.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		s.metrics.inflight.Inc()
		defer func() { // deferred: runs even when a stream is aborted by a panic
			s.metrics.inflight.Dec()
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK // what net/http sends for an empty answer
				if r.Context().Err() != nil {
					status = statusClientClosed
				}
			}
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched" // keeps the label set bounded
			}
			code := strconv.Itoa(status)
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(route, r.Method, code).Inc()
			s.metrics.latency.WithLabelValues(route, r.Method, code).Observe(elapsed.Seconds())
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case status == http.StatusTooManyRequests || status == statusClientClosed:
				level = slog.LevelWarn
			}
			s.logger(r.Context()).Log(r.Context(), level, "request",
				"method", r.Method, "path", r.URL.Path, "route", route, "status", status,
				"bytes", ww.BytesWritten(), "duration", elapsed, "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(ww, r)
	})
}

// recoverPanics turns a panic in a handler into a logged error and a 500
// answer (or, if the answer had started, an aborted connection), so that
// one bad request never takes the process down. http.ErrAbortHandler, the
// deliberate abort of a response, passes through.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			switch v {
			case nil:
				return
			case http.ErrAbortHandler: // a deliberate abort: net/http closes the connection
				panic(v)
			}
			s.logger(r.Context()).Error("panic", "error", fmt.Sprint(v), "stack", string(debug.Stack()))
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				panic(http.ErrAbortHandler) // a partial answer must not look complete
			}
			writeError(w, r, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// deadline gives the request Config.RequestTimeout to complete: its
// context ends then, and reading the body or writing the answer fail a
// little later (after the handler has had time to answer 503), so that a
// stalled client cannot hold a place in the pool. net/http resets both
// connection deadlines for the next request on the connection (the write
// deadline only if http.Server.WriteTimeout is set, as Serve does).
func (s *Server) deadline(next http.Handler) http.Handler {
	const (
		readGrace  = 2 * time.Second
		writeGrace = 5 * time.Second
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		d, _ := ctx.Deadline()
		rc := http.NewResponseController(w)
		// Errors mean the connection does not support deadlines (e.g. a
		// test recorder); the context deadline still applies.
		_ = rc.SetReadDeadline(d.Add(readGrace))
		_ = rc.SetWriteDeadline(d.Add(writeGrace))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// admit lets the request in if the pool has a place for it, and answers
// 429 with a Retry-After estimate otherwise.
func (s *Server) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.pool.admit() {
			w.Header().Set("Retry-After", strconv.Itoa(s.pool.retryAfter()))
			writeError(w, r, http.StatusTooManyRequests, "server at capacity, retry later")
			return
		}
		defer s.pool.leave()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body at Config.MaxBodyBytes: a larger
// declared length is answered 413 at once, a larger body fails to read
// (and the handler answers 413).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, r, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body of %d bytes is larger than %d bytes", r.ContentLength, s.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// handlerFunc is a handler that may fail before it has answered.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to http.HandlerFunc: an error is answered as classify
// says (nothing is sent if the client went away) and logged if unexpected.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status, msg := classify(err, s.cfg.MaxBodyBytes)
		log := s.logger(r.Context())
		switch {
		case status == statusClientClosed:
			log.Info("client went away", "error", err)
			return
		case status >= 500:
			log.Error("request failed", "error", err)
		default:
			log.Info("request refused", "status", status, "error", msg)
		}
		writeError(w, r, status, msg)
	}
}
