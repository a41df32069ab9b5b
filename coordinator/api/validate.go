package api

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Usernames become DNS labels (owner names in MagicDNS), so they are
// lowercase letters, digits and inner hyphens, at most 32 long.
var usernameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Token names appear in URLs and tables.
var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

const (
	minPasswordLen = 8    // characters
	maxPasswordLen = 1024 // bytes
)

func validateUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return badRequest("invalid username %q: use 1-32 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen", name)
	}
	return nil
}

func validatePassword(pw string) error {
	if utf8.RuneCountInString(pw) < minPasswordLen {
		return badRequest("password too short: at least %d characters", minPasswordLen)
	}
	if len(pw) > maxPasswordLen {
		return badRequest("password too long: at most %d bytes", maxPasswordLen)
	}
	return nil
}

func validateNewUser(username, pw string) error {
	if err := validateUsername(username); err != nil {
		return err
	}
	return validatePassword(pw)
}

// parseLifetime parses a Go duration ("90m", "720h") or a whole number of
// days ("30d"); empty means def. The result must be in (0, max].
func parseLifetime(field, s string, def, max time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100000 {
			return 0, badRequest("invalid %s %q: want a duration like 90m, 720h or 30d", field, s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, badRequest("invalid %s %q: want a duration like 90m, 720h or 30d", field, s)
		}
	}
	if d <= 0 || d > max {
		return 0, badRequest("%s %s out of range: must be positive and at most %s", field, s, formatDays(max))
	}
	return d, nil
}

// formatDays renders whole days as "90d", else a Go duration.
func formatDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
