//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/devmesh/devmesh/coordinator/client"
)

// listeningPorts returns the TCP ports the workspace's processes listen
// on, from /proc/net/tcp{,6} (the agent's network namespace) and the
// processes' file descriptors. The agent's own sockets never count. A
// socket whose process cannot be read (another user's, when the agent is
// not root) counts only in an external workspace.
func listeningPorts(scope portScope) ([]client.ListeningPort, error) {
	socks := map[uint64]client.ListeningPort{} // listening sockets by inode
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := readListeners(f, socks); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	out := []client.ListeningPort{}
	if len(socks) == 0 {
		return out, nil
	}
	self := os.Getpid()
	names := map[uint64]string{} // inode -> name of a workspace process holding it
	own := map[uint64]bool{}     // the agent's own sockets
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pid != self && !scope.all && !hasEnv(pid, scope.marker) {
			continue
		}
		name := ""
		for _, inode := range socketInodes(pid) {
			if _, ok := socks[inode]; !ok {
				continue
			}
			if pid == self {
				own[inode] = true
				continue
			}
			if name == "" {
				name = processName(pid)
			}
			names[inode] = name
		}
	}
	for inode, p := range socks {
		name, ok := names[inode]
		if own[inode] || (!ok && !scope.all) {
			continue
		}
		p.Process = name
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b client.ListeningPort) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return strings.Compare(a.Process, b.Process)
	})
	// SO_REUSEPORT and forks: several sockets on one address are one port.
	out = slices.CompactFunc(out, func(a, b client.ListeningPort) bool { return a.Port == b.Port && a.Address == b.Address })
	if len(out) > client.MaxListeningPorts {
		out = out[:client.MaxListeningPorts]
	}
	return out, nil
}

// readListeners adds the sockets in LISTEN state of a /proc/net/tcp{,6}
// table to socks, by inode.
func readListeners(path string, socks map[uint64]client.ListeningPort) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" { // TCP_LISTEN
			continue
		}
		addr, port, err := parseProcAddr(fields[1])
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		socks[inode] = client.ListeningPort{Port: port, Address: addr.String()}
	}
	return sc.Err()
}

// parseProcAddr parses a /proc/net/tcp address, "0100007F:1F90": the IP
// as 32-bit words printed in host byte order, then the port.
func parseProcAddr(s string) (netip.Addr, int, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(portHex, 16, 16)
	if !ok || err != nil || (len(ipHex) != 8 && len(ipHex) != 32) {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap(), int(port), nil
}

// hasEnv reports whether process pid's environment holds every entry of
// want. A process that cannot be read does not.
func hasEnv(pid int, want []string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	found := 0
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if slices.Contains(want, string(kv)) {
			found++
		}
	}
	return found == len(want)
}

// socketInodes returns the inodes of the sockets process pid holds open.
func socketInodes(pid int) []uint64 {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []uint64
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"), 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func processName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")
}
