package share

import "time"

// Share sessions (KIP-932) work like fetch sessions: the first ShareFetch
// of a member to a broker (epoch 0) opens one with the partitions it
// names, later requests carry the next epoch and only the partitions they
// add (Topics) or drop (ForgottenTopicsData), and epoch -1 closes it,
// releasing what the member still holds there. A session idle for a
// member's session timeout is dropped the same way.

// SessionKey names a member's share session on this broker.
type SessionKey struct{ Cluster, Group, Member string }

// TP names a partition by topic id.
type TP struct {
	Topic     [16]byte
	Partition int32
}

type session struct {
	id    uint64 // tells a session from a later one of the same key
	epoch int32  // expected next
	parts map[TP]struct{}
	order []TP // in the order added, for stable responses
	used  time.Time
}

func (s *session) add(tps []TP) {
	for _, tp := range tps {
		if _, ok := s.parts[tp]; !ok {
			s.parts[tp] = struct{}{}
			s.order = append(s.order, tp)
		}
	}
}

func (s *session) forget(tps []TP) {
	for _, tp := range tps {
		delete(s.parts, tp)
	}
	kept := s.order[:0]
	for _, tp := range s.order {
		if _, ok := s.parts[tp]; ok {
			kept = append(kept, tp)
		}
	}
	s.order = kept
}

func (s *session) list() []TP { return append([]TP(nil), s.order...) }

// Session applies a request's session part: epoch 0 opens (or replaces)
// the member's session with add, a positive epoch must be the one
// expected and updates it, -1 closes it (the caller then calls Close). It
// returns the session's partitions after the update and its id (for
// CloseIf). fetch is false for ShareAcknowledge, which may not open a
// session.
func (ps *Partitions) Session(k SessionKey, epoch int32, add, forget []TP, fetch bool) ([]TP, uint64, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := ps.sessions[k]
	switch {
	case epoch == 0 && fetch:
		if s == nil && (len(ps.sessions) >= ps.cfg.MaxSessions || ps.clusterSessions[k.Cluster] >= ps.maxClusterSessions()) {
			return nil, 0, ErrSessionLimit
		}
		if ps.tooMany(nil, add, forget) {
			return nil, 0, ErrSessionLimit
		}
		ps.lastID++
		if s == nil {
			ps.clusterSessions[k.Cluster]++
		}
		s = &session{id: ps.lastID, parts: make(map[TP]struct{})}
		ps.sessions[k] = s
	case epoch == 0 || epoch < -1:
		return nil, 0, ErrInvalidSessionEpoch
	case s == nil:
		return nil, 0, ErrSessionNotFound
	case epoch == -1:
	case epoch != s.epoch:
		return nil, 0, ErrInvalidSessionEpoch
	case ps.tooMany(s.parts, add, forget):
		// Refused whole, the session as it was: the member may retry
		// with fewer partitions at the same epoch.
		return nil, 0, ErrSessionLimit
	}
	s.add(add)
	s.forget(forget)
	s.epoch = max(1, epoch+1) // wraps from MaxInt32 to 1, as in Kafka
	s.used = time.Now()
	return s.list(), s.id, nil
}

// maxClusterSessions is the share sessions one virtual cluster may hold:
// half the broker's, so one tenant cannot use up the pool.
func (ps *Partitions) maxClusterSessions() int { return max(ps.cfg.MaxSessions/2, 1) }

// tooMany reports whether a session of parts would hold more than
// MaxSessionPartitions after adding add and forgetting forget.
func (ps *Partitions) tooMany(parts map[TP]struct{}, add, forget []TP) bool {
	limit := ps.cfg.MaxSessionPartitions
	if limit <= 0 || len(parts)+len(add) <= limit {
		return false
	}
	after := make(map[TP]struct{}, len(parts)+len(add))
	for tp := range parts {
		after[tp] = struct{}{}
	}
	for _, tp := range add {
		after[tp] = struct{}{}
	}
	for _, tp := range forget {
		delete(after, tp)
	}
	return len(after) > limit
}

// removeSession deletes the session of k; ps.mu is held.
func (ps *Partitions) removeSession(k SessionKey) {
	if _, ok := ps.sessions[k]; !ok {
		return
	}
	delete(ps.sessions, k)
	if ps.clusterSessions[k.Cluster]--; ps.clusterSessions[k.Cluster] <= 0 {
		delete(ps.clusterSessions, k.Cluster)
	}
}

// Close ends the member's share session, releasing the records it holds in
// the session's share-partitions.
func (ps *Partitions) Close(k SessionKey) { ps.CloseIf(k, 0) }

// CloseIf is Close if the session is still the one of id (0: any): the
// connection a session was opened on closed, as Kafka ties a share session
// to its connection, unless the member opened a new one since.
func (ps *Partitions) CloseIf(k SessionKey, id uint64) {
	ps.mu.Lock()
	s := ps.sessions[k]
	if s == nil || (id != 0 && s.id != id) {
		ps.mu.Unlock()
		return
	}
	ps.removeSession(k)
	ps.mu.Unlock()
	for _, tp := range s.order {
		ps.release(Key{k.Cluster, k.Group, tp.Topic, tp.Partition}, k.Member)
	}
}
