package group

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Regular-expression subscriptions (KIP-848's SubscribedTopicRegex).
//
// A member may subscribe by names, by one regex, or both; its subscription
// is the union. The group resolves each distinct regex of its members
// against the cluster's topics (Topics.Names: internal topics and topics
// the heartbeating member may not DESCRIBE are left out, as Kafka 4.x
// authorizes a resolution with the context of the member whose heartbeat
// triggers it) and keeps the result; the assignors only ever see names.
//
// Work is bounded: a regex new to the group is resolved on the heartbeat
// that brings it; all of a group's regexes are resolved again on a
// heartbeat that sees other topic metadata (Topics.Version) once
// Config.ConsumerRegexRefreshInterval has passed since the last
// resolution, never on every heartbeat. A resolution that changes a
// member's topics bumps the group epoch, so partitions of a topic created
// after the member joined are assigned within one interval and a
// heartbeat.
//
// Syntax: Kafka compiles with RE2/J, a port of Go's regexp, so Go's RE2
// accepts the same language; as in Kafka the regex must match the whole
// topic name (it is anchored at both ends). Differences accepted: RE2/J's
// Java-specific flags (CASE_INSENSITIVE and such passed by API) do not
// exist on the wire anyway; Unicode class names follow Go's tables, which
// may know newer scripts than the JDK's. An invalid regex, one longer than
// Config.ConsumerMaxRegexLength, or one more than Config.ConsumerMaxRegexes
// distinct regexes in a group fails with INVALID_REGULAR_EXPRESSION.

// Topics is the request's view of its virtual cluster's topics.
type Topics struct {
	// Lookup resolves a subscribed topic name.
	Lookup TopicLookup
	// Names lists the topics a regex may match: every topic of the cluster
	// except internal ones and those the member may not DESCRIBE. It is
	// called on the owner loop, at most once per heartbeat and only when a
	// resolution is due; nil means no topics.
	Names func() []string
	// Version identifies the topic metadata Names reads; a different value
	// means topics may have been created or deleted since.
	Version uint64
}

// compileRegex compiles a SubscribedTopicRegex with Kafka's full-match
// semantics. It runs on the handler's goroutine, off the loop.
func (c *Coordinator) compileRegex(pattern string) (*regexp.Regexp, string) {
	if len(pattern) > c.cfg.ConsumerMaxRegexLength {
		return nil, fmt.Sprintf("the regular expression is longer than %d bytes", c.cfg.ConsumerMaxRegexLength)
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, "invalid regular expression: " + err.Error()
	}
	return re, ""
}

// resolvedRegex is one regex of a group with the topics it matched at its
// last resolution (sorted).
type resolvedRegex struct {
	re     *regexp.Regexp
	topics []string
}

// admitRegex reports whether the group may take pattern for member self
// (nil: a new member): a member already uses it, or the group has room for
// one more distinct regex once self's own, which it replaces, is left out.
func (c *Coordinator) admitRegex(cg *consumerGroup, self *cmember, pattern string) bool {
	inUse := map[string]bool{}
	for _, m := range cg.members {
		if m.regex == pattern {
			return true
		}
		if m.regex != "" && m != self {
			inUse[m.regex] = true
		}
	}
	return len(inUse) < c.cfg.ConsumerMaxRegexes
}

// updateRegexes resolves the group's regexes that are due (see above),
// drops those no member uses, and refreshes the subscription of every
// member with a regex. It reports whether any member's topics changed;
// the caller then bumps the group epoch. It runs on the loop.
func (c *Coordinator) updateRegexes(cg *consumerGroup, src Topics, compiled *regexp.Regexp, now time.Time) bool {
	inUse := map[string]bool{}
	for _, m := range cg.members {
		if m.regex != "" {
			inUse[m.regex] = true
		}
	}
	for p := range cg.regexes {
		if !inUse[p] {
			delete(cg.regexes, p)
		}
	}
	if len(inUse) == 0 {
		return false
	}
	stale := src.Version != cg.regexVersion && now.Sub(cg.regexAt) >= c.cfg.ConsumerRegexRefreshInterval
	var names []string
	listed := false
	list := func() []string {
		if !listed && src.Names != nil {
			names = src.Names()
		}
		listed = true
		return names
	}
	for p := range inUse {
		r := cg.regexes[p]
		if r != nil && !stale {
			continue
		}
		if r == nil {
			re := compiled
			if re == nil || re.String() != "^(?:"+p+")$" {
				// A regex loaded from the store: compiled when first
				// needed; it was valid when it was stored.
				var msg string
				if re, msg = c.compileRegex(p); re == nil {
					c.log.Warn("stored subscription regex no longer compiles", "regex", p, "err", msg)
					continue
				}
			}
			r = &resolvedRegex{re: re}
			cg.regexes[p] = r
		}
		var out []string
		for _, n := range list() {
			if r.re.MatchString(n) {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		r.topics = out
	}
	if stale {
		cg.regexAt, cg.regexVersion = now, src.Version
	}
	changed := false
	for _, m := range cg.members {
		if m.regex == "" {
			continue
		}
		var matched []string
		if r := cg.regexes[m.regex]; r != nil {
			matched = r.topics
		}
		if !slices.Equal(matched, m.matched) {
			m.matched = matched
			if m.updateSubscribed() {
				changed = true
			}
		}
	}
	return changed
}

// updateSubscribed recomputes the member's subscription, its names and
// what its regex matched, and reports whether it changed.
func (m *cmember) updateSubscribed() bool {
	subs := make([]string, 0, len(m.names)+len(m.matched))
	subs = append(subs, m.names...)
	subs = append(subs, m.matched...)
	slices.Sort(subs)
	subs = slices.Compact(subs)
	if slices.Equal(subs, m.subscribed) {
		return false
	}
	m.subscribed = subs
	return true
}
