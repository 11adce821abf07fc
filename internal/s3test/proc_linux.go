package s3test

import (
	"os"
	"syscall"
)

// sysProcAttr puts the server in its own process group, so that kill also
// reaches anything it forks, and has the kernel kill it if the test binary
// dies without running its cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// kill kills the process group that p leads.
func kill(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
