// Package tieredtest sets up what tests of tiered storage need: a fresh
// Postgres database (internal/pgtest; the test binary's TestMain must call
// pgtest.Main), topics placed on broker 1, an instrumented filesystem
// bucket whose requests can be counted, and leader.Managers producing real
// record batches through the real flush and commit.
//
// It lives in internal, not under tiered/, because it wires the writer
// (data-plane/leader) and placement (control-plane/placement) to tiered
// storage: tiered's own packages import nothing from either plane, and
// only their tests reach up through this harness.
package tieredtest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/control-plane/placement"
	"github.com/eddy-streams/eddy/data-plane/leader"
	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Topic to create.
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// Env is one test's world.
type Env struct {
	URL    string
	St     *store.Store
	Dir    string
	FS     *fsbucket.Bucket
	Bucket bucket.Bucket // FS, instrumented into Reg as bucket="fs"
	Reg    *prometheus.Registry
	// Parts maps topic name to its partition ids, by partition number.
	Parts map[string][]int64
	Log   *slog.Logger
}

// New creates the topics and places every partition on broker 1.
func New(t testing.TB, topics ...Topic) *Env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := store.Open(ctx, url, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.EnsureCluster(ctx, "vc-t", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Register(ctx, 1, "127.0.0.1", 1, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc-t", tp.Name, tp.Partitions, tp.Configs); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.PlaceRound(ctx, placement.Assign); err != nil {
		t.Fatal(err)
	}
	md, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{URL: url, St: st, Dir: t.TempDir(), Reg: prometheus.NewRegistry(), Parts: map[string][]int64{},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tp := range md.Topics {
		for _, p := range tp.Partitions {
			if p.LeaderID != 1 {
				t.Fatalf("partition %d placed on %d, want 1", p.ID, p.LeaderID)
			}
			e.Parts[tp.Name] = append(e.Parts[tp.Name], p.ID)
		}
	}
	if e.FS, err = fsbucket.Open(filepath.Join(e.Dir, "objects")); err != nil {
		t.Fatal(err)
	}
	e.Bucket = bucket.Instrument(e.FS, e.Reg, "fs")
	return e
}

// Manager opens a leader.Manager for broker 1 writing to bkt (nil: the
// env's bucket) and makes it lead every partition. It is closed at the
// end of the test. Its configuration is leader.DefaultConfig with the WAL
// in e.Dir/wal and every flush PUT as an object (InlineMaxBytes 0: tiered
// storage works on objects and the index, and its tests flush to make
// them), changed by configure if that is not nil.
func (e *Env) Manager(t testing.TB, configure func(*leader.Config), bkt bucket.Bucket) *leader.Manager {
	t.Helper()
	if bkt == nil {
		bkt = e.Bucket
	}
	cfg := leader.DefaultConfig()
	cfg.BrokerID, cfg.WALDir = 1, filepath.Join(e.Dir, "wal")
	cfg.InlineMaxBytes = 0
	if configure != nil {
		configure(&cfg)
	}
	m, err := leader.Open(cfg, e.St, bkt, e.Log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	// Sync passes over a partition whose Postgres row does not (yet) name
	// this broker at the snapshot's epoch, leaving it unled without an
	// error; a test that appended to it would fail far from the cause.
	poll.Until(t, time.Minute, "broker 1 to lead every partition", func() error {
		md, err := e.St.Snapshot(ctx)
		if err != nil {
			return err
		}
		want := map[int64]int32{}
		for _, tp := range md.Topics {
			for _, p := range tp.Partitions {
				want[p.ID] = p.LeaderEpoch
			}
		}
		if err := m.Sync(ctx, want); err != nil {
			return err
		}
		for id, epoch := range want {
			if m.Partition(id) != nil {
				continue
			}
			st, err := e.St.LoadPartition(ctx, id, time.Time{})
			if err != nil {
				return err
			}
			return fmt.Errorf("%d of %d led; partition %d is not (Postgres: leader %d at epoch %d, snapshot: epoch %d)",
				len(m.Led()), len(want), id, st.LeaderID, st.LeaderEpoch, epoch)
		}
		return nil
	})
	return m
}

// Led returns partition pid of m, failing t if m does not lead it (as
// after a fenced commit): leader.Manager.Partition returns nil then.
func Led(t testing.TB, m *leader.Manager, pid int64) *leader.Partition {
	t.Helper()
	p := m.Partition(pid)
	if p == nil {
		t.Fatalf("partition %d is not led (%d partitions are)", pid, len(m.Led()))
	}
	return p
}

// WaitCommitted waits until partition pid of m has committed every offset
// up to and including last, failing t if that takes more than a minute or
// the partition is lost meanwhile.
func WaitCommitted(t testing.TB, m *leader.Manager, pid, last int64) {
	t.Helper()
	p := Led(t, m, pid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WaitCommitted(ctx, last); err != nil {
		_, hw := p.Offsets()
		t.Fatalf("partition %d: waiting for offset %d to commit: %v (committed high watermark %d)", pid, last, err, hw)
	}
}

// Batch builds a valid magic-2 record batch of n records, each with the
// given key and a value of valueLen bytes, all timestamped tsMs.
func Batch(n int, key []byte, valueLen int, tsMs int64) []byte {
	val := make([]byte, valueLen)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	return batchtest.Build(batchtest.Spec{N: n, Key: key, Value: val, Timestamp: tsMs, ProducerID: -1})
}

// Append appends raw (a fresh slice: the partition keeps it) to the led
// partition pid.
func Append(t testing.TB, m *leader.Manager, pid int64, raw []byte) leader.AppendResult {
	t.Helper()
	p := Led(t, m, pid)
	hdrs, err := batch.Validate(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(raw, hdrs, false)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Requests returns the successful object-store requests of op (put, get,
// get_range, delete, list) made through e.Bucket.
func (e *Env) Requests(t testing.TB, op string) float64 {
	t.Helper()
	mfs, err := e.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eddy_objstore_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "op") == op && label(m, "outcome") == "success" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// GetBytes returns the payload bytes GETs (whole and ranged) returned
// through e.Bucket.
func (e *Env) GetBytes(t testing.TB) float64 {
	t.Helper()
	mfs, err := e.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "eddy_objstore_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if op := label(m, "op"); op == "get" || op == "get_range" {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// BucketBytes returns the number and total size of the objects in the
// bucket directory.
func (e *Env) BucketBytes(t testing.TB) (n int, size int64) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(e.Dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(p)[0] == '.' {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		n++
		size += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

// ReadAll reads partition pid from offset from up to hw through the led
// partition, checking that offsets follow each other, and returns the
// number of records and of bytes (whole batches) delivered.
func ReadAll(t testing.TB, m *leader.Manager, pid, from int64) (records, bytes int64) {
	t.Helper()
	ctx := context.Background()
	p := Led(t, m, pid)
	_, hw := p.Offsets()
	off := from
	for off < hw {
		res, err := p.Read(ctx, off, 1<<20)
		if err != nil {
			t.Fatalf("read partition %d at %d: %v", pid, off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("read partition %d at %d (hw %d): no records", pid, off, hw)
		}
		next := off
		batch.Each(res.Records, func(h batch.Header, raw []byte) bool {
			if h.BaseOffset > next && next != from {
				t.Fatalf("partition %d: gap: batch at %d, want %d", pid, h.BaseOffset, next)
			}
			records += int64(h.NumRecords)
			bytes += int64(len(raw))
			next = h.LastOffset() + 1
			return true
		})
		off = next
	}
	return records, bytes
}

// AppendTxn appends raw, a transactional batch of one producer at epoch 0,
// to the led partition pid as the broker does once the producer's
// transaction was checked: the transaction (transactional id
// "tx<producer id>" of the env's cluster) is Ongoing and holds pid in
// Postgres, so EndTxn can end it.
func (e *Env) AppendTxn(t testing.TB, m *leader.Manager, pid int64, raw []byte) leader.AppendResult {
	t.Helper()
	hdrs, err := batch.Validate(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := hdrs[0].ProducerID
	if err := e.St.OpenTxnForTest(context.Background(), "vc-t", fmt.Sprint("tx", id), id, 0, pid); err != nil {
		t.Fatal(err)
	}
	p := Led(t, m, pid)
	g, _ := p.TxnCheck(id, 0)
	res, err := p.AppendTxn(raw, hdrs, false, g)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// EndTxn ends the transaction of producerID begun by AppendTxn as EndTxn
// would (commit or abort) and has m append its markers; the next flush
// makes them durable.
func (e *Env) EndTxn(t testing.TB, m *leader.Manager, producerID int64, commit bool) {
	t.Helper()
	ctx := context.Background()
	if err := e.St.EndTxnForTest(ctx, "vc-t", fmt.Sprint("tx", producerID), commit, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.SweepMarkers(ctx); err != nil {
		t.Fatal(err)
	}
}
