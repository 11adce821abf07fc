//go:build unix && !linux

package pgserver

import "syscall"

// Without Pdeathsig outside Linux, a postgres whose caller was killed keeps
// running; stop it with `pg_ctl -D dir stop`.
func serverProcAttr(owner *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: owner.credential(), Setpgid: true}
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

func isPostgres(pid int) bool { return true }
