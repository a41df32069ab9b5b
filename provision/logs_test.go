package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLogSink(t *testing.T) {
	var got []LogLine
	s := newLogSink(func(l LogLine) { got = append(got, l) })
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }
	s.begin(StageApply)
	out := s.writer(LevelInfo, true)
	errw := s.writer(LevelError, false)

	diag := `{"@level":"error","@message":"Error: boom","@module":"terraform.ui","@timestamp":"2030-01-02T03:04:06Z","diagnostic":{"severity":"error","summary":"boom","detail":"it broke"},"type":"diagnostic"}`
	// Lines arrive split across writes and with blank lines between.
	out.Write([]byte(`{"@level":"info","@message":"Apply complete!","@timestamp":"2030-01-02T03:04:05.5Z","type":"change_summary"}` + "\n\n" + diag[:20]))
	out.Write([]byte(diag[20:] + "\nnot json\n{broken"))
	errw.Write([]byte("plain stderr\r\n"))
	out.Flush()

	want := []LogLine{
		{Time: now.Add(500 * time.Millisecond), Stage: StageApply, Level: "info", Message: "Apply complete!"},
		{Time: now.Add(time.Second), Stage: StageApply, Level: "error", Message: "Error: boom"},
		{Time: now, Stage: StageApply, Level: "info", Message: "not json"},
		{Time: now, Stage: StageApply, Level: "error", Message: "plain stderr"},
		{Time: now, Stage: StageApply, Level: "info", Message: "{broken"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(LogLine{}, "JSON")); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if string(got[1].JSON) != diag || got[2].JSON != nil {
		t.Errorf("JSON kept wrong: %q, %q", got[1].JSON, got[2].JSON)
	}
	diags := s.errors()
	if len(diags) != 1 || diags[0].Summary != "boom" || diags[0].Detail != "it broke" {
		t.Errorf("diagnostics: %+v", diags)
	}
	s.begin(StageDestroy)
	if len(s.errors()) != 0 {
		t.Error("begin did not reset diagnostics")
	}
}

func TestLogSinkLongLine(t *testing.T) {
	var got []LogLine
	s := newLogSink(func(l LogLine) { got = append(got, l) })
	w := s.writer(LevelInfo, false)
	w.Write([]byte(strings.Repeat("x", 3*maxLineBytes)))
	w.Write([]byte("tail\n"))
	for _, l := range got {
		if len(l.Message) > maxLineBytes {
			t.Fatalf("line of %d bytes", len(l.Message))
		}
	}
	if len(got) == 0 || got[len(got)-1].Message != "tail" {
		t.Errorf("lost the tail: %d lines", len(got))
	}
}
