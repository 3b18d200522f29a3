//! Work spread over the cores while a database loads (signature files read, patterns'
//! filters worked out, Hyperscan databases compiled): scoped threads, no pool of their own.

use std::sync::Mutex;

/// The number of cores to spread work over.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over `items`, at most one item per core at a time; results in the order of `items`.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let cores = cores();
    if items.len() < 2 || cores < 2 {
        return items.into_iter().map(f).collect();
    }
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let results = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for _ in 0..cores.min(n) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..100).collect();
        let got = super::map(items, |i| {
            // Uneven work, so that items finish out of order.
            std::thread::sleep(std::time::Duration::from_micros((100 - i) * 10));
            i * 2
        });
        assert_eq!(got, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(Vec::<u8>::new(), |x| x).is_empty());
    }
}
