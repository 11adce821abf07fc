package pgserver

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// serverProcAttr runs postgres as owner (if any), in its own process group
// so a terminal's Ctrl-C reaches only the caller, which then stops postgres
// in its own order, and with SIGQUIT (immediate shutdown) as its
// parent-death signal. Go sets the death signal after switching user, so
// the credential change does not clear it.
func serverProcAttr(owner *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner.credential(), Setpgid: true, Pdeathsig: syscall.SIGQUIT}
}

func initdbProcAttr(owner *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner.credential()}
}

func (o *osUser) credential() *syscall.Credential {
	if o == nil {
		return nil
	}
	return &syscall.Credential{Uid: o.uid, Gid: o.gid, Groups: o.groups}
}

// isPostgres reports whether pid runs the postgres executable.
func isPostgres(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return true // cannot tell; assume the worst
	}
	return strings.TrimSpace(string(b)) == "postgres"
}
