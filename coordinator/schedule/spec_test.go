package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseAutostart(t *testing.T) {
	for _, tc := range []struct {
		spec, wantErr string
	}{
		{"CRON_TZ=Europe/Berlin 30 8 * * 1-5", ""},
		{"TZ=America/New_York 0 9 * * MON-FRI", ""},
		{"30 8 * * *", ""},
		{"", "empty"},
		{"CRON_TZ=Mars/Olympus 30 8 * * 1-5", "Mars/Olympus"},
		{"30 8 * *", "expected exactly 5 fields"},
		{"0 30 8 * * 1-5", "expected exactly 5 fields"},
		{"61 8 * * *", "above maximum"},
		{"@every 1m", "descriptors"},
		{"@daily", "descriptors"},
		{"0 0 30 2 *", "never fires"},
		{strings.Repeat("1", MaxSpecLen+1), "too long"},
	} {
		_, err := ParseAutostart(tc.spec)
		if tc.wantErr == "" && err != nil {
			t.Errorf("%q: %v", tc.spec, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: error %v, want one containing %q", tc.spec, err, tc.wantErr)
		}
	}
}

func TestSpecTimeZone(t *testing.T) {
	s, err := ParseAutostart("CRON_TZ=Europe/Berlin 30 8 * * 1-5")
	if err != nil {
		t.Fatal(err)
	}
	// Monday 7 December 2026, 07:00 UTC is 08:00 in Berlin (CET, UTC+1).
	got := s.Next(time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)).UTC()
	if want := time.Date(2026, 12, 7, 7, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next slot %s, want %s", got, want)
	}
	u, err := ParseAutostart("30 8 * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Next(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)).UTC(); got.Hour() != 8 {
		t.Fatalf("a spec without a zone is not UTC: next %s", got)
	}
}

func TestCheckTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl, max time.Duration
		ok       bool
	}{
		{0, 0, true}, {8 * time.Hour, 0, true}, {-time.Hour, 0, false}, {time.Second, 0, false},
		{MaxTTL + time.Hour, 0, false}, {9 * time.Hour, 8 * time.Hour, false}, {8 * time.Hour, 8 * time.Hour, true},
	} {
		if err := CheckTTL(tc.ttl, tc.max); (err == nil) != tc.ok {
			t.Errorf("CheckTTL(%s, max %s) = %v, want ok=%v", tc.ttl, tc.max, err, tc.ok)
		}
	}
	if got := EffectiveTTL(0, 2*time.Hour); got != 2*time.Hour {
		t.Errorf("no TTL under a 2h maximum: %s", got)
	}
	if got := EffectiveTTL(3*time.Hour, 2*time.Hour); got != 2*time.Hour {
		t.Errorf("3h TTL under a 2h maximum: %s", got)
	}
}
