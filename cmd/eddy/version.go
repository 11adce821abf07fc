package main

import "runtime/debug"

// version and revision name the build; the image build sets them at link
// time (-ldflags "-X main.version=... -X main.revision=..."), so that a
// binary built without VCS stamping (GOFLAGS=-buildvcs=false, -trimpath)
// still knows what it is.
var version, revision string

// versionString is what eddy --version prints after "eddy ".
func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	if revision != "" {
		v += " (" + revision + ")"
	}
	return v
}
