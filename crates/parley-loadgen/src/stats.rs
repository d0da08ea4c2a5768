//! Measurements: counters and latency histograms while running, the [`Report`] after.
//!
//! [`Recorder`] is shared by every simulated user's event task behind one mutex (a
//! few hundred nanoseconds per event on two cores, far below a JSON parse). Latencies
//! are microseconds in `hdrhistogram`s; the report gives milliseconds. This module does
//! not decide what counts as measured: the caller only records measured messages.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;

/// Highest latency the histograms track (10 minutes, in µs); larger values saturate.
const MAX_TRACKED_MICROS: u64 = 600_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3).expect("static bounds are valid")
}

/// Counters and histograms of a traffic run, filled in while it runs.
#[derive(Debug)]
pub struct Recorder {
    pub sent: u64,
    pub acked: u64,
    /// Sum over acknowledged messages of their recipients (members but the sender).
    pub expected_deliveries: u64,
    pub delivered: u64,
    /// Messages a device saw twice (after the SDK's own dedup: must stay 0).
    pub duplicated: u64,
    pub rate_limited: u64,
    /// Sends refused with another code.
    pub send_errors: u64,
    /// `error` frames not tied to a send.
    pub other_errors: u64,
    pub disconnects: u64,
    pub delivery_latency: Histogram<u64>,
    pub ack_latency: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            sent: 0,
            acked: 0,
            expected_deliveries: 0,
            delivered: 0,
            duplicated: 0,
            rate_limited: 0,
            send_errors: 0,
            other_errors: 0,
            disconnects: 0,
            delivery_latency: new_histogram(),
            ack_latency: new_histogram(),
        }
    }
}

impl Recorder {
    pub fn record_delivery(&mut self, latency_micros: u64) {
        self.delivered += 1;
        self.delivery_latency
            .saturating_record(latency_micros.max(1));
    }

    pub fn record_ack(&mut self, latency_micros: u64, recipients: u64) {
        self.acked += 1;
        self.expected_deliveries += recipients;
        self.ack_latency.saturating_record(latency_micros.max(1));
    }
}

/// Percentiles of one latency distribution, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarizes a histogram of microseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let to_ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: to_ms(histogram.value_at_quantile(0.50)),
            p95_ms: to_ms(histogram.value_at_quantile(0.95)),
            p99_ms: to_ms(histogram.value_at_quantile(0.99)),
            max_ms: to_ms(histogram.max()),
        }
    }
}

/// The server's resident memory over a run (from `/proc/PID/status`, KiB).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RssReport {
    pub before_kib: u64,
    pub after_kib: u64,
    pub peak_kib: u64,
}

/// Results specific to `--mode idle`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdleReport {
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    /// The first connect error, if any failed.
    pub first_error: Option<String>,
    /// Connections that broke while held.
    pub disconnected: u64,
    pub hold_secs: f64,
    pub open_secs: f64,
    /// Server RSS right after every connection was open (KiB).
    pub server_rss_open_kib: Option<u64>,
    /// `(server RSS when open - before) / opened`, in bytes.
    pub server_bytes_per_connection: Option<u64>,
    /// The generator's own RSS growth per connection, in bytes.
    pub loadgen_bytes_per_connection: Option<u64>,
}

/// Everything a bench run measured. `Display` prints it for people; it serializes to
/// JSON for scripts and `docs/benchmarks.md`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub mode: String,
    pub users: usize,
    pub conversations: usize,
    pub target_rate: f64,
    pub message_size: usize,
    /// Length of the measured window (after warmup), seconds.
    pub measured_secs: f64,
    pub sent: u64,
    pub acked: u64,
    /// Sent in the window and never acknowledged, even after the drain.
    pub unacked: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    /// `expected_deliveries - delivered` after the drain: must be 0.
    pub lost: u64,
    /// Deliveries seen twice by one device: must be 0.
    pub duplicated: u64,
    pub rate_limited: u64,
    pub send_errors: u64,
    pub other_errors: u64,
    pub disconnects: u64,
    pub acks_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub delivery_latency: LatencySummary,
    pub ack_latency: LatencySummary,
    pub server_rss: Option<RssReport>,
    /// The generator's own peak RSS (KiB), to judge its overhead.
    pub loadgen_rss_kib: Option<u64>,
    pub idle: Option<IdleReport>,
}

impl Report {
    /// Fills the counters and rates from a recorder and a measured window.
    pub fn with_recorder(mut self, recorder: &Recorder, measured_secs: f64) -> Self {
        self.measured_secs = measured_secs;
        self.sent = recorder.sent;
        self.acked = recorder.acked;
        self.unacked = recorder.sent.saturating_sub(recorder.acked);
        self.expected_deliveries = recorder.expected_deliveries;
        self.delivered = recorder.delivered;
        self.lost = recorder
            .expected_deliveries
            .saturating_sub(recorder.delivered);
        self.duplicated = recorder.duplicated;
        self.rate_limited = recorder.rate_limited;
        self.send_errors = recorder.send_errors;
        self.other_errors = recorder.other_errors;
        self.disconnects = recorder.disconnects;
        let seconds = measured_secs.max(1e-9);
        self.acks_per_sec = recorder.acked as f64 / seconds;
        self.deliveries_per_sec = recorder.delivered as f64 / seconds;
        self.delivery_latency = LatencySummary::from_micros(&recorder.delivery_latency);
        self.ack_latency = LatencySummary::from_micros(&recorder.ack_latency);
        self
    }

    /// Whether the run kept the delivery guarantees (nothing lost, nothing doubled,
    /// every send acknowledged).
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.unacked == 0
    }
}

fn write_latency(
    formatter: &mut fmt::Formatter<'_>,
    label: &str,
    latency: &LatencySummary,
) -> fmt::Result {
    writeln!(
        formatter,
        "  {label:<18} p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({} samples)",
        latency.p50_ms, latency.p95_ms, latency.p99_ms, latency.max_ms, latency.count
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "parley bench, mode {}", self.mode)?;
        if let Some(idle) = &self.idle {
            writeln!(
                formatter,
                "  connections        {} opened of {} ({} failed) in {:.1} s, held {:.1} s, {} dropped while held",
                idle.opened, idle.requested, idle.failed, idle.open_secs, idle.hold_secs, idle.disconnected
            )?;
            if let Some(first_error) = &idle.first_error {
                writeln!(formatter, "  first error        {first_error}")?;
            }
            if let Some(bytes) = idle.server_bytes_per_connection {
                writeln!(
                    formatter,
                    "  server memory      {:.1} KiB per idle connection",
                    bytes as f64 / 1024.0
                )?;
            }
            if let Some(bytes) = idle.loadgen_bytes_per_connection {
                writeln!(
                    formatter,
                    "  loadgen memory     {:.1} KiB per connection",
                    bytes as f64 / 1024.0
                )?;
            }
        } else {
            writeln!(
                formatter,
                "  setup              {} users, {} conversations, target {:.0} msg/s, {} B messages, {:.1} s measured",
                self.users, self.conversations, self.target_rate, self.message_size, self.measured_secs
            )?;
            writeln!(
                formatter,
                "  sends              {} sent, {} acked, {} unacked, {} rate limited, {} refused",
                self.sent, self.acked, self.unacked, self.rate_limited, self.send_errors
            )?;
            writeln!(
                formatter,
                "  deliveries         {} of {} expected, lost {}, duplicated {}",
                self.delivered, self.expected_deliveries, self.lost, self.duplicated
            )?;
            writeln!(
                formatter,
                "  throughput         {:.1} acks/s, {:.1} deliveries/s",
                self.acks_per_sec, self.deliveries_per_sec
            )?;
            write_latency(formatter, "delivery latency", &self.delivery_latency)?;
            write_latency(formatter, "ack latency", &self.ack_latency)?;
            if self.disconnects > 0 || self.other_errors > 0 {
                writeln!(
                    formatter,
                    "  trouble            {} disconnects, {} other errors",
                    self.disconnects, self.other_errors
                )?;
            }
        }
        if let Some(rss) = &self.server_rss {
            writeln!(
                formatter,
                "  server RSS         before {:.1} MiB, after {:.1} MiB, peak {:.1} MiB",
                mib(rss.before_kib),
                mib(rss.after_kib),
                mib(rss.peak_kib)
            )?;
        }
        if let Some(loadgen_rss_kib) = self.loadgen_rss_kib {
            writeln!(
                formatter,
                "  loadgen RSS        {:.1} MiB",
                mib(loadgen_rss_kib)
            )?;
        }
        if self.idle.is_none() {
            let verdict = if self.is_clean() {
                "OK: nothing lost, nothing duplicated"
            } else {
                "FAILED: messages lost, duplicated or unacknowledged"
            };
            writeln!(formatter, "  verdict            {verdict}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Percentiles of 1..=1000 ms land where they should (within histogram precision).
    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut recorder = Recorder::default();
        for millis in 1..=1000u64 {
            recorder.record_delivery(millis * 1000);
        }
        let summary = LatencySummary::from_micros(&recorder.delivery_latency);
        assert_eq!(summary.count, 1000);
        let close = |actual: f64, expected: f64| (actual - expected).abs() <= expected * 0.002;
        assert!(close(summary.p50_ms, 500.0), "{summary:?}");
        assert!(close(summary.p95_ms, 950.0), "{summary:?}");
        assert!(close(summary.p99_ms, 990.0), "{summary:?}");
        assert!(close(summary.max_ms, 1000.0), "{summary:?}");
        assert!(close(summary.mean_ms, 500.5), "{summary:?}");
    }

    /// Lost is expected minus delivered; rates divide by the window; the verdict
    /// fails on loss.
    #[test]
    fn report_counts_and_rates() {
        let mut recorder = Recorder {
            sent: 10,
            ..Recorder::default()
        };
        for _ in 0..10 {
            recorder.record_ack(2_000, 3);
        }
        for _ in 0..28 {
            recorder.record_delivery(5_000);
        }
        let report = Report::default().with_recorder(&recorder, 2.0);
        assert_eq!(report.expected_deliveries, 30);
        assert_eq!(report.lost, 2);
        assert_eq!(report.unacked, 0);
        assert_eq!(report.acks_per_sec, 5.0);
        assert_eq!(report.deliveries_per_sec, 14.0);
        assert!((report.ack_latency.p50_ms - 2.0).abs() < 0.01);
        assert!(!report.is_clean());
        assert!(report.to_string().contains("FAILED"));
        recorder.record_delivery(5_000);
        recorder.record_delivery(5_000);
        let clean = Report::default().with_recorder(&recorder, 2.0);
        assert!(clean.is_clean());
        assert!(clean.to_string().contains("OK"));
        let json = serde_json::to_value(&clean).unwrap();
        assert_eq!(json["delivered"], 30);
        let p99_ms = json["delivery_latency"]["p99_ms"].as_f64().unwrap();
        assert!((p99_ms - 5.0).abs() < 0.01, "{p99_ms}");
    }

    /// An empty histogram summarizes to zeros instead of panicking.
    #[test]
    fn empty_histogram() {
        let summary = LatencySummary::from_micros(&new_histogram());
        assert_eq!(summary, LatencySummary::default());
    }
}
