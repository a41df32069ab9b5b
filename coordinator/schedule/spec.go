package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Limits on what a schedule may say.
const (
	MaxSpecLen = 200
	// MinTTL and MaxTTL bound a TTL (a template's maximum may lower the
	// latter).
	MinTTL = time.Minute
	MaxTTL = 30 * 24 * time.Hour
)

// specParser reads the five standard fields (minute hour day-of-month
// month day-of-week) with an optional CRON_TZ= or TZ= prefix; no seconds
// field and no descriptors (@every would start a workspace over and over).
var specParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ParseAutostart parses an autostart spec such as
// "CRON_TZ=Europe/Berlin 30 8 * * 1-5". Without a time zone prefix the
// spec is in UTC, not in the coordinator's local zone. A spec that never
// fires (30 2 * 2 *: February 30th) is refused too.
func ParseAutostart(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return nil, errors.New("empty autostart spec")
	case len(spec) > MaxSpecLen:
		return nil, fmt.Errorf("autostart spec too long: at most %d characters", MaxSpecLen)
	case strings.HasPrefix(spec, "@"):
		return nil, fmt.Errorf("autostart spec %q: descriptors (@daily, @every) are not accepted; write the five fields, e.g. \"CRON_TZ=Europe/Berlin 30 8 * * 1-5\"", spec)
	}
	full := spec
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		full = "CRON_TZ=UTC " + spec
	}
	sched, err := specParser.Parse(full)
	if err != nil {
		return nil, fmt.Errorf("autostart spec %q: %v (want [CRON_TZ=ZONE] MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK, e.g. \"CRON_TZ=Europe/Berlin 30 8 * * 1-5\")", spec, err)
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("autostart spec %q never fires", spec)
	}
	return sched, nil
}

// CheckTTL validates a TTL against the limits and a template's maximum
// (0: none). 0 is valid: no autostop.
func CheckTTL(ttl, templateMax time.Duration) error {
	switch {
	case ttl == 0:
		return nil
	case ttl < 0:
		return fmt.Errorf("TTL %s is negative", ttl)
	case ttl < MinTTL:
		return fmt.Errorf("TTL %s is too short: at least %s", ttl, MinTTL)
	case ttl > MaxTTL:
		return fmt.Errorf("TTL %s is too long: at most %s", ttl, MaxTTL)
	case templateMax > 0 && ttl > templateMax:
		return fmt.Errorf("TTL %s is longer than the template's maximum, %s", ttl, templateMax)
	}
	return nil
}

// EffectiveTTL is ttl capped by the template's maximum (a maximum
// lowered after the TTL was set still applies).
func EffectiveTTL(ttl, templateMax time.Duration) time.Duration {
	if templateMax > 0 && (ttl == 0 || ttl > templateMax) {
		return templateMax
	}
	return ttl
}
