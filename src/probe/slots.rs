//! Probe identities for concurrently live tracers, and the bound on them.
//!
//! Every live tracer needs its own non-zero ICMP identifier (0 matches every
//! reply; equal ids corrupt each other's results), its own UDP source port and
//! its own range of TCP source ports (trippy-core uses the probe sequence as
//! the TCP source port). A [`Slot`] bundles the three; the [`SlotPool`] hands
//! out distinct slots and takes them back when a [`SlotLease`] drops. A trace
//! holds one slot while its tracers run, one after another, on one blocking
//! thread: the pool's size, [`MAX_SLOTS`], is also the most tracer threads
//! the process runs at once.
//!
//! The numbering is rotated by a per-process offset so that two transitwatch
//! processes on one host (a daemon and a `trace` command) are unlikely to
//! share identifiers.
//!
//! A tracer's late replies (an echo reply or time-exceeded still on its way
//! when its last round ended) carry its identifier and sequence numbers,
//! which the next tracer of the same slot would take for its own (every
//! trace starts at the same sequence). Two things keep them apart: each use
//! of a slot gets the next of [`GENERATIONS`] identifiers and UDP source
//! ports of its own (all distinct from every other slot's), so a slot meets
//! its old identifier again only after that many uses; and free slots are
//! handed out oldest-returned first, putting the other free slots' uses in
//! between.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most tracers that may be live at once in one process, each on a
/// blocking thread of its own. Every raw receive socket gets a copy of every
/// ICMP packet the host receives, so each live tracer adds to the cost of
/// every reply: a few dozen keep a path's round trips overlapped without
/// multiplying that copy. It also keeps the process far below `select()`'s
/// descriptor limit (1024) before the fd budget applies.
pub const MAX_SLOTS: u16 = 32;
const UDP_SRC_PORT_BASE: u16 = 20_000;
const UDP_SRC_PORT_SPAN: u16 = 20_000;
/// ICMP identifiers and UDP source ports a slot rotates through, one per
/// use; identifiers are 1..=65534 (0 matches every reply).
pub const GENERATIONS: u16 = UDP_SRC_PORT_SPAN / MAX_SLOTS;
const TCP_SEQ_BASE: u16 = 20_000;
/// The highest initial sequence trippy-core accepts (its
/// `MAX_INITIAL_SEQUENCE`, `u16::MAX - 2 * 512`).
const TCP_SEQ_LIMIT: u16 = u16::MAX - 1024;
/// TCP sequences (= source ports) one slot owns: every tracer of one trace
/// (the RTT probe, then its rounds: one per TTL and round, plus re-issues
/// after `EADDRINUSE`) takes its sequences from this block.
pub const TCP_SEQ_BLOCK: u16 = (TCP_SEQ_LIMIT - TCP_SEQ_BASE) / MAX_SLOTS - 1;

/// The identity of one live tracer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    index: u16,
    offset: u16,
    /// How many times this slot was leased before.
    uses: u32,
}

impl Slot {
    /// This slot's position among all, rotated by the process offset.
    fn rotated(self) -> u16 {
        ((u32::from(self.index) + u32::from(self.offset)) % u32::from(MAX_SLOTS)) as u16
    }

    /// This use's generation, rotated by the process offset.
    fn generation(self) -> u16 {
        let spread = u32::from(self.offset / MAX_SLOTS);
        (self.uses.wrapping_add(spread) % u32::from(GENERATIONS)) as u16
    }

    /// ICMP identifier: never 0; distinct between slots (it is congruent to
    /// the slot modulo [`MAX_SLOTS`]) and between a slot's last
    /// [`GENERATIONS`] uses.
    #[must_use]
    pub fn trace_id(self) -> u16 {
        1 + self.generation() * MAX_SLOTS + self.rotated()
    }

    /// UDP source port: distinct in the same way as [`Slot::trace_id`].
    #[must_use]
    pub fn udp_src_port(self) -> u16 {
        UDP_SRC_PORT_BASE + self.generation() * MAX_SLOTS + self.rotated()
    }

    /// First TCP sequence (and source port); the slot's tracers use
    /// [`TCP_SEQ_BLOCK`] from there.
    #[must_use]
    pub fn tcp_initial_sequence(self) -> u16 {
        TCP_SEQ_BASE + self.rotated() * TCP_SEQ_BLOCK
    }
}

struct Inner {
    // std Mutex: held only to push or pop a few integers, never across an
    // await, so a blocking lock is cheaper than an async one. A queue:
    // slots (index, uses so far) are taken from the front and returned to
    // the back.
    free: Mutex<VecDeque<(u16, u32)>>,
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
                free: Mutex::new((0..size).map(|index| (index, 0)).collect()),
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
            .map(|(index, uses)| Slot {
                index,
                offset: self.inner.offset,
                uses,
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
            free.extend(self.slots.iter().map(|s| (s.index, s.uses.wrapping_add(1))));
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
            for uses in [0, 1, u32::from(GENERATIONS) - 1, 77_777, u32::MAX] {
                let slots: Vec<Slot> = (0..MAX_SLOTS)
                    .map(|index| Slot {
                        index,
                        offset,
                        // Live slots have been used any number of times.
                        uses: uses.wrapping_add(u32::from(index) * 7),
                    })
                    .collect();
                let ids: HashSet<u16> = slots.iter().map(|s| s.trace_id()).collect();
                let udp: HashSet<u16> = slots.iter().map(|s| s.udp_src_port()).collect();
                let tcp: HashSet<u16> = slots.iter().map(|s| s.tcp_initial_sequence()).collect();
                assert_eq!(ids.len(), usize::from(MAX_SLOTS));
                assert!(!ids.contains(&0));
                assert_eq!(udp.len(), usize::from(MAX_SLOTS));
                assert!(udp.iter().all(|p| (UDP_SRC_PORT_BASE
                    ..UDP_SRC_PORT_BASE + UDP_SRC_PORT_SPAN)
                    .contains(p)));
                assert_eq!(tcp.len(), usize::from(MAX_SLOTS));
                // TCP blocks never overlap and stay within trippy-core's
                // limit on the initial sequence.
                let max = tcp.iter().max().copied().unwrap_or_default();
                assert!(u32::from(max) + u32::from(TCP_SEQ_BLOCK) <= u32::from(TCP_SEQ_LIMIT));
            }
        }
    }

    #[test]
    fn a_slot_changes_id_and_port_with_every_use_for_a_while() {
        let slot = |uses| Slot {
            index: 3,
            offset: 4242,
            uses,
        };
        let ids: HashSet<u16> = (0..u32::from(GENERATIONS))
            .map(|u| slot(u).trace_id())
            .collect();
        let ports: HashSet<u16> = (0..u32::from(GENERATIONS))
            .map(|u| slot(u).udp_src_port())
            .collect();
        assert_eq!(ids.len(), usize::from(GENERATIONS));
        assert_eq!(ports.len(), usize::from(GENERATIONS));
        assert_eq!(
            slot(0).tcp_initial_sequence(),
            slot(1).tcp_initial_sequence()
        );
    }

    #[tokio::test]
    async fn a_returned_slot_is_reused_last_with_a_new_id() {
        let pool = SlotPool::new(5);
        let first = pool.lease(1).await.unwrap();
        let (block, id) = (
            first.slots()[0].tcp_initial_sequence(),
            first.slots()[0].trace_id(),
        );
        drop(first);
        // Every other slot comes before it again.
        let mut seen = Vec::new();
        for _ in 0..4 {
            let lease = pool.lease(1).await.unwrap();
            seen.push(lease.slots()[0].tcp_initial_sequence());
        }
        assert!(!seen.contains(&block), "{block} reused among {seen:?}");
        let again = pool.lease(1).await.unwrap().slots()[0];
        assert_eq!(again.tcp_initial_sequence(), block);
        // Its second use answers to another identifier: late replies to
        // the first are not taken for its own.
        assert_ne!(again.trace_id(), id);
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
