//! Probe identities for concurrently live tracers.
//!
//! Every live tracer needs its own non-zero ICMP identifier (0 matches every
//! reply; equal ids corrupt each other's results), its own UDP source port and
//! its own range of TCP source ports (trippy-core uses the probe sequence as
//! the TCP source port). A [`Slot`] bundles the three; the [`SlotPool`] hands
//! out distinct slots and takes them back when a [`SlotLease`] drops.
//!
//! The numbering is rotated by a per-process offset so that two transitwatch
//! processes on one host (a daemon and a `trace` command) are unlikely to
//! share identifiers.
//!
//! Free slots are handed out oldest-returned first: a tracer's late
//! replies (an echo reply or time-exceeded still on its way when the round
//! ended) carry its identifier and sequence numbers, which the next tracer
//! of the same slot would take for its own (every ICMP tracer starts at
//! the same sequence). Reusing the slot returned longest ago puts every
//! other free slot's use between the two.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most tracers that may be live at once in one process. trippy-core
/// calls `select()`, which cannot watch descriptors >= 1024: this keeps the
/// process well below that even before the fd budget applies.
pub const MAX_SLOTS: u16 = 200;
const UDP_SRC_PORT_BASE: u16 = 20_000;
const UDP_SRC_PORT_SPAN: u16 = 20_000;
const TCP_SEQ_BASE: u16 = 20_000;
/// TCP sequences (= source ports) one tracer may use in its single round:
/// one per TTL (at most 64) plus re-issues after `EADDRINUSE`.
pub const TCP_SEQ_BLOCK: u16 = 96;

/// The identity of one live tracer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    index: u16,
    offset: u16,
}

impl Slot {
    fn rotated(self, span: u16) -> u16 {
        ((u32::from(self.index) + u32::from(self.offset)) % u32::from(span)) as u16
    }

    /// ICMP identifier: never 0.
    #[must_use]
    pub fn trace_id(self) -> u16 {
        1 + self.rotated(u16::MAX - 1)
    }

    /// UDP source port.
    #[must_use]
    pub fn udp_src_port(self) -> u16 {
        UDP_SRC_PORT_BASE + self.rotated(UDP_SRC_PORT_SPAN)
    }

    /// First TCP sequence (and source port); the tracer uses
    /// [`TCP_SEQ_BLOCK`] from there.
    #[must_use]
    pub fn tcp_initial_sequence(self) -> u16 {
        TCP_SEQ_BASE + self.rotated(MAX_SLOTS) * TCP_SEQ_BLOCK
    }
}

struct Inner {
    // std Mutex: held only to push or pop a few integers, never across an
    // await, so a blocking lock is cheaper than an async one. A queue:
    // slots are taken from the front and returned to the back.
    free: Mutex<VecDeque<u16>>,
    // Counts free slots so that callers wait (asynchronously) for capacity
    // instead of failing; a permit guarantees the free list has a slot.
    available: Arc<Semaphore>,
    offset: u16,
}

/// Hands out distinct [`Slot`]s.
#[derive(Clone)]
pub struct SlotPool {
    inner: Arc<Inner>,
}

impl Default for SlotPool {
    fn default() -> Self {
        Self::new(MAX_SLOTS)
    }
}

impl SlotPool {
    /// A pool of `size` slots (at most [`MAX_SLOTS`]).
    #[must_use]
    pub fn new(size: u16) -> Self {
        let size = size.clamp(1, MAX_SLOTS);
        let offset = (std::process::id() % u32::from(u16::MAX)) as u16;
        Self {
            inner: Arc::new(Inner {
                free: Mutex::new((0..size).collect()),
                available: Arc::new(Semaphore::new(usize::from(size))),
                offset,
            }),
        }
    }

    /// Wait for `count` slots. `None` only if the pool was closed.
    pub async fn lease(&self, count: u16) -> Option<SlotLease> {
        let permit = Arc::clone(&self.inner.available)
            .acquire_many_owned(u32::from(count))
            .await
            .ok()?;
        let mut free = self.inner.free.lock().ok()?;
        if free.len() < usize::from(count) {
            return None;
        }
        let slots = free
            .drain(..usize::from(count))
            .map(|index| Slot {
                index,
                offset: self.inner.offset,
            })
            .collect();
        Some(SlotLease {
            slots,
            pool: Arc::clone(&self.inner),
            _permit: permit,
        })
    }
}

/// Slots in use; returned to the pool on drop.
pub struct SlotLease {
    slots: Vec<Slot>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl SlotLease {
    /// The leased slots.
    #[must_use]
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        // Slots go back before the permit is released (fields drop after
        // this body), so a woken waiter always finds them.
        if let Ok(mut free) = self.pool.free.lock() {
            free.extend(self.slots.iter().map(|s| s.index));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_slot_has_distinct_nonzero_ids_and_ports() {
        for offset in [0, 1, 199, 12_345, u16::MAX - 1] {
            let slots: Vec<Slot> = (0..MAX_SLOTS).map(|index| Slot { index, offset }).collect();
            let ids: HashSet<u16> = slots.iter().map(|s| s.trace_id()).collect();
            let udp: HashSet<u16> = slots.iter().map(|s| s.udp_src_port()).collect();
            let tcp: HashSet<u16> = slots.iter().map(|s| s.tcp_initial_sequence()).collect();
            assert_eq!(ids.len(), usize::from(MAX_SLOTS));
            assert!(!ids.contains(&0));
            assert_eq!(udp.len(), usize::from(MAX_SLOTS));
            assert_eq!(tcp.len(), usize::from(MAX_SLOTS));
            // TCP blocks never overlap and stay below trippy-core's limit
            // on the initial sequence.
            let max = tcp.iter().max().copied().unwrap_or_default();
            assert!(u32::from(max) + u32::from(TCP_SEQ_BLOCK) < u32::from(u16::MAX - 1024));
        }
    }

    #[tokio::test]
    async fn a_returned_slot_is_reused_last() {
        let pool = SlotPool::new(5);
        let first = pool.lease(1).await.unwrap();
        let id = first.slots()[0].trace_id();
        drop(first);
        // Every other slot comes before it again.
        let mut seen = Vec::new();
        for _ in 0..4 {
            let lease = pool.lease(1).await.unwrap();
            seen.push(lease.slots()[0].trace_id());
        }
        assert!(!seen.contains(&id), "{id} reused among {seen:?}");
        assert_eq!(pool.lease(1).await.unwrap().slots()[0].trace_id(), id);
    }

    #[tokio::test]
    async fn leases_are_disjoint_and_return_on_drop() {
        let pool = SlotPool::new(4);
        let a = pool.lease(3).await.unwrap();
        let b_fut = pool.lease(3);
        // Only one slot is free: the second lease must wait.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), b_fut).await;
        assert!(waited.is_err());
        let ids_a: HashSet<u16> = a.slots().iter().map(|s| s.trace_id()).collect();
        drop(a);
        let b = pool.lease(3).await.unwrap();
        let c = pool.lease(1).await.unwrap();
        let ids_b: HashSet<u16> = b.slots().iter().map(|s| s.trace_id()).collect();
        assert_eq!(ids_b.len(), 3);
        assert!(!ids_b.contains(&c.slots()[0].trace_id()));
        assert!(ids_a.len() == 3);
    }
}
