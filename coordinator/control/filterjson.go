package control

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"tailscale.com/tailcfg"
)

// A node's packet filter has a chunk per node that may reach it, so a
// full map at N nodes carries N rules, and every delta that adds a peer
// carries one: encoding them through reflection was the largest part of
// a message's JSON after the peers. appendFilters writes the shape
// filterRule makes directly and leaves anything else to encoding/json.
// TestAppendFiltersMatchesMarshal checks it against json.Marshal, and
// that tailcfg's filter types have the fields it knows.

// appendFilters appends f as json.Marshal would encode it (keys sorted,
// so that a message's bytes are a function of its content).
func appendFilters(b []byte, f map[string][]tailcfg.FilterRule) ([]byte, error) {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(f)) {
		if i > 0 {
			b = append(b, ',')
		}
		rules := f[k]
		b = appendJSONString(b, k)
		b = append(b, ':')
		if rules == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for i := range rules {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendFilterRule(b, &rules[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendFilterRule writes a rule of source IPs and destination ports
// (what filterRule makes) directly; any other rule through json.Marshal.
func appendFilterRule(b []byte, r *tailcfg.FilterRule) ([]byte, error) {
	simple := r.SrcBits == nil && r.IPProto == nil && r.CapGrant == nil
	for i := range r.DstPorts {
		simple = simple && r.DstPorts[i].Bits == nil
	}
	if !simple {
		enc, err := json.Marshal(r)
		return append(b, enc...), err
	}
	b = append(b, `{"SrcIPs":`...)
	if r.SrcIPs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, ip := range r.SrcIPs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, ip)
		}
		b = append(b, ']')
	}
	if len(r.DstPorts) > 0 {
		b = append(b, `,"DstPorts":[`...)
		for i, d := range r.DstPorts {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"IP":`...)
			b = appendJSONString(b, d.IP)
			b = append(b, `,"Ports":{"First":`...)
			b = strconv.AppendUint(b, uint64(d.Ports.First), 10)
			b = append(b, `,"Last":`...)
			b = strconv.AppendUint(b, uint64(d.Ports.Last), 10)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string: directly when it is
// printable ASCII without quotes or backslashes (addresses, chunk keys),
// else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
