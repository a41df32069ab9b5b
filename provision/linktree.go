package provision

import (
	"archive/tar"
	"errors"
	"path"
	"strings"
)

// maxLinkHops bounds the symlinks followed in one lookup, counted in total
// across the whole resolution (links met while resolving other links
// included), like the kernel's ELOOP limit (MAXSYMLINKS).
const maxLinkHops = 40

var (
	errOutside  = errors.New("resolves outside the archive")
	errLinkLoop = errors.New("too many levels of symlinks")
)

// linkTree holds the paths of an archive as a tree of nodes, one per
// entry and per implied parent directory, so that symlinks resolve by
// stepping from node to node (a map lookup on one component) rather than
// by rebuilding path strings. Each symlink's resolution is computed once
// and remembered with the number of links it followed, so checking every
// symlink of an archive costs time linear in the archive's size, however
// the links chain, while each lookup still counts every hop it would take
// on disk.
type linkTree struct {
	parent []int            // node -> parent node; the root, 0, is its own
	name   []string         // node -> its last component
	kind   []byte           // node -> typeflag; 0 for an implied directory
	target []string         // node -> symlink target
	child  map[childKey]int // (parent, component) -> node
	memo   map[int]resolved // symlink node -> its resolution
}

type childKey struct {
	parent int
	name   string
}

// pos is a place a resolution reaches: node, then extra more components
// that name nothing in the archive (so nothing under them is a symlink).
type pos struct {
	node, extra int
}

// resolved is the outcome of resolving one symlink.
type resolved struct {
	at   pos
	hops int // symlinks followed on the way, not counting this one
	err  error
}

func newLinkTree() *linkTree {
	return &linkTree{parent: []int{0}, name: []string{""}, kind: []byte{tar.TypeDir}, target: []string{""},
		child: map[childKey]int{}, memo: map[int]resolved{}}
}

// add records the entry name (clean, relative) of type kind.
func (t *linkTree) add(name string, kind byte, linkname string) {
	n := 0
	for part := range strings.SplitSeq(name, "/") {
		c, ok := t.child[childKey{n, part}]
		if !ok {
			c = len(t.parent)
			t.parent = append(t.parent, n)
			t.name = append(t.name, part)
			t.kind = append(t.kind, 0)
			t.target = append(t.target, "")
			t.child[childKey{n, part}] = c
		}
		n = c
	}
	t.kind[n] = kind
	if kind == tar.TypeSymlink {
		t.target[n] = linkname
	}
}

// lookup returns the node of an added name.
func (t *linkTree) lookup(name string) int {
	n := 0
	for part := range strings.SplitSeq(name, "/") {
		n = t.child[childKey{n, part}]
	}
	return n
}

// path returns the name of node n.
func (t *linkTree) path(n int) string {
	var parts []string
	for ; n != 0; n = t.parent[n] {
		parts = append(parts, t.name[n])
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// badParent returns the first parent directory of name, from the entry
// up, that is in the archive as something other than a directory, with
// its kind; "" if there is none.
func (t *linkTree) badParent(name string) (string, byte) {
	for n := t.parent[t.lookup(name)]; n != 0; n = t.parent[n] {
		if k := t.kind[n]; k != 0 && k != tar.TypeDir {
			return t.path(n), k
		}
	}
	return "", 0
}

// checkLink resolves the symlink name within the archive's own tree, the
// way the kernel would after extraction, and fails if it leaves the root
// or follows more than maxLinkHops symlinks (itself included).
func (t *linkTree) checkLink(name string) error {
	r := t.resolve(t.lookup(name), 1)
	if r.err == nil && 1+r.hops > maxLinkHops {
		r.err = errLinkLoop
	}
	return r.err
}

// resolve resolves the symlink node n, met depth links deep in a lookup.
// A depth past maxLinkHops means the lookup has followed too many links
// already, whatever n resolves to; the error ends validation, so it need
// not be remembered correctly for other lookups.
func (t *linkTree) resolve(n, depth int) resolved {
	if r, ok := t.memo[n]; ok {
		return r
	}
	if depth > maxLinkHops {
		return resolved{err: errLinkLoop}
	}
	t.memo[n] = resolved{err: errLinkLoop} // a cycle back to n is a loop
	r := t.walk(n, depth)
	t.memo[n] = r
	return r
}

// walk resolves the target of symlink n from n's directory, component by
// component: ".." goes up (and fails above the root), a component that is
// itself a symlink is resolved in turn.
func (t *linkTree) walk(n, depth int) resolved {
	target := t.target[n]
	switch {
	case target == "":
		return resolved{err: errors.New("empty target")}
	case path.IsAbs(target) || strings.Contains(target, `\`):
		return resolved{err: errors.New("absolute target")}
	}
	p := pos{node: t.parent[n]}
	hops := 0
	for part := range strings.SplitSeq(target, "/") {
		switch {
		case part == "" || part == ".":
			continue
		case part == ".." && p.extra > 0:
			p.extra--
			continue
		case part == "..":
			if p.node == 0 {
				return resolved{err: errOutside}
			}
			p.node = t.parent[p.node]
			continue
		case p.extra > 0:
			p.extra++
			continue
		}
		c, ok := t.child[childKey{p.node, part}]
		if !ok {
			p.extra = 1
			continue
		}
		p.node = c
		if t.kind[c] != tar.TypeSymlink {
			continue
		}
		r := t.resolve(c, depth+1)
		if r.err != nil {
			return resolved{err: r.err}
		}
		if hops += 1 + r.hops; hops > maxLinkHops {
			return resolved{err: errLinkLoop}
		}
		p = r.at
	}
	return resolved{at: p, hops: hops}
}
