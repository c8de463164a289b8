//! Expiry timers: a min-heap of `(deadline, slot, generation)` with lazy
//! deletion.
//!
//! Refreshing a connection on every packet only moves its `expires` later,
//! which costs nothing here: the heap item keeps its earlier deadline and,
//! when it comes up, is pushed again at the entry's current `expires`. Only
//! a *shorter* deadline (e.g. ESTABLISHED 900 s -> TIME_WAIT 120 s) pushes a
//! new item, O(log n); the old one becomes stale and is skipped when it
//! surfaces (generation or `timer_at` mismatch). So each entry has at most
//! a handful of heap items, and per-packet work is O(1).

use super::EngineTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerItem {
    pub(crate) at: EngineTime,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<TimerItem>>,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, item: TimerItem) {
        self.heap.push(Reverse(item));
    }

    pub(crate) fn peek(&self) -> Option<TimerItem> {
        self.heap.peek().map(|r| r.0)
    }

    pub(crate) fn pop(&mut self) -> Option<TimerItem> {
        self.heap.pop().map(|r| r.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
