package provision

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
)

// Stage is the step of a build or validation that produced a log line.
type Stage string

const (
	StageSetup    Stage = "setup"    // devmesh's own preparation
	StageInit     Stage = "init"     // terraform init
	StageValidate Stage = "validate" // terraform validate
	StageApply    Stage = "apply"    // terraform apply (start, stop)
	StageDestroy  Stage = "destroy"  // terraform destroy (delete)
)

// Log levels, as terraform's machine-readable output names them.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// LogLine is one line of build output.
type LogLine struct {
	Time    time.Time
	Stage   Stage
	Level   string // LevelInfo, ...
	Message string // human-readable text, without a trailing newline
	// JSON is terraform's machine-readable message (apply and destroy
	// output, see terraform's "JSON UI" docs) when the line was one; nil
	// for plain text. Sensitive values are redacted in it by terraform.
	JSON json.RawMessage
}

// maxLineBytes bounds one log line; longer lines are cut.
const maxLineBytes = 64 << 10

// logSink turns terraform's stdout and stderr into LogLines. Writes from
// both streams come from different goroutines; mu serializes them, so the
// callback is never called concurrently. It also keeps the error
// diagnostics seen, to build the error a failed command returns.
type logSink struct {
	emit  func(LogLine)
	now   func() time.Time
	mu    sync.Mutex          // guards stage and diags, and serializes emit
	stage Stage               // stage of the command running now
	diags []tfjson.Diagnostic // error diagnostics seen in the current stage
}

func newLogSink(emit func(LogLine)) *logSink {
	if emit == nil {
		emit = func(LogLine) {}
	}
	return &logSink{emit: emit, now: time.Now}
}

// begin starts a stage: later lines are attributed to it and the
// collected diagnostics are reset.
func (s *logSink) begin(stage Stage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stage, s.diags = stage, nil
}

// errors returns the error diagnostics seen since begin.
func (s *logSink) errors() []tfjson.Diagnostic {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.diags)
}

// logf emits a line of devmesh's own.
func (s *logSink) logf(level, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emit(LogLine{Time: s.now(), Stage: s.stage, Level: level, Message: msg})
}

// writer returns an io.Writer for one stream. Lines are parsed as
// terraform JSON messages when isJSON is set, else emitted as text at level.
func (s *logSink) writer(level string, isJSON bool) *lineWriter {
	return &lineWriter{sink: s, level: level, isJSON: isJSON}
}

// lineWriter splits a stream into lines. Only one goroutine writes to a
// given lineWriter (tfexec copies each stream in its own goroutine).
type lineWriter struct {
	sink   *logSink
	level  string
	isJSON bool
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLineBytes {
		w.line(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

// Flush emits a final unterminated line, if any.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) line(b []byte) {
	if len(b) > maxLineBytes {
		b = b[:maxLineBytes]
	}
	text := strings.TrimRight(string(b), "\r")
	if strings.TrimSpace(text) == "" {
		return
	}
	l := LogLine{Level: w.level, Message: text}
	var diag *tfjson.Diagnostic
	if w.isJSON && strings.HasPrefix(text, "{") {
		var m struct {
			Level      string             `json:"@level"`
			Message    string             `json:"@message"`
			Time       time.Time          `json:"@timestamp"`
			Type       string             `json:"type"`
			Diagnostic *tfjson.Diagnostic `json:"diagnostic"`
		}
		if json.Unmarshal(b, &m) == nil {
			l.Level, l.Message, l.Time, l.JSON = m.Level, m.Message, m.Time, json.RawMessage(text)
			if m.Type == "diagnostic" && m.Diagnostic != nil && m.Diagnostic.Severity == tfjson.DiagnosticSeverityError {
				diag = m.Diagnostic
			}
		}
	}
	s := w.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.Time.IsZero() {
		l.Time = s.now()
	}
	l.Stage = s.stage
	if diag != nil {
		s.diags = append(s.diags, *diag)
	}
	s.emit(l)
}
