//go:build windows

package main

import (
	"context"
	"fmt"

	"golang.org/x/sys/windows/svc"
)

// runAsService runs run under the Windows service control manager when
// the process was started as a service (sc.exe create ... binPath=
// "devmesh.exe agent ..."), translating Stop and Shutdown into the
// cancellation of run's context. It reports false when the process is
// not a service, so the caller runs in the foreground as usual.
func runAsService(ctx context.Context, name string, run func(context.Context) error) (bool, error) {
	isService, err := svc.IsWindowsService()
	if err != nil {
		return false, fmt.Errorf("detect the Windows service manager: %w", err)
	}
	if !isService {
		return false, nil
	}
	h := &serviceHandler{ctx: ctx, run: run}
	if err := svc.Run(name, h); err != nil {
		return true, fmt.Errorf("run as the Windows service %s: %w", name, err)
	}
	return true, h.err
}

type serviceHandler struct {
	ctx context.Context
	run func(context.Context) error
	err error // run's result, read after svc.Run returns
}

func (h *serviceHandler) Execute(_ []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			h.err = err
			if err != nil {
				return true, 1
			}
			return false, 0
		case req := <-requests:
			switch req.Cmd {
			case svc.Interrogate:
				status <- req.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
				h.err = <-done
				return false, 0
			}
		}
	}
}
