package broker

// The load report: what the quota package metered, for the heartbeat.

// loadReport is the heartbeat's payload.
func (s *Server) loadReport() []byte {
	slots := 0
	if v := s.view.Load(); v != nil {
		for _, sl := range v.slots {
			if sl.LeaderID == s.cfg.ID {
				slots++
			}
		}
	}
	led := map[int64]bool{}
	for _, id := range s.lead.Led() {
		led[id] = true
	}
	r := s.meter.Report(led, slots)
	s.quotas.ObserveLocal(r) // this broker's own share of traffic, for its quotas
	return r.Marshal()
}
