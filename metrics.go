// Prometheus metrics under upstream's names, registered only when a program
// asks for them.

package litestream

import (
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/superfly/ltx"
)

// Metrics holds the library's Prometheus collectors, under upstream's
// metric names. Nothing is registered unless a program creates Metrics on a
// registry of its own and hands it to Store.SetMetrics or DB.SetMetrics.
type Metrics struct {
	dbSize               *prometheus.GaugeVec
	walSize              *prometheus.GaugeVec
	totalWALBytes        *prometheus.CounterVec
	txid                 *prometheus.GaugeVec
	syncCount            *prometheus.CounterVec
	syncErrorCount       *prometheus.CounterVec
	syncSeconds          *prometheus.CounterVec
	diskFull             *prometheus.GaugeVec
	checkpointCount      *prometheus.CounterVec
	checkpointErrorCount *prometheus.CounterVec
	checkpointSeconds    *prometheus.CounterVec
	compactionVerifyErr  *prometheus.CounterVec
	l0RetentionFiles     *prometheus.CounterVec
	lagSeconds           *prometheus.GaugeVec
	lagTXIDs             *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	db := []string{"db"}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		dbSize:               gauge("litestream_db_size", "Database file size in bytes after the last sync.", db),
		walSize:              gauge("litestream_wal_size", "Logical WAL size in bytes covered by the last sync.", db),
		totalWALBytes:        counter("litestream_total_wal_bytes", "WAL bytes captured into L0 files.", db),
		txid:                 gauge("litestream_txid", "Current local TXID.", db),
		syncCount:            counter("litestream_sync_count", "Sync operations.", db),
		syncErrorCount:       counter("litestream_sync_error_count", "Failed sync operations.", db),
		syncSeconds:          counter("litestream_sync_seconds", "Time spent syncing.", db),
		diskFull:             gauge("litestream_disk_full", "1 if the last sync failed on a full disk.", db),
		checkpointCount:      counter("litestream_checkpoint_count", "Checkpoints.", []string{"db", "mode"}),
		checkpointErrorCount: counter("litestream_checkpoint_error_count", "Failed checkpoints.", []string{"db", "mode"}),
		checkpointSeconds:    counter("litestream_checkpoint_seconds", "Time spent checkpointing.", []string{"db", "mode"}),
		compactionVerifyErr:  counter("litestream_compaction_verify_error_count", "Failed compaction verifications.", db),
		l0RetentionFiles:     counter("litestream_l0_retention_files_total", "L0 files deleted by retention.", []string{"db", "status"}),
		lagSeconds:           gauge("litestream_replication_lag_seconds", "Age of the oldest local L0 file not yet on the replica, or if longer, how long replica syncs have failed; 0 when caught up.", db),
		lagTXIDs:             gauge("litestream_replication_lag_txids", "Local TXIDs not yet on the replica.", db),
	}
	for _, c := range []prometheus.Collector{
		m.dbSize, m.walSize, m.totalWALBytes, m.txid, m.syncCount, m.syncErrorCount, m.syncSeconds, m.diskFull,
		m.checkpointCount, m.checkpointErrorCount, m.checkpointSeconds, m.compactionVerifyErr, m.l0RetentionFiles,
		m.lagSeconds, m.lagTXIDs,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// dbMetrics are a DB's labelled view of Metrics; nil records nothing.
type dbMetrics struct {
	m    *Metrics
	name string
}

// SetMetrics makes the DB record into m; nil stops recording. The position
// and lag gauges follow the DB's events.
func (db *DB) SetMetrics(m *Metrics) {
	db.lazyInit()
	db.metricsMu.Lock()
	defer db.metricsMu.Unlock()
	if db.stopMetricsWatch != nil {
		db.stopMetricsWatch()
		db.stopMetricsWatch = nil
	}
	if m == nil {
		db.metrics = nil
		return
	}
	dm := &dbMetrics{m: m, name: db.path}
	db.metrics = dm
	db.compactor.CompactionVerifyErrorCounter = m.compactionVerifyErr.WithLabelValues(db.path)
	db.stopMetricsWatch = db.events.watch(func(e Event) { dm.observeEvent(db, e) })
}

// SetMetrics makes every DB of the store record into m.
func (s *Store) SetMetrics(m *Metrics) {
	for _, db := range s.DBs() {
		db.SetMetrics(m)
	}
}

func (dm *dbMetrics) observeSync(db *DB, start time.Time, err error) {
	if dm == nil {
		return
	}
	m := dm.m
	m.syncCount.WithLabelValues(dm.name).Inc()
	m.syncSeconds.WithLabelValues(dm.name).Add(time.Since(start).Seconds())
	full := 0.0
	if err != nil {
		m.syncErrorCount.WithLabelValues(dm.name).Inc()
		if isDiskFullError(err) {
			full = 1
		}
	}
	m.diskFull.WithLabelValues(dm.name).Set(full)
	if size, err := fileSize(db.path); err == nil {
		m.dbSize.WithLabelValues(dm.name).Set(float64(size))
	}
	m.walSize.WithLabelValues(dm.name).Set(float64(db.lastSyncedWALOffset))
	if pos, err := db.Pos(); err == nil {
		m.txid.WithLabelValues(dm.name).Set(float64(pos.TXID))
	}
	dm.observeLag(db)
}

func (dm *dbMetrics) observeWALBytes(n int64) {
	if dm == nil {
		return
	}
	dm.m.totalWALBytes.WithLabelValues(dm.name).Add(float64(n))
}

func (dm *dbMetrics) observeCheckpoint(db *DB, mode string, start time.Time, err error) {
	if dm == nil {
		return
	}
	dm.m.checkpointCount.WithLabelValues(dm.name, mode).Inc()
	dm.m.checkpointSeconds.WithLabelValues(dm.name, mode).Add(time.Since(start).Seconds())
	if err != nil {
		dm.m.checkpointErrorCount.WithLabelValues(dm.name, mode).Inc()
	}
}

func (dm *dbMetrics) observeL0Retention(db *DB, deleted int) {
	if dm == nil {
		return
	}
	dm.m.l0RetentionFiles.WithLabelValues(filepath.Base(db.path), "eligible").Add(float64(deleted))
}

// observeEvent updates the lag gauges from one of the DB's replica events.
// A written L0 file is recorded by observeSync, which follows every sync.
func (dm *dbMetrics) observeEvent(db *DB, e Event) {
	switch e.Type {
	case EventUploaded:
		dm.observeUploaded(db, e.MaxTXID)
	case EventStalled, EventRecovered, eventReplicaPos:
		dm.observeLag(db)
	}
}

// observeUploaded is observeLag for one uploaded file, without its file
// stat: a batch publishes an event per file.
func (dm *dbMetrics) observeUploaded(db *DB, txid ltx.TXID) {
	pos, err := db.Pos()
	if err != nil {
		return
	}
	behind := float64(0)
	if pos.TXID > txid {
		behind = float64(pos.TXID - txid)
	} else {
		dm.m.lagSeconds.WithLabelValues(dm.name).Set(0)
	}
	dm.m.lagTXIDs.WithLabelValues(dm.name).Set(behind)
}

// observeLag sets the lag gauges from the local and replica positions.
func (dm *dbMetrics) observeLag(db *DB) {
	if dm == nil || db.Replica == nil {
		return
	}
	pos, err := db.Pos()
	if err != nil {
		return
	}
	// The last known position: a failed sync zeroes Pos to list again.
	remote := db.Replica.knownTXID()
	if pos.TXID <= remote {
		dm.m.lagTXIDs.WithLabelValues(dm.name).Set(0)
		dm.m.lagSeconds.WithLabelValues(dm.name).Set(0)
		return
	}
	dm.m.lagTXIDs.WithLabelValues(dm.name).Set(float64(pos.TXID - remote))
	// The oldest L0 file not yet uploaded has waited since it was written;
	// if it is gone, the replica has waited at least since syncs failed.
	var lag time.Duration
	if fi, err := os.Stat(db.LTXPath(0, remote+1, remote+1)); err == nil {
		lag = time.Since(fi.ModTime())
	}
	if since, _, _ := db.Replica.health(); !since.IsZero() {
		lag = max(lag, time.Since(since))
	}
	dm.m.lagSeconds.WithLabelValues(dm.name).Set(lag.Seconds())
}
