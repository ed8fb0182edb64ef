//! Keeps every file descriptor of the process below `select()`'s limit.
//!
//! trippy-core waits on its sockets with `select()`, which panics on a
//! descriptor >= 1024. Descriptors are allocated lowest-first, so as long as
//! fewer than 1024 are open at once none can reach that number. Tracers draw
//! their worst-case socket count from an [`FdBudget`] before they start and
//! return it when they end; a slice is reserved for everything else the
//! process opens (logs, listeners, databases, HTTP clients).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `FD_SETSIZE` on Linux.
pub const SELECT_FD_LIMIT: usize = 1024;
/// Descriptors kept for the rest of the process.
pub const DEFAULT_RESERVE: usize = 256;

/// How many descriptors the process has open now (`/proc/self/fd`).
///
/// # Errors
/// When `/proc/self/fd` cannot be read.
pub fn open_fd_count() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// A budget of descriptors that tracers may hold at once.
#[derive(Clone)]
pub struct FdBudget {
    // Counts descriptors, not tasks: a TCP tracer holds one socket per
    // probe in flight, an ICMP tracer two. Waiting here (instead of failing)
    // lets a burst of traces queue until sockets close.
    permits: Arc<Semaphore>,
    total: usize,
}

impl Default for FdBudget {
    fn default() -> Self {
        Self::new(DEFAULT_RESERVE)
    }
}

impl FdBudget {
    /// A budget of what `select()` allows, less `reserve`, less what is
    /// already open.
    #[must_use]
    pub fn new(reserve: usize) -> Self {
        let open = open_fd_count().unwrap_or(SELECT_FD_LIMIT / 2);
        let total = SELECT_FD_LIMIT.saturating_sub(reserve + open).max(1);
        Self {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Descriptors the budget holds in all.
    #[must_use]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Wait for `fds` descriptors. `None` if more than the whole budget is
    /// asked for (it could never be granted).
    pub async fn acquire(&self, fds: usize) -> Option<OwnedSemaphorePermit> {
        if fds > self.total {
            return None;
        }
        let n = u32::try_from(fds).ok()?;
        Arc::clone(&self.permits).acquire_many_owned(n).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_open_descriptors() {
        // Other test threads open and close descriptors meanwhile: open
        // enough that the difference cannot be noise.
        let before = open_fd_count().unwrap();
        let files: Vec<_> = (0..50)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        let during = open_fd_count().unwrap();
        assert!(during >= before + 40, "{before} -> {during}");
        drop(files);
    }

    #[tokio::test]
    async fn budget_stays_below_the_select_limit_and_refuses_the_impossible() {
        let budget = FdBudget::new(100);
        assert!(budget.total() + 100 + open_fd_count().unwrap() <= SELECT_FD_LIMIT + 1);
        assert!(budget.acquire(budget.total() + 1).await.is_none());
        let all = budget.acquire(budget.total()).await.unwrap();
        let more = tokio::time::timeout(std::time::Duration::from_millis(20), budget.acquire(1));
        assert!(
            more.await.is_err(),
            "an exhausted budget must make callers wait"
        );
        drop(all);
        assert!(budget.acquire(1).await.is_some());
    }
}
