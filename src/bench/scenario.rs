//! The measurement loops of `parity bench`, in MLPerf LoadGen's vocabulary:
//!
//! - **closed loop** (`single-stream`, and `offline` at a batch size): each of
//!   `concurrency` workers issues its next query as soon as the last one completed;
//! - **server**: queries arrive by a Poisson process at a target rate and wait in one
//!   FIFO queue for `concurrency` workers; latency counts from the arrival, so it
//!   includes queueing.
//!
//! Every loop warms up first, then runs until both the minimum query count and the
//! minimum duration are reached (as LoadGen does), or the maximum duration ends it.
//! Workers own or share sessions: worker `i` uses session `i % sessions`, behind a
//! mutex (uncontended when every worker has its own).

use crate::backend::{BackendError, Session};
use crate::suite::runner::{guarded, run_guarded};
use crate::tensor::random::SplitMix64;
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long and how wide to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Untimed queries per worker before measuring.
    pub warmup: usize,
    /// Measure at least this many queries...
    pub min_queries: usize,
    /// ...and for at least this long.
    pub min_duration: Duration,
    /// Stop issuing queries after this long, even if `min_queries` is not reached.
    pub max_duration: Duration,
    /// Parallel workers.
    pub concurrency: usize,
}

/// What a loop measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Latency of each completed query, ms, in completion order. Server: from arrival.
    pub latencies_ms: Vec<f64>,
    /// Server only: time from arrival to start, ms, in completion order.
    pub queueing_ms: Vec<f64>,
    /// From the first query (server: the start of the arrival window) to the last
    /// completion (server: at least the whole window).
    pub wall: Duration,
    /// Server only: queries that could not start before the run's deadline.
    pub dropped: usize,
    /// The loop ended at `max_duration` before `min_queries` completed.
    pub cut_short: bool,
}

impl Measured {
    /// Completed queries per second of wall time.
    pub fn throughput_per_s(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Sessions shared by the workers.
pub struct Pool {
    slots: Vec<Mutex<Slot>>,
    /// `--verify`: every response is checked and counted; a failed query is counted,
    /// not fatal.
    verifier: Option<std::sync::Arc<super::verify::Verifier>>,
}

/// One session and whether the current query's inputs are bound in it.
struct Slot {
    session: Box<dyn Session>,
    bound: bool,
}

impl Pool {
    /// Wraps loaded sessions (at least one).
    pub fn new(sessions: Vec<Box<dyn Session>>) -> Pool {
        Pool {
            slots: sessions
                .into_iter()
                .map(|session| {
                    Mutex::new(Slot {
                        session,
                        bound: false,
                    })
                })
                .collect(),
            verifier: None,
        }
    }

    /// Checks every response with `verifier` (which then sees every query's outcome).
    pub fn verifying(self, verifier: std::sync::Arc<super::verify::Verifier>) -> Pool {
        Pool {
            verifier: Some(verifier),
            ..self
        }
    }

    /// Runs one query on worker `worker`'s session: the bound inputs when
    /// [`Pool::prepare`] bound them, else `inputs`.
    fn run(&self, worker: usize, inputs: &[Tensor]) -> Result<(), BackendError> {
        let slot = &self.slots[worker % self.slots.len()];
        // A panic inside an engine poisons the mutex; the session is still usable to
        // report the error, so take it either way.
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.bound {
            return guarded(|| slot.session.run_bound());
        }
        let outcome = run_guarded(slot.session.as_mut(), inputs);
        match &self.verifier {
            Some(v) => {
                v.record(&outcome);
                Ok(())
            }
            None => outcome.map(|_| ()),
        }
    }

    /// Runs `inputs` once on every session (checking they work before timing starts;
    /// when verifying, the check is counted like any query and a failure does not stop
    /// the run), then binds them in every session whose backend can hold them between
    /// runs.
    pub fn prepare(&self, inputs: &[Tensor]) -> Result<(), BackendError> {
        for slot in &self.slots {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            slot.bound = false;
            let checked = run_guarded(slot.session.as_mut(), inputs);
            match &self.verifier {
                // Verifying: the check is one more verified query; a failure is counted
                // (an endpoint that fails now and then), not the end of the run.
                Some(v) => v.record(&checked),
                None => drop(checked?),
            }
            // A bound run leaves its outputs in the engine: nothing to verify.
            slot.bound = self.verifier.is_none() && guarded(|| slot.session.bind(inputs))?;
        }
        Ok(())
    }
}

/// Warm-up lasts at least this long (when `warmup` > 0): a count of queries alone
/// is over in microseconds on a small model, before caches and clocks settle, and the
/// first stability window then measures the ramp.
const WARMUP_FLOOR: Duration = Duration::from_millis(100);

/// Runs `settings.warmup` untimed queries per worker's session, repeating them until
/// [`WARMUP_FLOOR`] has passed; nothing when `warmup` is 0. The warm-up stops at
/// `max_duration` too, whatever `warmup` asks: `--warmup` in the billions on a slow
/// model (or many workers, each warmed in turn) must not outlast the run's own bound.
fn warm_up(pool: &Pool, inputs: &[Tensor], settings: Settings) -> Result<(), BackendError> {
    if settings.warmup == 0 {
        return Ok(());
    }
    let start = Instant::now();
    loop {
        for w in 0..settings.concurrency.max(1) {
            for _ in 0..settings.warmup {
                if start.elapsed() >= settings.max_duration {
                    return Ok(());
                }
                pool.run(w, inputs)?;
            }
        }
        if start.elapsed() >= WARMUP_FLOOR {
            return Ok(());
        }
    }
}

/// What the workers of one loop share: the first error any of them met, which stops
/// them all.
pub(super) struct Control {
    error: Mutex<Option<BackendError>>,
    stop: AtomicBool,
}

impl Control {
    /// Records `e` (the first one wins) and tells every worker to stop.
    pub(super) fn fail(&self, e: BackendError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether a worker failed.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `body(worker, control)` on `workers` scoped threads and concatenates what they
/// return, or gives the first error a worker reported through `control`.
pub(super) fn on_workers<T: Send>(
    workers: usize,
    body: impl Fn(usize, &Control) -> Vec<T> + Sync,
) -> Result<Vec<T>, BackendError> {
    let control = Control {
        error: Mutex::new(None),
        stop: AtomicBool::new(false),
    };
    let results: Vec<Vec<T>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (body, control) = (&body, &control);
                scope.spawn(move || body(w, control))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    match control
        .error
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        Some(e) => Err(e),
        None => Ok(results.into_iter().flatten().collect()),
    }
}

/// Closed loop: `concurrency` workers, each issuing its next query when the last one
/// completes.
pub fn closed_loop(
    pool: &Pool,
    inputs: &[Tensor],
    settings: Settings,
) -> Result<Measured, BackendError> {
    let workers = settings.concurrency.max(1);
    warm_up(pool, inputs, settings)?;
    let completed = AtomicUsize::new(0);
    let start = Instant::now();
    let mut all: Vec<(Instant, f64)> = on_workers(workers, |w, control| {
        let mut mine = Vec::new();
        loop {
            let elapsed = start.elapsed();
            let enough = completed.load(Ordering::Relaxed) >= settings.min_queries
                && elapsed >= settings.min_duration;
            if enough || elapsed >= settings.max_duration || control.stopped() {
                break;
            }
            let t = Instant::now();
            if let Err(e) = pool.run(w, inputs) {
                control.fail(e);
                break;
            }
            let done = Instant::now();
            mine.push((done, (done - t).as_secs_f64() * 1e3));
            completed.fetch_add(1, Ordering::Relaxed);
        }
        mine
    })?;
    let wall = start.elapsed();
    all.sort_by_key(|&(done, _)| done);
    Ok(Measured {
        cut_short: all.len() < settings.min_queries,
        latencies_ms: all.into_iter().map(|(_, ms)| ms).collect(),
        queueing_ms: Vec::new(),
        wall,
        dropped: 0,
    })
}

/// Arrival times of `n` queries of a Poisson process at `qps` conditioned on exactly
/// `n` arrivals in `[0, n / qps)`: sorted uniform points (the order statistics of a
/// Poisson process given its count), so the offered rate is exactly `qps` while the
/// gaps keep their exponential character. Deterministic for a seed.
pub fn poisson_arrivals(n: usize, qps: f64, seed: u64) -> Vec<Duration> {
    let span = n as f64 / qps;
    let mut rng = SplitMix64::new(seed);
    let mut t: Vec<f64> = (0..n).map(|_| rng.unit() * span).collect();
    t.sort_by(f64::total_cmp);
    t.into_iter().map(Duration::from_secs_f64).collect()
}

/// How long a server run may go on after its last arrival before queued queries are
/// dropped: a quarter of the arrival span, at least one second.
fn drain_allowance(span: Duration) -> Duration {
    (span / 4).max(Duration::from_secs(1))
}

/// Server scenario: `n = max(min_queries, qps × min_duration)` Poisson arrivals at
/// `qps` (at most `qps × max_duration`) into one FIFO queue served by `concurrency`
/// workers.
pub fn server(
    pool: &Pool,
    inputs: &[Tensor],
    settings: Settings,
    qps: f64,
    seed: u64,
) -> Result<Measured, BackendError> {
    let workers = settings.concurrency.max(1);
    warm_up(pool, inputs, settings)?;
    // Arrivals past --max-duration could never start: at most that many are drawn, so a
    // huge --min-queries neither allocates them all nor stretches the run past its bound.
    let cap = (qps * settings.max_duration.as_secs_f64()).ceil() as usize;
    let n = settings
        .min_queries
        .max((qps * settings.min_duration.as_secs_f64()).ceil() as usize)
        .min(cap)
        .max(1);
    let arrivals = poisson_arrivals(n, qps, seed);
    // The arrival window: the achieved rate is measured over it (or longer, until the
    // last completion), so it never exceeds the offered rate.
    let span = Duration::from_secs_f64(n as f64 / qps);
    let deadline = (span + drain_allowance(span)).min(settings.max_duration.max(span));
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    // (completion since start, latency ms, queueing ms) per completed query.
    let mut all: Vec<(Duration, f64, f64)> = on_workers(workers, |w, control| {
        let mut mine = Vec::new();
        while !control.stopped() {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&arrival) = arrivals.get(i) else {
                break;
            };
            wait_until(start, arrival);
            let began = start.elapsed();
            if began > deadline {
                break;
            }
            if let Err(e) = pool.run(w, inputs) {
                control.fail(e);
                break;
            }
            let done = start.elapsed();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            mine.push((done, ms(done - arrival), ms(began - arrival)));
        }
        mine
    })?;
    all.sort_by_key(|&(done, _, _)| done);
    let last = all.last().map_or(span, |&(done, _, _)| done.max(span));
    Ok(Measured {
        dropped: n - all.len(),
        // --max-duration left no room for --min-queries arrivals at this rate.
        cut_short: n < settings.min_queries,
        wall: last,
        latencies_ms: all.iter().map(|&(_, l, _)| l).collect(),
        queueing_ms: all.iter().map(|&(_, _, q)| q).collect(),
    })
}

/// Sleeps until `at` after `start`, spinning for the last 200 µs so that arrivals are
/// issued on time at rates where a sleep's wake-up jitter would matter.
fn wait_until(start: Instant, at: Duration) {
    const SPIN: Duration = Duration::from_micros(200);
    loop {
        let now = start.elapsed();
        if now >= at {
            return;
        }
        let left = at - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::IoSpec;

    /// A session that sleeps for a fixed time: latency the test knows.
    struct Sleeper(Duration);

    impl Session for Sleeper {
        fn inputs(&self) -> &[IoSpec] {
            &[]
        }
        fn outputs(&self) -> &[IoSpec] {
            &[]
        }
        fn run(&mut self, _: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
            std::thread::sleep(self.0);
            Ok(Vec::new())
        }
    }

    fn settings(min_queries: usize, concurrency: usize) -> Settings {
        Settings {
            warmup: 1,
            min_queries,
            min_duration: Duration::ZERO,
            max_duration: Duration::from_secs(30),
            concurrency,
        }
    }

    #[test]
    fn arrivals_are_sorted_deterministic_and_at_the_rate() {
        let a = poisson_arrivals(10_000, 500.0, 7);
        assert_eq!(a, poisson_arrivals(10_000, 500.0, 7));
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(a.last().unwrap().as_secs_f64() <= 20.0);
        // Gaps of a Poisson process: mean 1/qps, coefficient of variation ~1.
        let gaps: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((mean * 500.0 - 1.0).abs() < 0.01, "{mean}");
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
    }

    #[test]
    fn closed_loop_counts_queries_and_workers_overlap() {
        let pool = Pool::new(vec![
            Box::new(Sleeper(Duration::from_millis(2))),
            Box::new(Sleeper(Duration::from_millis(2))),
        ]);
        let m = closed_loop(&pool, &[], settings(40, 2)).unwrap();
        assert!(m.latencies_ms.len() >= 40 && m.latencies_ms.len() <= 41);
        assert!(m.latencies_ms.iter().all(|&l| l >= 2.0));
        assert!(!m.cut_short);
        // A maximum duration ends a loop that cannot reach its query count.
        let s = Settings {
            max_duration: Duration::from_millis(30),
            ..settings(1_000_000, 1)
        };
        let m = closed_loop(&pool, &[], s).unwrap();
        assert!(m.cut_short && m.latencies_ms.len() < 1000);
    }

    #[test]
    fn warm_up_and_arrivals_stop_at_the_maximum_duration() {
        let pool = Pool::new(vec![Box::new(Sleeper(Duration::from_millis(5)))]);
        let s = Settings {
            warmup: usize::MAX,
            min_queries: usize::MAX,
            max_duration: Duration::from_millis(200),
            ..settings(1, 1)
        };
        let start = Instant::now();
        let m = closed_loop(&pool, &[], s).unwrap();
        // Warm-up and measurement, each cut at 200 ms (3 s: room for a loaded machine).
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(m.cut_short && !m.latencies_ms.is_empty());
        let start = Instant::now();
        let m = server(&pool, &[], s, 100.0, 1).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        // 100 q/s for 0.2 s: 20 arrivals drawn, not usize::MAX.
        assert_eq!(m.latencies_ms.len() + m.dropped, 20);
        assert!(m.cut_short);
    }

    #[test]
    fn server_below_capacity_meets_its_rate_and_drops_nothing() {
        // An instant session: the achieved rate is the arrival process's.
        let pool = Pool::new(vec![Box::new(Sleeper(Duration::ZERO))]);
        let s = Settings {
            min_duration: Duration::from_millis(500),
            ..settings(100, 1)
        };
        let m = server(&pool, &[], s, 200.0, 1).unwrap();
        assert_eq!(m.dropped, 0);
        assert_eq!(m.latencies_ms.len(), 100);
        // Never faster than offered: the wall time covers the arrival window.
        assert!(m.wall >= Duration::from_millis(500));
        assert!(m.queueing_ms.iter().all(|&q| q >= 0.0));
        assert!(m
            .latencies_ms
            .iter()
            .zip(&m.queueing_ms)
            .all(|(l, q)| l >= q));
    }

    #[test]
    fn an_overloaded_server_drops_what_cannot_start() {
        // Capacity 100 qps offered 1000 qps for 0.2 s of arrivals: the queue cannot
        // drain within the 1 s allowance.
        let pool = Pool::new(vec![Box::new(Sleeper(Duration::from_millis(10)))]);
        let s = Settings {
            min_duration: Duration::from_millis(200),
            ..settings(200, 1)
        };
        let m = server(&pool, &[], s, 1000.0, 1).unwrap();
        assert!(m.dropped > 50, "{}", m.dropped);
        assert!(m.latencies_ms.len() + m.dropped == 200);
    }
}
