//! The apply path's own threads. Partition, tenant, customer and journey actors
//! do RocksDB point reads and iterator walks inline while they apply a batch;
//! once the database outgrows the block cache those reads block on disk. Run on
//! the node's main runtime they would stall the HTTP surface and the intake's
//! polling (and with it heartbeats and rebalance callbacks); on a runtime of
//! their own they stall only other apply work. Queries already run on the
//! blocking pool (`node::http`), and so does the retention sweep.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// Name of the apply runtime's worker threads.
pub const THREAD_NAME: &str = "touchline-apply";

/// One per process, never dropped (dropping a runtime from async code panics).
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
        Builder::new_multi_thread().worker_threads(threads).thread_name(THREAD_NAME).enable_all().build().expect("start the apply runtime")
    })
}

/// Spawns `fut` on the apply runtime: actors it spawns (and theirs) run there too.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(fut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Work that blocks its thread on the apply runtime leaves a single-threaded
    /// caller's runtime free: its timer fires on time while both apply workers
    /// are blocked.
    #[tokio::test(flavor = "current_thread")]
    async fn blocking_apply_work_does_not_stall_the_callers_runtime() {
        let start = Instant::now();
        let blocked: Vec<_> = (0..4).map(|_| spawn(async { std::thread::sleep(Duration::from_millis(600)) })).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let woke = start.elapsed();
        assert!(woke < Duration::from_millis(400), "the caller's runtime was stalled for {woke:?}");
        for b in blocked {
            b.await.unwrap();
        }
        let name = spawn(async { std::thread::current().name().map(str::to_string) }).await.unwrap();
        assert_eq!(name.as_deref(), Some(THREAD_NAME));
    }
}
