package control

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"tailscale.com/tailcfg"
)

func TestAppendFiltersMatchesMarshal(t *testing.T) {
	bits := 24
	f := map[string][]tailcfg.FilterRule{
		"*":     nil,
		"empty": {},
		"n1": {{SrcIPs: []string{"100.64.0.1", "fd7a:115c:a1e0::1"}, DstPorts: []tailcfg.NetPortRange{
			{IP: "100.64.0.2", Ports: tailcfg.PortRangeAny}, {IP: "fd7a:115c:a1e0::2", Ports: tailcfg.PortRange{First: 22, Last: 22}}}}},
		"no sources":    {{DstPorts: []tailcfg.NetPortRange{{IP: "*", Ports: tailcfg.PortRangeAny}}}},
		"no dsts":       {{SrcIPs: []string{}}},
		"proto":         {{SrcIPs: []string{"*"}, IPProto: []int{6, 17}, DstPorts: []tailcfg.NetPortRange{{IP: "*"}}}},
		"bits":          {{SrcIPs: []string{"10.0.0.0"}, DstPorts: []tailcfg.NetPortRange{{IP: "10.0.0.0", Bits: &bits}}}},
		"esc\"aped\\\n": {{SrcIPs: []string{"<tag:ünï>"}}, {SrcIPs: []string{"x"}}},
	}
	got, err := appendFilters([]byte("prefix"), f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[:6]) != "prefix" {
		t.Fatal("appendFilters lost what the buffer held")
	}
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[6:], want) { // byte for byte: keys sorted as json.Marshal sorts them
		t.Errorf("appendFilters wrote\n%s\njson.Marshal\n%s", got[6:], want)
	}
	if g, w := asJSONValue(t, got[6:]), asJSONValue(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("appendFilters wrote\n%s\njson.Marshal\n%s", got[6:], want)
	}
}

// TestFilterTypesAreKnown fails when tailcfg's filter types gain a field
// that appendFilterRule does not write: it must then learn it (or treat
// rules that set it as not simple).
func TestFilterTypesAreKnown(t *testing.T) {
	fields := func(v any) (names []string) {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			names = append(names, rt.Field(i).Name)
		}
		return names
	}
	if got, want := fields(tailcfg.FilterRule{}), []string{"SrcIPs", "SrcBits", "DstPorts", "IPProto", "CapGrant"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tailcfg.FilterRule fields %v, appendFilterRule knows %v", got, want)
	}
	if got, want := fields(tailcfg.NetPortRange{}), []string{"_", "IP", "Bits", "Ports"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tailcfg.NetPortRange fields %v, appendFilterRule knows %v", got, want)
	}
	if got, want := fields(tailcfg.PortRange{}), []string{"First", "Last"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tailcfg.PortRange fields %v, appendFilterRule knows %v", got, want)
	}
}
