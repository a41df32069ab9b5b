package tunnel

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines around each change.
const diffContext = 3

// UnifiedDiff returns the differences from a to b as a unified diff
// (diff -u), or "" when they are equal. It is meant for small files with
// local changes, such as an ssh_config: lines shared at the start and end
// are matched directly, only the middle is compared line by line.
func UnifiedDiff(nameA, nameB, a, b string) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	ops := diffLines(x, y)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
	for _, h := range hunks(ops) {
		writeHunk(&out, ops[h[0]:h[1]])
	}
	return out.String()
}

// splitLines splits s into lines without their "\n"; a last line without
// one is marked as in diff(1).
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if strings.HasSuffix(l, "\n") {
			lines[i] = l[:len(l)-1]
		} else {
			lines[i] = l + "\n\\ No newline at end of file"
		}
	}
	return lines
}

// diffOp is one line of an edit script: ' ' kept, '-' deleted, '+' added,
// with its 1-based line numbers in a and b.
type diffOp struct {
	kind   byte
	line   string
	ai, bi int
}

// diffLines computes an edit script from x to y: common prefix and
// suffix, and a longest common subsequence of the middle.
func diffLines(x, y []string) []diffOp {
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', x[i], i + 1, i + 1})
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	// lcs[i][j] is the LCS length of mx[i:] and my[j:].
	lcs := make([][]int, len(mx)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(my)+1)
	}
	for i := len(mx) - 1; i >= 0; i-- {
		for j := len(my) - 1; j >= 0; j-- {
			if mx[i] == my[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(mx) || j < len(my) {
		switch {
		case i < len(mx) && j < len(my) && mx[i] == my[j]:
			ops = append(ops, diffOp{' ', mx[i], pre + i + 1, pre + j + 1})
			i++
			j++
		case i < len(mx) && (j == len(my) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, diffOp{'-', mx[i], pre + i + 1, pre + j})
			i++
		default:
			ops = append(ops, diffOp{'+', my[j], pre + i, pre + j + 1})
			j++
		}
	}
	for k := 0; k < suf; k++ {
		ai, bi := len(x)-suf+k, len(y)-suf+k
		ops = append(ops, diffOp{' ', x[ai], ai + 1, bi + 1})
	}
	return ops
}

// hunks returns [start, end) ranges of ops: each change with up to
// diffContext kept lines around it, overlapping ranges merged.
func hunks(ops []diffOp) [][2]int {
	var out [][2]int
	for i, op := range ops {
		if op.kind == ' ' {
			continue
		}
		s, e := max(0, i-diffContext), min(len(ops), i+diffContext+1)
		if n := len(out); n > 0 && s <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], e)
		} else {
			out = append(out, [2]int{s, e})
		}
	}
	return out
}

func writeHunk(out *strings.Builder, ops []diffOp) {
	aStart, bStart, aLen, bLen := 0, 0, 0, 0
	for _, op := range ops {
		if op.kind != '+' {
			if aLen == 0 {
				aStart = op.ai
			}
			aLen++
		}
		if op.kind != '-' {
			if bLen == 0 {
				bStart = op.bi
			}
			bLen++
		}
	}
	if aLen == 0 {
		aStart = ops[0].ai // the line before the insertion
	}
	if bLen == 0 {
		bStart = ops[0].bi
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
	for _, op := range ops {
		fmt.Fprintf(out, "%c%s\n", op.kind, op.line)
	}
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
