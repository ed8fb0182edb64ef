//! A first-in first-out queue with a capacity: when full, the oldest entry
//! makes room for the newest.
//!
//! Dropping the oldest keeps the latest state of every path deliverable
//! during a long receiver outage (a resolved notification is never lost to
//! the firing one before it), and bounds the memory and the state file.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A bounded FIFO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundedQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> BoundedQueue<T> {
    /// An empty queue holding at most `capacity` entries (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Append `item`; returns the entries dropped to make room (oldest first).
    pub fn push(&mut self, item: T) -> Vec<T> {
        self.items.push_back(item);
        self.shrink()
    }

    /// Change the capacity; returns the oldest entries that no longer fit.
    pub fn set_capacity(&mut self, capacity: usize) -> Vec<T> {
        self.capacity = capacity.max(1);
        self.shrink()
    }

    fn shrink(&mut self) -> Vec<T> {
        let excess = self.items.len().saturating_sub(self.capacity);
        self.items.drain(..excess).collect()
    }

    /// The oldest entry.
    #[must_use]
    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }

    /// Remove the oldest entry.
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let mut q = BoundedQueue::new(3);
        for i in 1..=3 {
            assert!(q.push(i).is_empty());
        }
        assert_eq!(q.push(4), vec![1]);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(q.set_capacity(1), vec![2, 3]);
        assert_eq!(q.pop(), Some(4));
        assert!(q.is_empty());
        assert_eq!(BoundedQueue::<u8>::new(0).push(1), Vec::<u8>::new());
    }

    #[test]
    fn a_thousand_pushes_stay_within_capacity() {
        let mut q = BoundedQueue::new(100);
        let dropped: usize = (0..1000).map(|i| q.push(i).len()).sum();
        assert_eq!(q.len(), 100);
        assert_eq!(dropped, 900);
        assert_eq!(q.front(), Some(&900));
    }
}
