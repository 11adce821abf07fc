package store

import "context"

// SetHighWatermarkForTest sets a partition's high watermark directly: the
// lag history tests need lag without producing records.
func (s *Store) SetHighWatermarkForTest(ctx context.Context, clusterID, topic string, partition int32, hw int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE partitions p SET high_watermark = $4 FROM topics t
		WHERE p.topic_id = t.id AND t.cluster_id = $1 AND t.name = $2 AND p.partition = $3`, clusterID, topic, partition, hw)
	return err
}
