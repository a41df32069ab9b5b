package sshd

import (
	"fmt"
	"log/slog"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
)

// session serves one "session" channel (RFC 4254 section 6): it collects
// the pty, env and agent requests, then runs one shell, command or
// subsystem, and reports how it ended.
//
// All fields are owned by the goroutine running run; the goroutines of the
// command only see what was fixed before it started.
type session struct {
	c   *conn
	ch  gossh.Channel
	log *slog.Logger

	env   []string    // from "env" requests
	pty   *ptyRequest // from "pty-req"; nil without a terminal
	win   windowChange
	agent bool // "auth-agent-req@openssh.com" seen

	started bool
	proc    *process       // the command; nil before start and for sftp
	fwd     *agentListener // nil unless agent forwarding is active
	done    <-chan struct{}
	result  func() exitInfo // valid once done is closed
	stop    func()          // ends the command early and waits for it
}

// run serves the channel's requests until the client closes the channel
// or the connection dies, then stops whatever is still running.
func (ss *session) run(reqs <-chan *gossh.Request) {
	defer ss.ch.Close()
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				ss.teardown()
				return
			}
			ss.handle(req)
		case <-ss.done: // nil, so never ready, until the command starts
			ss.done = nil
			ss.sendExit(ss.result())
		}
	}
}

func (ss *session) handle(req *gossh.Request) {
	ok := false
	switch req.Type {
	case "pty-req":
		if p, valid := parsePtyRequest(req.Payload); valid && !ss.started && ss.pty == nil {
			ss.pty, ss.win, ok = p, p.window(), true
		}
	case "window-change":
		var w windowChange
		if gossh.Unmarshal(req.Payload, &w) == nil {
			ss.win, ok = w, true
			if ss.proc != nil {
				ok = ss.proc.resize(w) == nil
			}
		}
	case "env":
		var kv struct{ Name, Value string }
		if gossh.Unmarshal(req.Payload, &kv) == nil && !ss.started {
			ss.env, ok = append(ss.env, kv.Name+"="+kv.Value), true
		}
	case "auth-agent-req@openssh.com":
		if !ss.started {
			ss.agent, ok = true, true
		}
	case "signal":
		var p struct{ Signal string }
		if gossh.Unmarshal(req.Payload, &p) == nil && ss.proc != nil {
			if sig, known := signals[gossh.Signal(p.Signal)]; known {
				ok = ss.proc.signal(sig) == nil
			}
		}
	case "shell", "exec", "subsystem":
		var p struct{ Value string }
		if ss.started || (req.Type != "shell" && gossh.Unmarshal(req.Payload, &p) != nil) {
			break
		}
		if req.Type == "subsystem" && p.Value != "sftp" {
			ss.log.Info("ssh: unsupported subsystem", "name", p.Value)
			break
		}
		ss.started = true
		_ = req.Reply(true, nil) // before any output the command produces
		ss.start(req.Type, p.Value)
		return
	}
	// Everything else (x11-req, break, keepalive@openssh.com, ...) is
	// refused; a refusal is also a valid keepalive answer.
	_ = req.Reply(ok, nil)
}

// start runs the shell, command or subsystem. A failure is reported to the
// client like a shell would: a message on stderr and exit status 127.
func (ss *session) start(kind, arg string) {
	if kind == "subsystem" {
		ss.startSFTP()
		return
	}
	ss.log.Info("ssh: session started", "type", kind, "pty", ss.pty != nil)
	err := ss.startProcess(kind == "shell", arg)
	if err == nil {
		return
	}
	ss.log.Warn("ssh: cannot start command", "err", err)
	fmt.Fprintf(ss.ch.Stderr(), "devmesh: %v\r\n", err)
	done := make(chan struct{})
	close(done)
	ss.done, ss.result, ss.stop = done, func() exitInfo { return exitInfo{code: 127} }, func() {}
}

func (ss *session) startProcess(login bool, cmdline string) error {
	s := ss.c.s
	extra := connEnv(ss.c.ssh.RemoteAddr(), ss.c.ssh.LocalAddr())
	if ss.agent {
		fwd, err := ss.c.listenAgent()
		if err != nil {
			ss.log.Warn("ssh: agent forwarding unavailable", "err", err)
			fmt.Fprintf(ss.ch.Stderr(), "devmesh: %v\r\n", err)
		} else {
			ss.fwd = fwd
			extra = append(extra, "SSH_AUTH_SOCK="+fwd.path)
		}
	}
	cmd := shellCommand(s.shell, login, cmdline)
	cmd.Dir = workDir(s.opts.Dir, s.account.home)
	if ss.pty != nil {
		term := ss.pty.Term
		if term == "" {
			term = "xterm"
		}
		extra = append(extra, "TERM="+term)
	}
	cmd.Env = mergeEnv(s.baseEnv, s.opts.Env, ss.env, extra)
	var err error
	if ss.pty == nil {
		ss.proc, err = startPipes(&s.wg, cmd, ss.ch)
	} else {
		ss.proc, err = startPTY(&s.wg, cmd, ss.ch, ss.pty, ss.win)
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", s.shell, err)
	}
	p := ss.proc
	ss.done, ss.result, ss.stop = p.done, func() exitInfo { return p.exit }, p.terminate
	return nil
}

// startSFTP serves the SFTP subsystem in-process, as the agent's user.
func (ss *session) startSFTP() {
	ss.log.Info("ssh: sftp session started")
	dir := workDir(ss.c.s.opts.Dir, ss.c.s.account.home)
	srv, err := sftp.NewServer(ss.ch, sftp.WithServerWorkingDirectory(dir))
	done := make(chan struct{})
	code := 0
	if err != nil {
		ss.log.Warn("ssh: sftp", "err", err)
		code = 1
		close(done)
	} else {
		ss.c.s.wg.Go(func() {
			// Serve returns at the client's EOF or when the channel closes.
			if err := srv.Serve(); err != nil {
				ss.log.Debug("ssh: sftp ended", "err", err)
				code = 1
			}
			close(done)
		})
	}
	ss.done, ss.result, ss.stop = done, func() exitInfo { return exitInfo{code: code} }, func() { <-done }
}

// sendExit reports the end of the command and closes the channel, in the
// order OpenSSH uses: EOF, exit-status or exit-signal, close.
func (ss *session) sendExit(e exitInfo) {
	ss.log.Info("ssh: session ended", "status", e.code, "signal", e.signal)
	_ = ss.ch.CloseWrite()
	if e.signal != "" {
		msg := struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: e.signal, CoreDumped: e.coreDumped}
		_, _ = ss.ch.SendRequest("exit-signal", false, gossh.Marshal(&msg))
	} else {
		_, _ = ss.ch.SendRequest("exit-status", false, gossh.Marshal(&struct{ Status uint32 }{uint32(e.code)}))
	}
	_ = ss.ch.Close()
}

// teardown runs when the channel is gone: it stops a command that is still
// running (the client vanished or closed the channel early) and releases
// the agent socket.
func (ss *session) teardown() {
	if ss.done != nil { // started, and no exit sent yet
		select {
		case <-ss.done:
		default:
			ss.log.Info("ssh: channel closed before the command ended, stopping it")
		}
	}
	if ss.stop != nil {
		ss.stop()
	}
	if ss.fwd != nil {
		ss.fwd.close()
	}
}
