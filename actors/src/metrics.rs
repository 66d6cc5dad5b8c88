//! Metric names and their descriptions, registered at start-up so that every
//! family is exported (at zero) before it is first used.

use crate::domain::Reason;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};

pub const EVENTS_CONSUMED: &str = "touchline_events_consumed_total";
pub const EVENTS_APPLIED: &str = "touchline_events_applied_total";
pub const EVENTS_REJECTED: &str = "touchline_events_rejected_total";
pub const EVENTS_LATE: &str = "touchline_events_late_total";
pub const EVENTS_DUPLICATE: &str = "touchline_events_duplicate_total";
pub const EVENTS_REROUTED: &str = "touchline_events_rerouted_total";
pub const PARTITION_LAG: &str = "touchline_partition_lag";
pub const PARTITION_APPLIED_OFFSET: &str = "touchline_partition_applied_offset";
pub const PARTITION_WATERMARK: &str = "touchline_partition_watermark_seconds";
pub const ACTORS_ACTIVE: &str = "touchline_actors_active";
pub const ACTOR_RESTARTS: &str = "touchline_actor_restarts_total";
pub const ACTORS_PASSIVATED: &str = "touchline_actors_passivated_total";
pub const HTTP_DURATION: &str = "touchline_http_request_duration_seconds";
pub const MERGES: &str = "touchline_identity_merges_total";
pub const MERGE_BLOCKED: &str = "touchline_identity_merge_blocked_total";
pub const PROBABILISTIC_LINKS: &str = "touchline_identity_probabilistic_links";
pub const BATCH_DURATION: &str = "touchline_batch_apply_duration_seconds";
pub const ROCKSDB_LIVE_BYTES: &str = "touchline_rocksdb_live_bytes";
pub const ROCKSDB_KEYS: &str = "touchline_rocksdb_estimated_keys";
pub const ROCKSDB_MEMORY: &str = "touchline_rocksdb_memory_bytes";
pub const PROCESS_RESIDENT: &str = "touchline_process_resident_bytes";

/// Kinds of RocksDB memory (label `kind` of [`ROCKSDB_MEMORY`]).
pub const ROCKSDB_MEMORY_KINDS: [&str; 4] = ["block_cache", "block_cache_pinned", "memtables", "table_readers"];
pub const PARTITIONS_ASSIGNED: &str = "touchline_partitions_assigned";
pub const REBALANCES: &str = "touchline_rebalances_total";
pub const PARTITION_STATE: &str = "touchline_partition_state";
pub const RESTORE_REMAINING: &str = "touchline_restore_remaining_records";
pub const FORWARDED: &str = "touchline_forwarded_requests_total";
pub const CHANGELOG_RECORDS: &str = "touchline_changelog_records_total";
pub const CHANGELOG_ERRORS: &str = "touchline_changelog_errors_total";
pub const RESULTS_RECORDS: &str = "touchline_results_records_total";
pub const RESULTS_ERRORS: &str = "touchline_results_errors_total";
pub const RESTORES: &str = "touchline_restores_total";
pub const RESTORED_RECORDS: &str = "touchline_restore_records_total";
pub const RESTORED_BYTES: &str = "touchline_restore_bytes_total";
pub const RESTORE_DURATION: &str = "touchline_restore_duration_seconds";
pub const RESTORE_RATE: &str = "touchline_restore_rate_records_per_second";
pub const SNAPSHOT_BYTES: &str = "touchline_snapshot_bytes_total";
pub const SNAPSHOT_ERRORS: &str = "touchline_snapshot_errors_total";
pub const STANDBY_LAG: &str = "touchline_standby_lag_records";
pub const GROUP_REJOINS: &str = "touchline_group_rejoins_total";

/// Where a restore took a partition's state from (label `source`).
pub const RESTORE_SOURCES: [&str; 4] = ["local", "snapshot", "changelog", "replay"];
pub const STORAGE_ERRORS: &str = "touchline_storage_errors_total";
pub const REPORT_CACHE_BUILDS: &str = "touchline_report_cache_builds_total";
pub const REPORT_CACHE_UPDATES: &str = "touchline_report_cache_updates_total";
pub const REPORT_CACHE_PERSONS: &str = "touchline_report_cache_persons_recomputed_total";
pub const REPORT_CACHE_DERIVES: &str = "touchline_report_cache_derives_total";
pub const REPORT_CACHE_INDEX_BUILDS: &str = "touchline_report_cache_index_builds_total";
pub const REPORT_CACHE_BYTES: &str = "touchline_report_cache_bytes";
pub const STORAGE_STALLED: &str = "touchline_partition_storage_stalled";
pub const TLS_HANDSHAKE_FAILURES: &str = "touchline_http_tls_handshake_failures_total";
pub const RETENTION_SWEPT: &str = "touchline_retention_swept_records_total";
pub const RETENTION_DROPPED: &str = "touchline_retention_dropped_events_total";
pub const RETENTION_PASSES: &str = "touchline_retention_sweep_passes_total";
pub const RETENTION_ERRORS: &str = "touchline_retention_sweep_errors_total";
pub const TRACKING_NONCOMPLIANT: &str = "touchline_tracking_noncompliant_total";

/// Partition states (label `state` of `touchline_partition_state`).
pub const PARTITION_STATES: [&str; 3] = ["restoring", "active", "standby"];

/// Actor kinds (label `kind`).
pub const KINDS: [&str; 4] = ["partition", "tenant", "customer", "journey"];

/// HTTP routes (label `route`).
pub const ROUTES: [&str; 12] = [
    "attribution",
    "attribution_compare",
    "tenants",
    "customers",
    "customer",
    "journey_performance",
    "campaigns",
    "cohorts",
    "variants",
    "registry",
    "cluster",
    "other",
];

/// Describes every metric and touches each series once so it exists at zero.
pub fn register() {
    describe_counter!(EVENTS_CONSUMED, Unit::Count, "Records read from the events topic.");
    describe_counter!(REPORT_CACHE_BUILDS, Unit::Count, "Report cache entries (attribution, cohorts, journeys) built from scratch (first query of a shape, or a change too large to apply incrementally), from the persons the activity index lists or by a full scan.");
    describe_counter!(REPORT_CACHE_DERIVES, Unit::Count, "Attribution report cache entries derived from a cached entry of another range (recomputing the persons active in the difference).");
    describe_counter!(REPORT_CACHE_INDEX_BUILDS, Unit::Count, "Tenant activity indexes (persons per hour) built by a key-only walk for the report cache.");
    describe_counter!(REPORT_CACHE_UPDATES, Unit::Count, "Report cache entries (attribution, cohorts, journeys) brought up to date by recomputing only the persons that changed.");
    describe_counter!(REPORT_CACHE_PERSONS, Unit::Count, "Persons recomputed by incremental report cache updates.");
    describe_gauge!(REPORT_CACHE_BYTES, Unit::Bytes, "Estimated memory held by the report cache: attribution, cohorts and journeys entries and activity indexes (bounded by storage.paths_cache_mb).");
    describe_counter!(EVENTS_APPLIED, Unit::Count, "Valid, non-duplicate events applied to state.");
    describe_counter!(EVENTS_REJECTED, Unit::Count, "Records dead-lettered, by stable reason code.");
    describe_counter!(EVENTS_LATE, Unit::Count, "Events older than the watermark minus the allowed lateness.");
    describe_counter!(EVENTS_REROUTED, Unit::Count, "Records found on a partition other than their tenant's and produced again to the tenant's partition (events.md, Transport).");
    describe_counter!(EVENTS_DUPLICATE, Unit::Count, "Events whose (tenant, event_id) was already applied.");
    describe_gauge!(PARTITION_LAG, Unit::Count, "Records between the applied offset and the high watermark.");
    describe_gauge!(PARTITION_APPLIED_OFFSET, Unit::Count, "Next offset to apply, durably stored.");
    describe_gauge!(PARTITION_WATERMARK, Unit::Seconds, "Event-time watermark of the partition (epoch seconds).");
    describe_gauge!(ACTORS_ACTIVE, Unit::Count, "Live actors by kind.");
    describe_counter!(ACTOR_RESTARTS, Unit::Count, "Actors restarted after a failure, by kind.");
    describe_counter!(ACTORS_PASSIVATED, Unit::Count, "Customer and journey actors stopped because idle or over their cap.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by route.");
    describe_counter!(MERGES, Unit::Count, "Identity merges of two persons.");
    describe_gauge!(PROBABILISTIC_LINKS, Unit::Count, "Probabilistic links (anonymous persons joined to a known one) of the tenants this node evaluated, as of each tenant's last evaluation.");
    describe_counter!(MERGE_BLOCKED, Unit::Count, "Identity links blocked by max_ids_per_person.");
    describe_counter!(TRACKING_NONCOMPLIANT, Unit::Count, "Touchpoints of tenants with a registry whose tracking values break the taxonomy (reason off_taxonomy) or name an id the registry lacks (unknown_id), counted once each when the batch that applied it commits.");
    for reason in ["unknown_id", "off_taxonomy"] {
        counter!(TRACKING_NONCOMPLIANT, "reason" => reason).absolute(0);
    }
    describe_histogram!(BATCH_DURATION, Unit::Seconds, "Time to apply and commit one record batch.");
    describe_gauge!(ROCKSDB_LIVE_BYTES, Unit::Bytes, "Estimated live data plus memtables of the node's RocksDB.");
    describe_gauge!(ROCKSDB_KEYS, Unit::Count, "Estimated number of keys in the node's RocksDB.");
    describe_gauge!(
        ROCKSDB_MEMORY,
        Unit::Bytes,
        "RocksDB memory by kind: block_cache (shared LRU cache, memtables charged to it included), block_cache_pinned (its pinned part), memtables, table_readers (index/filter memory outside the cache)."
    );
    describe_gauge!(PROCESS_RESIDENT, Unit::Bytes, "Resident set size of the node process (Linux; 0 elsewhere).");
    describe_gauge!(PARTITIONS_ASSIGNED, Unit::Count, "Partitions this node owns.");
    describe_counter!(REBALANCES, Unit::Count, "Consumer-group rebalance events (assign or revoke) seen by this node.");
    describe_gauge!(PARTITION_STATE, Unit::Count, "1 for the state each partition known to this node is in, else 0.");
    describe_gauge!(RESTORE_REMAINING, Unit::Count, "Records left to restore before a partition becomes active.");
    describe_counter!(FORWARDED, Unit::Count, "Queries forwarded to the owning node.");
    describe_counter!(CHANGELOG_RECORDS, Unit::Count, "Records (state writes and batch markers) acknowledged by the changelog topic.");
    describe_counter!(CHANGELOG_ERRORS, Unit::Count, "Changelog produce or compensation attempts that failed (retried).");
    describe_counter!(RESULTS_RECORDS, Unit::Count, "Records produced to the attribution results topic, by kind: value (a conversion's credits) or tombstone (the conversion left).");
    describe_counter!(RESULTS_ERRORS, Unit::Count, "Batches whose attribution results could not be produced (the batch is retried).");
    describe_counter!(RESTORES, Unit::Count, "Partition restores on assignment, by source: local (current local state), snapshot (a peer's SST snapshot ingested, then the changelog after it), changelog (records read), replay (no state anywhere: events from the beginning).");
    describe_counter!(SNAPSHOT_BYTES, Unit::Bytes, "Partition snapshot bytes, by direction: sent (exported to a restoring peer) and received (ingested here).");
    describe_counter!(SNAPSHOT_ERRORS, Unit::Count, "Snapshot transfers that failed (the restore then reads the changelog instead).");
    describe_counter!(RESTORED_RECORDS, Unit::Count, "Changelog records applied by restores and standbys.");
    describe_counter!(RESTORED_BYTES, Unit::Bytes, "Key and value bytes of the changelog records applied by restores and standbys.");
    describe_histogram!(RESTORE_DURATION, Unit::Seconds, "Time from assignment to restored state, per partition.");
    describe_gauge!(RESTORE_RATE, Unit::CountPerSecond, "Records per second of the partition's last or current restore.");
    describe_counter!(GROUP_REJOINS, Unit::Count, "Times this node left and rejoined a consumer group that stayed stuck (partitions without owner).");
    describe_gauge!(STANDBY_LAG, Unit::Count, "Changelog records a standby partition has not applied yet.");
    describe_counter!(STORAGE_ERRORS, Unit::Count, "Failed RocksDB batch commits (disk full, I/O); the batch is retried, never dead-lettered.");
    describe_gauge!(STORAGE_STALLED, Unit::Count, "1 while a partition retries a failed storage write (its offset does not move), else 0.");
    describe_counter!(TLS_HANDSHAKE_FAILURES, Unit::Count, "HTTPS connections closed because the TLS handshake failed or timed out (e.g. plain HTTP to the TLS port).");
    describe_counter!(
        RETENTION_SWEPT,
        Unit::Count,
        "Timeline records (touchpoints, conversions, conversion index entries) deleted by the retention sweep because older than their tenant's retention horizon."
    );
    describe_counter!(RETENTION_PASSES, Unit::Count, "Completed retention sweep passes over every tenant of the owned partitions.");
    describe_counter!(RETENTION_ERRORS, Unit::Count, "Retention sweep steps that failed on a storage error (the next step retries).");
    describe_counter!(
        RETENTION_DROPPED,
        Unit::Count,
        "Touchpoints and conversions that arrived already older than their tenant's retention horizon and were kept out of per-person state."
    );

    counter!(EVENTS_CONSUMED).absolute(0);
    counter!(REPORT_CACHE_BUILDS).absolute(0);
    counter!(REPORT_CACHE_UPDATES).absolute(0);
    counter!(REPORT_CACHE_PERSONS).absolute(0);
    counter!(REPORT_CACHE_DERIVES).absolute(0);
    counter!(REPORT_CACHE_INDEX_BUILDS).absolute(0);
    gauge!(REPORT_CACHE_BYTES).set(0.0);
    counter!(EVENTS_APPLIED).absolute(0);
    counter!(EVENTS_LATE).absolute(0);
    counter!(EVENTS_DUPLICATE).absolute(0);
    counter!(EVENTS_REROUTED).absolute(0);
    counter!(ACTORS_PASSIVATED).absolute(0);
    counter!(MERGES).absolute(0);
    counter!(MERGE_BLOCKED).absolute(0);
    gauge!(PROBABILISTIC_LINKS).set(0.0);
    for r in Reason::ALL {
        counter!(EVENTS_REJECTED, "reason" => r.as_str()).absolute(0);
    }
    for k in KINDS {
        gauge!(ACTORS_ACTIVE, "kind" => k).set(0.0);
        counter!(ACTOR_RESTARTS, "kind" => k).absolute(0);
    }
    for r in ROUTES {
        let _ = histogram!(HTTP_DURATION, "route" => r);
    }
    let _ = histogram!(BATCH_DURATION);
    gauge!(ROCKSDB_LIVE_BYTES).set(0.0);
    gauge!(ROCKSDB_KEYS).set(0.0);
    for k in ROCKSDB_MEMORY_KINDS {
        gauge!(ROCKSDB_MEMORY, "kind" => k).set(0.0);
    }
    gauge!(PROCESS_RESIDENT).set(0.0);
    gauge!(PARTITIONS_ASSIGNED).set(0.0);
    counter!(REBALANCES).absolute(0);
    counter!(FORWARDED).absolute(0);
    counter!(CHANGELOG_RECORDS).absolute(0);
    counter!(CHANGELOG_ERRORS).absolute(0);
    counter!(RESULTS_ERRORS).absolute(0);
    for kind in ["value", "tombstone"] {
        counter!(RESULTS_RECORDS, "kind" => kind).absolute(0);
    }
    for src in RESTORE_SOURCES {
        counter!(RESTORES, "source" => src).absolute(0);
    }
    counter!(RESTORED_RECORDS).absolute(0);
    for dir in ["sent", "received"] {
        counter!(SNAPSHOT_BYTES, "direction" => dir).absolute(0);
    }
    counter!(SNAPSHOT_ERRORS).absolute(0);
    counter!(RESTORED_BYTES).absolute(0);
    counter!(GROUP_REJOINS).absolute(0);
    let _ = histogram!(RESTORE_DURATION);
    gauge!(RESTORE_RATE, "partition" => "-1").set(0.0);
    gauge!(STANDBY_LAG, "partition" => "-1").set(0.0);
    counter!(STORAGE_ERRORS).absolute(0);
    counter!(TLS_HANDSHAKE_FAILURES).absolute(0);
    counter!(RETENTION_SWEPT).absolute(0);
    counter!(RETENTION_DROPPED).absolute(0);
    counter!(RETENTION_PASSES).absolute(0);
    counter!(RETENTION_ERRORS).absolute(0);
    // Per-partition families get their series once partitions are known; until
    // then a placeholder partition "-1" keeps the family present.
    for s in PARTITION_STATES {
        gauge!(PARTITION_STATE, "partition" => "-1", "state" => s).set(0.0);
    }
    gauge!(RESTORE_REMAINING, "partition" => "-1").set(0.0);
    gauge!(STORAGE_STALLED, "partition" => "-1").set(0.0);
    gauge!(PARTITION_LAG, "partition" => "-1").set(0.0);
    gauge!(PARTITION_APPLIED_OFFSET, "partition" => "-1").set(0.0);
}

pub fn rebalanced() {
    counter!(REBALANCES).increment(1);
}

pub fn tls_handshake_failed() {
    counter!(TLS_HANDSHAKE_FAILURES).increment(1);
}

/// One sweep step: records deleted, whether it completed a pass, whether it failed.
pub fn retention_step(deleted: u64, pass_completed: bool, failed: bool) {
    counter!(RETENTION_SWEPT).increment(deleted);
    counter!(RETENTION_PASSES).increment(pass_completed as u64);
    counter!(RETENTION_ERRORS).increment(failed as u64);
}

pub fn retention_dropped(n: u64) {
    counter!(RETENTION_DROPPED).increment(n);
}

pub fn forwarded() {
    counter!(FORWARDED).increment(1);
}

/// Sets the one-hot state gauges of a partition (`None`: no longer known here).
pub fn partition_state(partition: i32, state: Option<&str>) {
    let p = partition.to_string();
    for s in PARTITION_STATES {
        gauge!(PARTITION_STATE, "partition" => p.clone(), "state" => s).set(if Some(s) == state { 1.0 } else { 0.0 });
    }
}

/// One failed storage commit of `partition`; `stalled` whether it is still retrying.
pub fn storage_stalled(partition: i32, stalled: bool, failed_commit: bool) {
    if failed_commit {
        counter!(STORAGE_ERRORS).increment(1);
    }
    gauge!(STORAGE_STALLED, "partition" => partition.to_string()).set(if stalled { 1.0 } else { 0.0 });
}

pub fn restore_remaining(partition: i32, n: u64) {
    gauge!(RESTORE_REMAINING, "partition" => partition.to_string()).set(n as f64);
}

pub fn changelog_written(records: u64) {
    counter!(CHANGELOG_RECORDS).increment(records);
}

pub fn changelog_error() {
    counter!(CHANGELOG_ERRORS).increment(1);
}

/// Results records acknowledged: `values` with credits, `tombstones`.
pub fn results_published(values: u64, tombstones: u64) {
    counter!(RESULTS_RECORDS, "kind" => "value").increment(values);
    counter!(RESULTS_RECORDS, "kind" => "tombstone").increment(tombstones);
}

pub fn results_error() {
    counter!(RESULTS_ERRORS).increment(1);
}

/// Snapshot bytes moved, `direction` "sent" or "received".
pub fn snapshot_bytes(direction: &'static str, bytes: u64) {
    counter!(SNAPSHOT_BYTES, "direction" => direction).increment(bytes);
}

pub fn snapshot_error() {
    counter!(SNAPSHOT_ERRORS).increment(1);
}

/// Changelog records applied to local state (restore or standby).
pub fn restored_records(records: u64, bytes: u64) {
    counter!(RESTORED_RECORDS).increment(records);
    counter!(RESTORED_BYTES).increment(bytes);
}

pub fn restore_rate(partition: i32, per_sec: f64) {
    gauge!(RESTORE_RATE, "partition" => partition.to_string()).set(per_sec);
}

/// One finished restore: its source (see [`RESTORE_SOURCES`]) and duration.
pub fn restore_done(source: &'static str, d: std::time::Duration) {
    counter!(RESTORES, "source" => source).increment(1);
    histogram!(RESTORE_DURATION).record(d.as_secs_f64());
}

pub fn group_rejoined() {
    counter!(GROUP_REJOINS).increment(1);
}

pub fn standby_lag(partition: i32, lag: i64) {
    gauge!(STANDBY_LAG, "partition" => partition.to_string()).set(lag as f64);
}

pub fn rejected(reason: Reason) {
    counter!(EVENTS_REJECTED, "reason" => reason.as_str()).increment(1);
}

/// A tenant's probabilistic links as last evaluated; the gauge is the sum
/// over the tenants this node evaluated (bounded by the tenants it owns).
pub fn probabilistic_links(partition: u16, tenant: &str, links: usize) {
    use std::sync::{Mutex, OnceLock};
    static PER_TENANT: OnceLock<Mutex<std::collections::BTreeMap<(u16, String), usize>>> = OnceLock::new();
    let mut m = PER_TENANT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    m.insert((partition, tenant.to_string()), links);
    gauge!(PROBABILISTIC_LINKS).set(m.values().sum::<usize>() as f64);
}

pub fn rerouted(n: u64) {
    if n > 0 {
        counter!(EVENTS_REROUTED).increment(n);
    }
}

pub fn actor_started(kind: &'static str) {
    gauge!(ACTORS_ACTIVE, "kind" => kind).increment(1.0);
}

pub fn actor_stopped(kind: &'static str) {
    gauge!(ACTORS_ACTIVE, "kind" => kind).decrement(1.0);
}

pub fn actor_restarted(kind: &'static str) {
    counter!(ACTOR_RESTARTS, "kind" => kind).increment(1);
}

pub fn passivated(n: u64) {
    counter!(ACTORS_PASSIVATED).increment(n);
}

/// `n` committed touchpoints found noncompliant (`reason`: `unknown_id`, `off_taxonomy`).
pub fn tracking_noncompliant(reason: &'static str, n: u64) {
    if n > 0 {
        counter!(TRACKING_NONCOMPLIANT, "reason" => reason).increment(n);
    }
}

pub fn merges_blocked(n: u64) {
    counter!(MERGE_BLOCKED).increment(n);
}

pub fn batch_duration(d: std::time::Duration) {
    histogram!(BATCH_DURATION).record(d.as_secs_f64());
}

pub fn applied(consumed: u64, applied: u64, duplicates: u64, late: u64, merges: u64) {
    counter!(EVENTS_CONSUMED).increment(consumed);
    counter!(EVENTS_APPLIED).increment(applied);
    counter!(EVENTS_DUPLICATE).increment(duplicates);
    counter!(EVENTS_LATE).increment(late);
    counter!(MERGES).increment(merges);
}

pub fn partition_progress(partition: i32, next_offset: i64, lag: i64, watermark: Option<crate::domain::Ts>) {
    let p = partition.to_string();
    gauge!(PARTITION_APPLIED_OFFSET, "partition" => p.clone()).set(next_offset as f64);
    partition_lag(partition, lag);
    if let Some(w) = watermark {
        gauge!(PARTITION_WATERMARK, "partition" => p).set(w.secs as f64);
    }
}

/// The partition's lag alone: set whenever the broker's high watermark moves
/// (not only at commits, where it is at its lowest).
pub fn partition_lag(partition: i32, lag: i64) {
    gauge!(PARTITION_LAG, "partition" => partition.to_string()).set(lag as f64);
}

pub fn partitions_assigned(n: usize) {
    gauge!(PARTITIONS_ASSIGNED).set(n as f64);
}
