package webterm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/pion/webrtc/v4"

	"github.com/devmesh/devmesh/agent"
	agentterm "github.com/devmesh/devmesh/agent/webterm"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/termproto"
)

// termClient is a terminal client, either path: frames in, frames out.
type termClient struct {
	send   func([]byte) error
	close  func()
	frames chan []byte
}

// TestTerminalEndToEnd drives a real coordinator and agent with a pion
// peer playing the browser: a shell over the direct path, a reattach
// over the relay that replays the scrollback, and another user refused.
func TestTerminalEndToEnd(t *testing.T) {
	coord := coordtest.Start(t)
	ctx := t.Context()
	bob, carol := startAgent(t, coord)
	session := uuid.NewString()

	// Direct: WebRTC data channel.
	tc := dialDirect(t, bob, session)
	hello := readHello(t, tc)
	if hello.Reattached || hello.Path != termproto.PathDirect || hello.Session != session {
		t.Fatalf("direct hello: %+v", hello)
	}
	tc.send(termproto.ResizeFrame(100, 30))
	tc.send(termproto.Frame(termproto.Input, []byte("echo $((6*7))\r")))
	waitOutput(t, tc, "42\r\n")
	t.Logf("measured: direct (WebRTC, loopback) keystroke echo: %v", echoLatency(t, tc))
	t.Logf("measured: direct ping RTT: %v", pingRTT(t, tc))
	tc.close()

	// Relayed, same session: the scrollback comes first.
	rc := dialRelay(t, bob, session)
	hello = readHello(t, rc)
	if !hello.Reattached || hello.Path != termproto.PathRelayed {
		t.Fatalf("relay hello: %+v", hello)
	}
	waitOutput(t, rc, "42\r\n")
	rc.send(termproto.Frame(termproto.Input, []byte("echo $((6*7+1))\r")))
	waitOutput(t, rc, "43\r\n")
	t.Logf("measured: relayed (WebSocket via the coordinator) keystroke echo: %v", echoLatency(t, rc))
	t.Logf("measured: relayed ping RTT: %v", pingRTT(t, rc))
	rc.close()

	// Another user: 404 on signalling and the relay, as for a missing
	// workspace, whether named WS or OWNER/WS.
	for _, name := range []string{"dev", "bob/dev"} {
		_, err := carol.TerminalOffer(ctx, name, client.TerminalOfferRequest{Session: uuid.NewString(), SDP: "v=0"})
		if e := (*client.Error)(nil); !errors.As(err, &e) || e.Status != http.StatusNotFound {
			t.Errorf("carol's offer to %s: %v, want 404", name, err)
		}
		if _, err := carol.DialTerminalRelay(ctx, name, "", uuid.NewString()); err == nil || !strings.Contains(err.Error(), "no such workspace") {
			t.Errorf("carol's relay to %s: %v, want 404", name, err)
		}
	}
	// Bad input changes nothing.
	if _, err := bob.TerminalOffer(ctx, "dev", client.TerminalOfferRequest{Session: "not-a-uuid", SDP: "v=0"}); err == nil {
		t.Error("an offer with a malformed session id was accepted")
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startAgent(t *testing.T, coord *coordtest.Coordinator) (bob, carol *client.Client) {
	t.Helper()
	ctx := t.Context()
	anon, _ := client.New(coord.URL(), "")
	sess, err := anon.CreateFirstUser(ctx, client.LoginRequest{Username: "root", Password: "root-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(coord.URL(), sess.Token)
	for _, u := range []string{"bob", "carol"} {
		if _, err := admin.CreateUser(ctx, client.CreateUserRequest{Username: u, Password: u + "-password-1"}); err != nil {
			t.Fatal(err)
		}
	}
	login := func(u string) *client.Client {
		s, err := anon.Login(ctx, client.LoginRequest{Username: u, Password: u + "-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := client.New(coord.URL(), s.Token)
		return c
	}
	bob, carol = login("bob"), login("carol")
	created, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{URL: coord.URL(), Token: created.AgentToken, StateDir: t.TempDir(), Shell: "/bin/sh", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	// The agent listens for terminal requests once it has joined.
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := bob.TerminalOffer(ctx, "dev", client.TerminalOfferRequest{Session: uuid.NewString(), SDP: "v=0"})
		var e *client.Error
		if errors.As(err, &e) && e.Status == http.StatusBadGateway {
			return bob, carol // the agent answered (refusing a bogus offer)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent never listened for terminal requests: %v", err)
		}
	}
}

func dialDirect(t *testing.T, c *client.Client, session string) *termClient {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dc, err := pc.CreateDataChannel(agentterm.DataChannelLabel, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := &termClient{frames: make(chan []byte, 1024), send: dc.Send, close: func() { pc.Close() }}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { tc.frames <- m.Data })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	ans, err := c.TerminalOffer(t.Context(), "dev", client.TerminalOfferRequest{Session: session, SDP: pc.LocalDescription().SDP})
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(15 * time.Second):
		t.Fatal("the data channel did not open")
	}
	return tc
}

func dialRelay(t *testing.T, c *client.Client, session string) *termClient {
	t.Helper()
	conn, err := c.DialTerminalRelay(t.Context(), "dev", "", session)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &termClient{frames: make(chan []byte, 1024)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			tc.frames <- b
		}
	})
	tc.send = func(b []byte) error { return conn.Write(ctx, websocket.MessageBinary, b) }
	tc.close = func() { conn.Close(websocket.StatusNormalClosure, ""); cancel(); wg.Wait() }
	t.Cleanup(tc.close)
	return tc
}

func next(t *testing.T, tc *termClient) (byte, []byte) {
	t.Helper()
	select {
	case f := <-tc.frames:
		typ, p, err := termproto.Split(f)
		if err != nil {
			t.Fatal(err)
		}
		return typ, p
	case <-time.After(15 * time.Second):
		t.Fatal("no frame from the agent")
		return 0, nil
	}
}

func readHello(t *testing.T, tc *termClient) termproto.HelloMsg {
	t.Helper()
	typ, p := next(t, tc)
	var h termproto.HelloMsg
	if typ != termproto.Hello || json.Unmarshal(p, &h) != nil {
		t.Fatalf("first frame %q %q, want hello", typ, p)
	}
	return h
}

// waitOutput reads output frames until want has appeared.
func waitOutput(t *testing.T, tc *termClient, want string) {
	t.Helper()
	var out bytes.Buffer
	for !strings.Contains(out.String(), want) {
		typ, p := next(t, tc)
		switch typ {
		case termproto.Output:
			out.Write(p)
		case termproto.Exit, termproto.Error:
			t.Fatalf("frame %q %q while waiting for %q; output: %q", typ, p, want, out.String())
		}
	}
}

// echoLatency is the median time from sending one keystroke to seeing
// it echoed.
func echoLatency(t *testing.T, tc *termClient) time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := range 20 {
		ch := string(rune('a' + i))
		start := time.Now()
		tc.send(termproto.Frame(termproto.Input, []byte(ch)))
		waitOutput(t, tc, ch)
		ds = append(ds, time.Since(start))
	}
	tc.send(termproto.Frame(termproto.Input, []byte{21})) // ^U: clear the line
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// pingRTT is the median round trip of a ping frame.
func pingRTT(t *testing.T, tc *termClient) time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := range 10 {
		id := fmt.Sprint(i)
		start := time.Now()
		tc.send(termproto.Frame(termproto.Ping, []byte(id)))
		for {
			typ, p := next(t, tc)
			if typ == termproto.Pong && string(p) == id {
				break
			}
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}
