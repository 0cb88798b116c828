//! Work spread over threads with results in input order: what `check --jobs` uses to
//! open suites and to run suite × backend units, so that a report never depends on
//! which thread finished first.

use crate::panic_guard::lock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `f` applied to every item on up to `jobs` threads, which take the items in order;
/// the results come back in the items' order. With one job (or one item) everything
/// runs on the calling thread, as a plain loop would: a stop signal then interrupts the
/// very call in flight, and nothing is spawned.
pub fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = jobs.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else {
            break;
        };
        let r = f(item);
        lock(&done).push((i, r));
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(work);
        }
    });
    let mut done = done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The default of `--jobs`: the cores this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_the_threads() {
        let items: Vec<u64> = (0..200).collect();
        // Uneven work, so threads finish out of order.
        let slow = |&x: &u64| {
            std::thread::sleep(std::time::Duration::from_micros((x * 37) % 300));
            (x, std::thread::current().id())
        };
        for jobs in [1, 2, 7, 1000] {
            let out = par_map(&items, jobs, slow);
            assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), items, "{jobs}");
            let threads: std::collections::HashSet<_> = out.iter().map(|r| r.1).collect();
            match jobs {
                1 => assert_eq!(threads, [std::thread::current().id()].into()),
                _ => assert!(!threads.contains(&std::thread::current().id())),
            }
        }
        assert!(par_map(&Vec::<u8>::new(), 4, |x| *x).is_empty());
    }
}
