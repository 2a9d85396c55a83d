//! Metric series for charts: read once (from the run's series file, else its
//! journal), kept in memory, and downsampled per request so that every
//! bucket keeps its minimum and maximum.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One metric's points, as columns, in logging order.
#[derive(Debug)]
pub struct Series {
    /// Steps.
    pub steps: Vec<i64>,
    /// Seconds since the run started.
    pub times: Vec<f64>,
    /// Values.
    pub values: Vec<f64>,
    /// When the run started, in seconds since the Unix epoch (for wall-clock x).
    start_secs: f64,
    /// Another metric's value at each point's step, in a series made by
    /// [`Series::against`] (the x of [`XAxis::Metric`]); empty otherwise.
    other: Vec<f64>,
    /// Whether the steps never decrease (then a range is found by bisection).
    steps_sorted: bool,
}

impl Series {
    /// An empty series; add points with [`Series::push`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            times: Vec::new(),
            values: Vec::new(),
            start_secs: 0.0,
            other: Vec::new(),
            steps_sorted: true,
        }
    }

    /// An empty series with room for `points` points, so that reading a
    /// long metric does not copy its columns each time they grow.
    #[must_use]
    pub fn with_capacity(points: usize) -> Self {
        Self {
            steps: Vec::with_capacity(points),
            times: Vec::with_capacity(points),
            values: Vec::with_capacity(points),
            start_secs: 0.0,
            other: Vec::new(),
            steps_sorted: true,
        }
    }

    /// Adds a point logged at `nanos` by a run that started at `start_nanos`.
    pub fn push(&mut self, step: i64, nanos: i64, start_nanos: i64, value: f64) {
        if self.steps.last().is_some_and(|&last| step < last) {
            self.steps_sorted = false;
        }
        self.start_secs = start_nanos as f64 / 1e9;
        self.steps.push(step);
        self.times.push((nanos - start_nanos) as f64 / 1e9);
        self.values.push(value);
    }

    /// Builds the columns from `(step, time_nanos, value)` points.
    #[must_use]
    pub fn from_points(points: &[(i64, i64, f64)], start_nanos: i64) -> Self {
        let mut s = Self::new();
        for &(step, nanos, value) in points {
            s.push(step, nanos, start_nanos, value);
        }
        s
    }

    /// The points of `self` drawn against metric `x`: each point whose step
    /// `x` also logged, with `x`'s value at that step (its last one there)
    /// as its x, ordered by that x (points of equal x keep their order).
    /// Points where `x` is NaN or infinite are left out: they have no place
    /// on the axis.
    #[must_use]
    pub fn against(&self, x: &Series) -> Series {
        let at: HashMap<i64, f64> = x
            .steps
            .iter()
            .copied()
            .zip(x.values.iter().copied())
            .collect();
        let mut picked: Vec<(f64, usize)> = self
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| at.get(step).filter(|v| v.is_finite()).map(|&v| (v, i)))
            .collect();
        picked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = Series::with_capacity(picked.len());
        out.start_secs = self.start_secs;
        out.other.reserve(picked.len());
        for (xv, i) in picked {
            if out.steps.last().is_some_and(|&last| self.steps[i] < last) {
                out.steps_sorted = false;
            }
            out.steps.push(self.steps[i]);
            out.times.push(self.times[i]);
            out.values.push(self.values[i]);
            out.other.push(xv);
        }
        out
    }

    /// How many points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn x(&self, axis: XAxis, i: usize) -> f64 {
        match axis {
            XAxis::Step => self.steps[i] as f64,
            XAxis::Time => self.times[i],
            XAxis::Wall => self.start_secs + self.times[i],
            XAxis::Metric => self.other.get(i).copied().unwrap_or(f64::NAN),
        }
    }

    /// Whether x never decreases along the series. Time comes from the
    /// system clock, which may step back, so it is checked each time.
    fn sorted(&self, axis: XAxis) -> bool {
        match axis {
            XAxis::Step => self.steps_sorted,
            XAxis::Time | XAxis::Wall => self.times.windows(2).all(|w| w[0] <= w[1]),
            // `against` orders its points by the other metric.
            XAxis::Metric => !self.other.is_empty() || self.values.is_empty(),
        }
    }
}

impl Default for Series {
    fn default() -> Self {
        Self::new()
    }
}

/// The x axis of a chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// The step each point was logged with.
    Step,
    /// Seconds since the run started.
    Time,
    /// Wall-clock time: seconds since the Unix epoch.
    Wall,
    /// Another metric's value at the same step (a series made by
    /// [`Series::against`]).
    Metric,
}

/// A value JSON cannot hold, where it was logged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFinite {
    /// Its x.
    pub x: f64,
    /// NaN, +inf or -inf.
    pub value: f64,
}

/// A downsampled view: `x` and `y` columns (`None` for values JSON cannot hold).
#[derive(Debug, Default, PartialEq)]
pub struct View {
    /// x values.
    pub x: Vec<f64>,
    /// y values; `None` where the value is NaN or infinite.
    pub y: Vec<Option<f64>>,
    /// Where NaN and infinite values were logged: every one when the view
    /// is whole, else the first of each kind in each bucket.
    pub nonfinite: Vec<NonFinite>,
    /// Points in the range before downsampling.
    pub in_range: usize,
    /// Whether points were dropped.
    pub downsampled: bool,
}

impl View {
    /// The answer of `GET .../metrics/{name}` (by `lab ui` and the team
    /// server alike) for metric `name` on `axis` (`x_axis`: the `x` asked for).
    #[must_use]
    pub fn to_json(&self, name: &str, x_axis: &str) -> serde_json::Value {
        let nonfinite: Vec<serde_json::Value> = self
            .nonfinite
            .iter()
            .map(|n| {
                let value = if n.value.is_nan() {
                    "NaN"
                } else if n.value > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                };
                serde_json::json!({"x": n.x, "value": value})
            })
            .collect();
        serde_json::json!({
            "name": name,
            "x_axis": x_axis,
            "total": self.in_range,
            "downsampled": self.downsampled,
            "x": self.x,
            "y": self.y,
            "nonfinite": nonfinite,
        })
    }
}

/// The points of `series` with x in `[from, to]`, at most `max_points` of
/// them: when there are more, they are cut into `(max_points - 1) / 2`
/// buckets of consecutive points and each bucket gives its smallest and its
/// largest finite value, in their order, so a spike stays visible; the last
/// point of the range follows, so the line ends on the run's last value.
/// NaN and infinite values are listed apart ([`View::nonfinite`]).
#[must_use]
pub fn downsample(
    series: &Series,
    axis: XAxis,
    from: Option<f64>,
    to: Option<f64>,
    max_points: usize,
) -> View {
    let (span, picked) = in_range(series, axis, from, to);
    let index = |k: usize| picked.as_ref().map_or(k, |p| p[k]);
    let n = span.len();
    let finite = |v: f64| v.is_finite().then_some(v);
    let mut view = View {
        in_range: n,
        ..View::default()
    };
    let emit = |view: &mut View, i: usize| {
        view.x.push(series.x(axis, i));
        view.y.push(finite(series.values[i]));
    };
    let mark = |view: &mut View, i: usize| {
        view.nonfinite.push(NonFinite {
            x: series.x(axis, i),
            value: series.values[i],
        });
    };
    let max_points = max_points.max(2);
    if n <= max_points {
        for k in span {
            let i = index(k);
            emit(&mut view, i);
            if !series.values[i].is_finite() {
                mark(&mut view, i);
            }
        }
        return view;
    }
    view.downsampled = true;
    // Room for the last point after the buckets' pairs (but for two points, a pair).
    let buckets = if max_points < 3 {
        1
    } else {
        (max_points - 1) / 2
    };
    view.x.reserve(buckets * 2 + 1);
    view.y.reserve(buckets * 2 + 1);
    let mut last = usize::MAX;
    for b in 0..buckets {
        let start = span.start + b * n / buckets;
        let end = span.start + (b + 1) * n / buckets;
        let found = extremes(&series.values, start..end, picked.as_deref());
        let (lo, hi) = (found.lo, found.hi);
        if lo == usize::MAX {
            // Nothing finite in the bucket: its first point shows the gap.
            emit(&mut view, index(start));
            last = start;
        } else if lo == hi {
            emit(&mut view, index(lo));
            last = lo;
        } else {
            emit(&mut view, index(lo.min(hi)));
            emit(&mut view, index(lo.max(hi)));
            last = lo.max(hi);
        }
        let mut odd = [found.nan, found.pos_inf, found.neg_inf];
        odd.sort_unstable();
        for k in odd.into_iter().filter(|&k| k != usize::MAX) {
            mark(&mut view, index(k));
        }
    }
    let end = span.end - 1;
    if max_points >= 3 && last != end {
        emit(&mut view, index(end));
    }
    view
}

/// The points with x in `[from, to]`: a contiguous span of the series when
/// x is ordered (found by bisection), else a span of a list of the indexes
/// that are in range.
fn in_range(
    series: &Series,
    axis: XAxis,
    from: Option<f64>,
    to: Option<f64>,
) -> (std::ops::Range<usize>, Option<Vec<usize>>) {
    if from.is_none() && to.is_none() {
        (0..series.len(), None)
    } else if series.sorted(axis) {
        let lo = from.map_or(0, |f| partition(series, axis, |x| x < f));
        let hi = to.map_or(series.len(), |t| partition(series, axis, |x| x <= t));
        (lo..hi.max(lo), None)
    } else {
        let inside = |x: f64| from.is_none_or(|f| x >= f) && to.is_none_or(|t| x <= t);
        let list: Vec<usize> = (0..series.len())
            .filter(|&i| inside(series.x(axis, i)))
            .collect();
        (0..list.len(), Some(list))
    }
}

/// What one bucket holds, as positions in the span; `usize::MAX` where
/// none was found.
struct Extremes {
    /// The smallest finite value (the first of equal ones).
    lo: usize,
    /// The largest finite value (the first of equal ones).
    hi: usize,
    /// The first NaN.
    nan: usize,
    /// The first +inf.
    pos_inf: usize,
    /// The first -inf.
    neg_inf: usize,
}

impl Extremes {
    #[inline]
    fn see(&mut self, k: usize, v: f64, lo_v: &mut f64, hi_v: &mut f64) {
        if v.is_finite() {
            if v < *lo_v {
                *lo_v = v;
                self.lo = k;
            }
            if v > *hi_v {
                *hi_v = v;
                self.hi = k;
            }
        } else {
            let first = if v.is_nan() {
                &mut self.nan
            } else if v > 0.0 {
                &mut self.pos_inf
            } else {
                &mut self.neg_inf
            };
            if *first == usize::MAX {
                *first = k;
            }
        }
    }
}

/// [`downsample`] of a whole series (no range) on the step, time or
/// wall-clock axis, fed one point at a time in logging order without
/// keeping them: the same view, point for point, in memory the size of the
/// view. For a series read from a run's series file, whose point count is
/// known before the first point.
#[derive(Debug)]
pub struct Streamed {
    axis: XAxis,
    start_nanos: i64,
    n: usize,
    whole: bool,
    buckets: usize,
    bucket: usize,
    bucket_start: usize,
    bucket_end: usize,
    max_points: usize,
    seen: usize,
    first: (f64, f64),
    lo: Picked,
    hi: Picked,
    nan: Picked,
    pos_inf: Picked,
    neg_inf: Picked,
    last_emitted: usize,
    last: Picked,
    view: View,
}

/// A point kept while streaming: its place, x and value.
#[derive(Clone, Copy, Debug)]
struct Picked {
    at: usize,
    x: f64,
    value: f64,
}

const NONE: Picked = Picked {
    at: usize::MAX,
    x: 0.0,
    value: 0.0,
};

impl Streamed {
    /// A view of the `n` points to come, on `axis` (not [`XAxis::Metric`]),
    /// of a run that started at `start_nanos`, of at most `max_points`.
    #[must_use]
    pub fn new(n: usize, axis: XAxis, start_nanos: i64, max_points: usize) -> Self {
        let max_points = max_points.max(2);
        let whole = n <= max_points;
        let buckets = if max_points < 3 {
            1
        } else {
            (max_points - 1) / 2
        };
        Self {
            axis,
            start_nanos,
            n,
            whole,
            buckets,
            bucket: 0,
            bucket_start: 0,
            bucket_end: if whole { usize::MAX } else { n / buckets },
            max_points,
            seen: 0,
            first: (0.0, 0.0),
            lo: NONE,
            hi: NONE,
            nan: NONE,
            pos_inf: NONE,
            neg_inf: NONE,
            last_emitted: usize::MAX,
            last: NONE,
            view: View {
                in_range: n,
                downsampled: !whole,
                ..View::default()
            },
        }
    }

    fn x(&self, step: i64, nanos: i64) -> f64 {
        // As `Series::push` and `Series::x` compute them.
        match self.axis {
            XAxis::Step => step as f64,
            XAxis::Time | XAxis::Metric => nanos.wrapping_sub(self.start_nanos) as f64 / 1e9,
            XAxis::Wall => {
                self.start_nanos as f64 / 1e9 + nanos.wrapping_sub(self.start_nanos) as f64 / 1e9
            }
        }
    }

    fn emit(&mut self, x: f64, value: f64) {
        self.view.x.push(x);
        self.view.y.push(value.is_finite().then_some(value));
    }

    fn mark(&mut self, p: Picked) {
        self.view.nonfinite.push(NonFinite {
            x: p.x,
            value: p.value,
        });
    }

    /// The next point.
    #[inline]
    pub fn push(&mut self, step: i64, nanos: i64, value: f64) {
        let k = self.seen;
        self.seen += 1;
        let x = self.x(step, nanos);
        if self.whole {
            self.emit(x, value);
            if !value.is_finite() {
                self.mark(Picked { at: k, x, value });
            }
            return;
        }
        while k >= self.bucket_end {
            self.close_bucket();
        }
        let p = Picked { at: k, x, value };
        if k == self.bucket_start {
            self.first = (x, value);
        }
        if value.is_finite() {
            if self.lo.at == usize::MAX || value < self.lo.value {
                self.lo = p;
            }
            if self.hi.at == usize::MAX || value > self.hi.value {
                self.hi = p;
            }
        } else {
            let first = if value.is_nan() {
                &mut self.nan
            } else if value > 0.0 {
                &mut self.pos_inf
            } else {
                &mut self.neg_inf
            };
            if first.at == usize::MAX {
                *first = p;
            }
        }
        self.last = p;
    }

    fn close_bucket(&mut self) {
        let (lo, hi) = (self.lo, self.hi);
        if lo.at == usize::MAX {
            // Nothing finite in the bucket: its first point shows the gap.
            let (x, value) = self.first;
            self.emit(x, value);
            self.last_emitted = self.bucket_start;
        } else if lo.at == hi.at {
            self.emit(lo.x, lo.value);
            self.last_emitted = lo.at;
        } else {
            let (a, b) = if lo.at < hi.at { (lo, hi) } else { (hi, lo) };
            self.emit(a.x, a.value);
            self.emit(b.x, b.value);
            self.last_emitted = b.at;
        }
        let mut odd = [self.nan, self.pos_inf, self.neg_inf];
        odd.sort_unstable_by_key(|p| p.at);
        for p in odd.into_iter().filter(|p| p.at != usize::MAX) {
            self.mark(p);
        }
        (self.lo, self.hi, self.nan, self.pos_inf, self.neg_inf) = (NONE, NONE, NONE, NONE, NONE);
        self.bucket += 1;
        self.bucket_start = self.bucket_end;
        self.bucket_end = if self.bucket + 1 >= self.buckets {
            usize::MAX
        } else {
            (self.bucket + 1) * self.n / self.buckets
        };
    }

    /// The view, once every point was pushed; `None` when the number of
    /// points was not the one announced.
    #[must_use]
    pub fn finish(mut self) -> Option<View> {
        if self.seen != self.n {
            return None;
        }
        if !self.whole {
            self.close_bucket();
            if self.max_points >= 3 && self.last_emitted != self.n - 1 {
                let last = self.last;
                self.emit(last.x, last.value);
            }
        }
        Some(self.view)
    }
}

/// Where the smallest and the largest finite value of one bucket are, and
/// its first NaN and infinities. `picked` maps positions to points when the
/// span is a list. Meant to be inlined: it runs for every point, so it
/// allocates nothing and calls nothing per point.
#[inline]
fn extremes(values: &[f64], bucket: std::ops::Range<usize>, picked: Option<&[usize]>) -> Extremes {
    let mut found = Extremes {
        lo: usize::MAX,
        hi: usize::MAX,
        nan: usize::MAX,
        pos_inf: usize::MAX,
        neg_inf: usize::MAX,
    };
    let (mut lo_v, mut hi_v) = (f64::INFINITY, f64::NEG_INFINITY);
    if let Some(picked) = picked {
        for k in bucket {
            found.see(k, values[picked[k]], &mut lo_v, &mut hi_v);
        }
    } else {
        // The common case, a contiguous slice: a tight loop.
        let start = bucket.start;
        for (k, &v) in values[bucket].iter().enumerate() {
            found.see(start + k, v, &mut lo_v, &mut hi_v);
        }
    }
    found
}

/// The first index whose x fails `before` (x must be ordered).
fn partition(series: &Series, axis: XAxis, before: impl Fn(f64) -> bool) -> usize {
    let (mut lo, mut hi) = (0, series.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(series.x(axis, mid)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Series already read, by run and metric, with the number of points the
/// index knew when they were read; bounded by a total number of points.
#[derive(Debug)]
pub struct Cache {
    inner: Mutex<CacheInner>,
    max_points: usize,
}

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<(String, String), Entry>,
    points: usize,
    clock: u64,
    /// Series being read into the cache in the background.
    filling: std::collections::HashSet<(String, String)>,
}

#[derive(Debug)]
struct Entry {
    journal_len: u64,
    series: Arc<Series>,
    used: u64,
}

impl Cache {
    /// A cache holding at most `max_points` points in all.
    #[must_use]
    pub fn new(max_points: usize) -> Self {
        Self {
            inner: Mutex::new(CacheInner::default()),
            max_points,
        }
    }

    /// The series of `metric` of run `id` read when it had `journal_len`
    /// points (any number that grows with the series), if kept.
    pub fn get(&self, id: &str, metric: &str, journal_len: u64) -> Option<Arc<Series>> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(&(id.to_owned(), metric.to_owned()))?;
        if entry.journal_len != journal_len {
            return None;
        }
        entry.used = now;
        Some(entry.series.clone())
    }

    /// Whether the caller is the one to read `metric` of run `id` into the
    /// cache in the background: false while another does.
    pub fn start_filling(&self, id: &str, metric: &str) -> bool {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.filling.insert((id.to_owned(), metric.to_owned()))
    }

    /// The background read of [`Cache::start_filling`] is over.
    pub fn stop_filling(&self, id: &str, metric: &str) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.filling.remove(&(id.to_owned(), metric.to_owned()));
    }

    /// Drops every series kept.
    pub fn clear(&self) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.entries.clear();
        inner.points = 0;
    }

    /// Keeps a series, dropping the least recently used ones beyond the bound.
    pub fn put(&self, id: &str, metric: &str, journal_len: u64, series: Arc<Series>) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.clock += 1;
        let used = inner.clock;
        let key = (id.to_owned(), metric.to_owned());
        if let Some(old) = inner.entries.remove(&key) {
            inner.points -= old.series.len();
        }
        inner.points += series.len();
        inner.entries.insert(
            key,
            Entry {
                journal_len,
                series,
                used,
            },
        );
        while inner.points > self.max_points && inner.entries.len() > 1 {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.points -= e.series.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Series {
        let points: Vec<(i64, i64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64, i as i64 * 1_000_000_000, v))
            .collect();
        Series::from_points(&points, 0)
    }

    #[test]
    fn small_series_come_back_whole() {
        let s = series(&[1.0, f64::NAN, 3.0]);
        let v = downsample(&s, XAxis::Step, None, None, 10);
        assert_eq!(v.x, vec![0.0, 1.0, 2.0]);
        assert_eq!(v.y, vec![Some(1.0), None, Some(3.0)]);
        assert!(!v.downsampled);
    }

    #[test]
    fn a_spike_survives() {
        let mut values = vec![0.0; 1_000_000];
        values[777_777] = 100.0;
        values[123_456] = -5.0;
        let s = series(&values);
        let v = downsample(&s, XAxis::Step, None, None, 2000);
        assert!(v.downsampled);
        assert!(v.x.len() <= 2000, "{}", v.x.len());
        assert!(v.y.contains(&Some(100.0)));
        assert!(v.y.contains(&Some(-5.0)));
        let spike = v.y.iter().position(|y| *y == Some(100.0)).unwrap();
        assert!((v.x[spike] - 777_777.0).abs() < f64::EPSILON);
        assert!(v.x.windows(2).all(|w| w[0] <= w[1]), "x stays in order");
    }

    #[test]
    fn unordered_steps_are_filtered_one_by_one() {
        let points: Vec<(i64, i64, f64)> =
            [5, 1, 7, 3, 9].iter().map(|&s| (s, s, s as f64)).collect();
        let s = Series::from_points(&points, 0);
        let v = downsample(&s, XAxis::Step, Some(2.0), Some(7.0), 10);
        assert_eq!(v.x, vec![5.0, 7.0, 3.0]);
        let v = downsample(&s, XAxis::Step, Some(2.0), Some(7.0), 2);
        assert_eq!(
            v.y,
            vec![Some(7.0), Some(3.0)],
            "max then min, in logging order"
        );
        assert!(v.downsampled);
    }

    #[test]
    fn ranges_and_time() {
        let s = series(&(0..100).map(f64::from).collect::<Vec<_>>());
        let v = downsample(&s, XAxis::Time, Some(10.0), Some(19.0), 100);
        assert_eq!(v.in_range, 10);
        assert_eq!(v.x.first(), Some(&10.0));
        assert_eq!(v.y.last(), Some(&Some(19.0)));
    }

    #[test]
    fn the_cache_is_bounded_and_checks_the_journal_length() {
        let cache = Cache::new(5);
        cache.put("a", "m", 10, Arc::new(series(&[1.0, 2.0, 3.0])));
        assert!(cache.get("a", "m", 10).is_some());
        assert!(
            cache.get("a", "m", 11).is_none(),
            "a grown journal is read again"
        );
        cache.put("b", "m", 10, Arc::new(series(&[1.0, 2.0, 3.0])));
        assert!(
            cache.get("a", "m", 10).is_none(),
            "the least recently used went"
        );
        assert!(cache.get("b", "m", 10).is_some());
    }

    #[test]
    fn nan_and_infinities_are_listed_where_they_were_logged() {
        let mut values = vec![1.0; 10_000];
        values[10] = f64::NAN;
        values[5000] = f64::INFINITY;
        values[5001] = f64::NAN;
        values[9000] = f64::NEG_INFINITY;
        let s = series(&values);
        let whole = downsample(&s, XAxis::Step, None, None, 100_000);
        let at = |v: &View| -> Vec<(f64, String)> {
            v.nonfinite
                .iter()
                .map(|n| (n.x, format!("{}", n.value)))
                .collect()
        };
        let want = vec![
            (10.0, "NaN".to_owned()),
            (5000.0, "inf".to_owned()),
            (5001.0, "NaN".to_owned()),
            (9000.0, "-inf".to_owned()),
        ];
        assert_eq!(at(&whole), want);
        assert_eq!(whole.y[5000], None);
        // Downsampled, each is still marked, and no bucket's line point is
        // an infinity (the line is drawn from finite values).
        let small = downsample(&s, XAxis::Step, None, None, 100);
        assert!(small.downsampled);
        assert_eq!(at(&small), want);
        assert!(small.y.iter().all(|y| y == &Some(1.0)), "{:?}", small.y);
        let json = small.to_json("loss", "step");
        assert_eq!(
            json["nonfinite"][1],
            serde_json::json!({"x": 5000.0, "value": "Infinity"})
        );
        assert_eq!(json["nonfinite"][3]["value"], "-Infinity");
    }

    #[test]
    fn wall_clock_x_adds_the_start() {
        let start = 1_700_000_000_000_000_000_i64;
        let s = Series::from_points(
            &[
                (0, start + 500_000_000, 1.0),
                (1, start + 2_000_000_000, 2.0),
            ],
            start,
        );
        let v = downsample(&s, XAxis::Wall, None, None, 10);
        assert_eq!(v.x, vec![1_700_000_000.5, 1_700_000_002.0]);
        let v = downsample(&s, XAxis::Wall, Some(1_700_000_001.0), None, 10);
        assert_eq!(v.y, vec![Some(2.0)]);
    }

    #[test]
    fn a_metric_against_another_pairs_by_step_and_orders_by_x() {
        // y logged at steps 0..5; x logged at steps 1, 2, 4 (decreasing) and
        // twice at step 4 (the last one counts), NaN at 2.
        let y = series(&[10.0, 11.0, 12.0, 13.0, 14.0]);
        let x = Series::from_points(
            &[(1, 0, 0.9), (2, 0, f64::NAN), (4, 0, 0.5), (4, 0, 0.2)],
            0,
        );
        let paired = y.against(&x);
        let v = downsample(&paired, XAxis::Metric, None, None, 10);
        assert_eq!(v.x, vec![0.2, 0.9]);
        assert_eq!(v.y, vec![Some(14.0), Some(11.0)]);
        let v = downsample(&paired, XAxis::Metric, Some(0.5), None, 10);
        assert_eq!(v.x, vec![0.9]);
    }

    #[test]
    fn a_streamed_view_is_the_view_of_the_whole_series() {
        let start = 1_700_000_000_123_456_789_i64;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0, 1, 2, 3, 7, 100, 1999, 2000, 2001, 4096, 50_000] {
            let points: Vec<(i64, i64, f64)> = (0..n)
                .map(|i| {
                    let r = next();
                    let value = match r % 23 {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2 => f64::NEG_INFINITY,
                        3 => 1.0,
                        _ => (r >> 11) as f64 / 1e6 - 4e6,
                    };
                    let step = if r % 5 == 0 { (r >> 40) as i64 } else { i };
                    (step, start + i * 1_000_003 + (r % 977) as i64, value)
                })
                .collect();
            let whole = Series::from_points(&points, start);
            for axis in [XAxis::Step, XAxis::Time, XAxis::Wall] {
                for max in [0, 2, 3, 4, 5, 100, 2000, 100_000] {
                    let mut s = Streamed::new(points.len(), axis, start, max);
                    for &(step, nanos, value) in &points {
                        s.push(step, nanos, value);
                    }
                    let streamed = s.finish().unwrap();
                    let want = downsample(&whole, axis, None, None, max);
                    let bits = |v: &View| {
                        (
                            v.x.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                            v.y.iter().map(|y| y.map(f64::to_bits)).collect::<Vec<_>>(),
                            v.nonfinite
                                .iter()
                                .map(|p| (p.x.to_bits(), p.value.to_bits()))
                                .collect::<Vec<_>>(),
                            v.in_range,
                            v.downsampled,
                        )
                    };
                    assert_eq!(bits(&streamed), bits(&want), "n {n}, {axis:?}, max {max}");
                }
            }
        }
        let short = Streamed::new(3, XAxis::Step, 0, 10);
        assert!(short.finish().is_none(), "fewer points than announced");
    }

    #[test]
    fn the_last_point_survives_downsampling() {
        // A series whose last point is neither its bucket's smallest nor
        // its largest: a legend at rest shows it as the run's last value.
        let values: Vec<f64> = (0..100_000).map(|i| f64::from(i % 7)).collect();
        let s = series(&values);
        for max in [3, 100, 2000, 99_999] {
            let v = downsample(&s, XAxis::Step, None, None, max);
            assert!(v.downsampled);
            assert!(v.x.len() <= max, "{} points for {max}", v.x.len());
            assert_eq!(v.x.last(), Some(&99_999.0), "max_points {max}");
            assert_eq!(v.y.last(), Some(&Some(f64::from(99_999 % 7))));
        }
    }
}
