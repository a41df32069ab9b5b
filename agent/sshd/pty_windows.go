package sshd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"unicode/utf16"
	"unsafe"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/windows"
)

// ptyMaster is a ConPTY pseudo console: the session writes the client's
// input to in and reads the terminal's output, as VT sequences, from out.
// Terminal modes from the client do not apply: ConPTY has none to set.
type ptyMaster struct {
	hpc         windows.Handle
	in          *os.File // write end of the console's input pipe
	out         *os.File // read end of the console's output pipe
	consoleOnce sync.Once
}

// newConPTY creates a pseudo console of the given size.
func newConPTY(win windowChange) (*ptyMaster, error) {
	var inR, inW, outR, outW windows.Handle
	if err := windows.CreatePipe(&inR, &inW, nil, 0); err != nil {
		return nil, fmt.Errorf("create console input pipe: %w", err)
	}
	if err := windows.CreatePipe(&outR, &outW, nil, 0); err != nil {
		closeHandles(inR, inW)
		return nil, fmt.Errorf("create console output pipe: %w", err)
	}
	var hpc windows.Handle
	err := windows.CreatePseudoConsole(consoleSize(win), inR, outW, 0, &hpc)
	closeHandles(inR, outW) // the console holds its own copies
	if err != nil {
		closeHandles(inW, outR)
		return nil, fmt.Errorf("create pseudo console: %w", err)
	}
	return &ptyMaster{
		hpc: hpc,
		in:  os.NewFile(uintptr(inW), "conpty-input"),
		out: os.NewFile(uintptr(outR), "conpty-output"),
	}, nil
}

func (m *ptyMaster) resize(w windowChange) error {
	return windows.ResizePseudoConsole(m.hpc, consoleSize(w))
}

// closeConsole closes the pseudo console, which ends the processes still
// attached to it; out reaches EOF once the last output is read.
func (m *ptyMaster) closeConsole() {
	m.consoleOnce.Do(func() { windows.ClosePseudoConsole(m.hpc) })
}

// Close closes the console and both pipes.
func (m *ptyMaster) Close() error {
	m.closeConsole()
	return errors.Join(m.in.Close(), m.out.Close())
}

// consoleSize converts a window size to a console size, clamped to what a
// console accepts.
func consoleSize(w windowChange) windows.Coord {
	clamp := func(v uint32) int16 { return int16(min(max(v, 1), 0x7fff)) }
	return windows.Coord{X: clamp(w.Columns), Y: clamp(w.Rows)}
}

// startPTY starts cmd attached to a new pseudo console (ConPTY).
func startPTY(wg *sync.WaitGroup, cmd *exec.Cmd, ch gossh.Channel, _ *ptyRequest, win windowChange) (*process, error) {
	m, err := newConPTY(win)
	if err != nil {
		return nil, err
	}
	proc, err := startOnConsole(cmd, m.hpc)
	if err != nil {
		m.Close()
		return nil, err
	}
	p := newProcess(proc, func() *os.ProcessState {
		state, _ := proc.Wait()
		// The console outlives its last process; closing it flushes the
		// remaining output and ends out.
		m.closeConsole()
		return state
	})
	p.pty = m
	wg.Go(func() { _, _ = io.Copy(m.in, ch) })
	var out sync.WaitGroup
	out.Go(func() { _, _ = io.Copy(ch, m.out) })
	wg.Go(func() { p.wait(&out, m.out) })
	return p, nil
}

// startOnConsole starts cmd (its Path, Args or SysProcAttr.CmdLine, Env and
// Dir) with the pseudo console hpc as its console.
func startOnConsole(cmd *exec.Cmd, hpc windows.Handle) (*os.Process, error) {
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	line := windows.ComposeCommandLine(cmd.Args)
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.CmdLine != "" {
		line = cmd.SysProcAttr.CmdLine
	}
	app, err := windows.UTF16PtrFromString(cmd.Path)
	if err != nil {
		return nil, err
	}
	cmdline, err := windows.UTF16PtrFromString(line)
	if err != nil {
		return nil, err
	}
	var dir *uint16
	if cmd.Dir != "" {
		if dir, err = windows.UTF16PtrFromString(cmd.Dir); err != nil {
			return nil, err
		}
	}
	env, err := envBlock(cmd.Env)
	if err != nil {
		return nil, err
	}
	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return nil, err
	}
	defer attrs.Delete()
	// The attribute's value is the console handle itself, not a pointer
	// to it; reading it as a pointer keeps vet's unsafeptr check quiet.
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, *(*unsafe.Pointer)(unsafe.Pointer(&hpc)), unsafe.Sizeof(hpc)); err != nil {
		return nil, err
	}
	si := &windows.StartupInfoEx{ProcThreadAttributeList: attrs.List()}
	si.Cb = uint32(unsafe.Sizeof(*si))
	// No standard handles: the child must use the pseudo console, not
	// whatever the agent's own standard handles are.
	si.Flags = windows.STARTF_USESTDHANDLES
	var pi windows.ProcessInformation
	flags := uint32(windows.EXTENDED_STARTUPINFO_PRESENT | windows.CREATE_UNICODE_ENVIRONMENT)
	if err := windows.CreateProcess(app, cmdline, nil, nil, false, flags, env, dir, &si.StartupInfo, &pi); err != nil {
		return nil, err
	}
	defer closeHandles(pi.Thread, pi.Process)
	// FindProcess opens its own handle; ours keeps the pid from being
	// reused until then.
	proc, err := os.FindProcess(int(pi.ProcessId))
	if err != nil {
		_ = windows.TerminateProcess(pi.Process, 1)
		return nil, err
	}
	return proc, nil
}

// envBlock encodes env as a CreateProcess environment block.
func envBlock(env []string) (*uint16, error) {
	var b []uint16
	for _, kv := range env {
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, errors.New("environment variable contains NUL")
		}
		b = append(b, utf16.Encode([]rune(kv))...)
		b = append(b, 0)
	}
	b = append(b, 0)
	if len(env) == 0 {
		b = append(b, 0)
	}
	return &b[0], nil
}

func closeHandles(hs ...windows.Handle) {
	for _, h := range hs {
		_ = windows.CloseHandle(h)
	}
}
