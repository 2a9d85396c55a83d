//! Reading metric points out of journal records: the one place that knows a
//! point comes alone (a Metric record) or in a batch (a Metrics record), and
//! is named by the `MetricKey` record that declared its number. The fold, the
//! series readers and `lab watch` all read metrics through here.

use lab_types::{MetricPoint, Record, Status};

/// What a journal record says about a run's metrics.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricEvent {
    /// A metric got its number.
    Declared {
        /// The number its points use.
        key: u32,
        /// Its name.
        name: String,
    },
    /// A point, of the metric numbered `point.key`.
    Point {
        /// When it was logged.
        time_nanos: i64,
        /// The point.
        point: MetricPoint,
    },
    /// The run ended (so no more points will come).
    Ended(Status),
}

/// Calls `f` with each metric event in `record` (none for records about
/// other things).
#[inline]
pub fn metric_events(record: Record, f: &mut impl FnMut(MetricEvent)) {
    match record {
        Record::MetricKey { key, name } => f(MetricEvent::Declared { key, name }),
        Record::Metric { time_nanos, point } => f(MetricEvent::Point { time_nanos, point }),
        Record::Metrics { time_nanos, points } => {
            for point in points {
                f(MetricEvent::Point { time_nanos, point });
            }
        }
        Record::End { status, .. } => f(MetricEvent::Ended(status)),
        _ => {}
    }
}
