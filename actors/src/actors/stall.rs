//! Storage stalls of a partition: a RocksDB write that fails (disk full, I/O
//! error) is nobody's record's fault, so the partition neither poisons records
//! nor moves its offset; it retries the same batch with capped exponential
//! backoff until a write succeeds. This is the pure bookkeeping of one such
//! episode (delays, attempts, when to log), unit-tested alone; the partition
//! actor does the I/O.

use std::time::{Duration, Instant};

/// First retry delay after a failed write.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Retry delay cap (RocksDB's own recovery from a full disk polls every 5 s).
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// One storage-failure episode: from the first failed write to the next good one.
#[derive(Debug)]
pub struct Stall {
    pub since: Instant,
    pub attempts: u32,
    pub last_error: String,
    delay: Duration,
}

impl Stall {
    pub fn new(error: String) -> Stall {
        Stall { since: Instant::now(), attempts: 1, last_error: error, delay: FIRST_DELAY }
    }

    /// Records one more failed attempt of the episode; returns the delay before the next try.
    pub fn failed_again(&mut self, error: String) -> Duration {
        self.attempts += 1;
        self.last_error = error;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        self.delay
    }

    /// The delay before the next try.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_counts_attempts() {
        let mut s = Stall::new("no space".into());
        assert_eq!(s.delay(), FIRST_DELAY);
        let delays: Vec<Duration> = (0..8).map(|i| s.failed_again(format!("e{i}"))).collect();
        assert_eq!(delays[0], FIRST_DELAY * 2);
        assert_eq!(delays[1], FIRST_DELAY * 4);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]), "{delays:?}");
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
        assert_eq!(s.attempts, 9);
        assert_eq!(s.last_error, "e7");
    }
}
