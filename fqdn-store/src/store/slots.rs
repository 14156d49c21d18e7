//! The mapping table: a slab of (address, name) mappings threaded on an
//! intrusive least-recently-used list, plus a lazily cleaned min-heap of
//! deadlines so an expired mapping is found in `O(log n)`.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::BinaryHeap;
use std::sync::Arc;

const NIL: u32 = u32::MAX;

/// One address -> name mapping.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub(crate) ip: IpAddr,
    pub(crate) name: Arc<str>,
    /// When the TTL (clamped) runs out, in nanoseconds.
    pub(crate) expires: u64,
    /// Until when a live connection keeps it (see `FqdnStore::touch`).
    pub(crate) kept_until: u64,
    prev: u32,
    next: u32,
}

impl Mapping {
    pub(crate) fn deadline(&self) -> u64 {
        self.expires.max(self.kept_until)
    }
}

#[derive(Debug, Clone, Default)]
struct Slot {
    generation: u32,
    mapping: Option<Mapping>,
}

/// Slab + LRU list + deadline heap. Indices are `u32` slot numbers.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    entries: Vec<Slot>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    len: usize,
    deadlines: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl Slots {
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            deadlines: BinaryHeap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, index: u32) -> Option<&Mapping> {
        self.entries.get(index as usize)?.mapping.as_ref()
    }

    /// Stores a mapping as the most recently used and returns its slot.
    pub(crate) fn insert(&mut self, ip: IpAddr, name: Arc<str>, expires: u64) -> u32 {
        let mapping = Mapping {
            ip,
            name,
            expires,
            kept_until: 0,
            prev: NIL,
            next: NIL,
        };
        let index = if let Some(index) = self.free.pop() {
            self.entries[index as usize].mapping = Some(mapping);
            index
        } else {
            let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 mappings");
            self.entries.push(Slot {
                generation: 0,
                mapping: Some(mapping),
            });
            index
        };
        self.len += 1;
        self.link_front(index);
        self.schedule(index);
        index
    }

    /// Removes a mapping and returns it.
    pub(crate) fn remove(&mut self, index: u32) -> Option<Mapping> {
        self.unlink(index);
        let slot = self.entries.get_mut(index as usize)?;
        let mapping = slot.mapping.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
        if self.len == 0 {
            // Start over so a drained table gives its memory back.
            *self = Self::new();
        }
        Some(mapping)
    }

    /// Moves a mapping to the front of the LRU list and lets `update`
    /// change its times; reschedules it when its deadline moved.
    pub(crate) fn use_now(&mut self, index: u32, update: impl FnOnce(&mut Mapping)) {
        let Some(mapping) = self
            .entries
            .get_mut(index as usize)
            .and_then(|slot| slot.mapping.as_mut())
        else {
            return;
        };
        let before = mapping.deadline();
        update(mapping);
        let moved = mapping.deadline() != before;
        self.unlink(index);
        self.link_front(index);
        if moved {
            self.schedule(index);
        }
    }

    /// The least recently used mapping.
    pub(crate) fn least_recent(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// A mapping whose deadline is at or before `now`, soonest first.
    pub(crate) fn expired(&mut self, now: u64) -> Option<u32> {
        while let Some(&Reverse((deadline, index, generation))) = self.deadlines.peek() {
            let current = self
                .entries
                .get(index as usize)
                .filter(|slot| slot.generation == generation);
            let live = current
                .and_then(|slot| slot.mapping.as_ref())
                .is_some_and(|m| m.deadline() == deadline);
            if !live {
                self.deadlines.pop();
                continue;
            }
            return (deadline <= now).then_some(index);
        }
        None
    }

    fn schedule(&mut self, index: u32) {
        let slot = &self.entries[index as usize];
        if let Some(mapping) = &slot.mapping {
            self.deadlines
                .push(Reverse((mapping.deadline(), index, slot.generation)));
        }
        // Refreshes leave stale heap entries behind; rebuild when they
        // outnumber the live ones so the heap stays O(len).
        if self.deadlines.len() > 2 * self.len + 64 {
            let live = self.entries.iter().enumerate().filter_map(|(index, slot)| {
                let mapping = slot.mapping.as_ref()?;
                Some(Reverse((
                    mapping.deadline(),
                    u32::try_from(index).ok()?,
                    slot.generation,
                )))
            });
            self.deadlines = live.collect();
        }
    }

    fn link_front(&mut self, index: u32) {
        let old_head = self.head;
        if let Some(mapping) = self.mapping_mut(index) {
            mapping.prev = NIL;
            mapping.next = old_head;
        }
        if let Some(head) = self.mapping_mut(old_head) {
            head.prev = index;
        }
        self.head = index;
        if self.tail == NIL {
            self.tail = index;
        }
    }

    fn unlink(&mut self, index: u32) {
        let Some(mapping) = self.mapping_mut(index) else {
            return;
        };
        let (prev, next) = (mapping.prev, mapping.next);
        mapping.prev = NIL;
        mapping.next = NIL;
        match self.mapping_mut(prev) {
            Some(before) => before.next = next,
            None => self.head = next,
        }
        match self.mapping_mut(next) {
            Some(after) => after.prev = prev,
            None => self.tail = prev,
        }
    }

    fn mapping_mut(&mut self, index: u32) -> Option<&mut Mapping> {
        if index == NIL {
            return None;
        }
        self.entries.get_mut(index as usize)?.mapping.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn lru_order_follows_use() {
        let mut slots = Slots::new();
        let a = slots.insert(ip(1), "a".into(), 100);
        let b = slots.insert(ip(2), "b".into(), 100);
        let c = slots.insert(ip(3), "c".into(), 100);
        assert_eq!(slots.least_recent(), Some(a));
        slots.use_now(a, |_| {});
        assert_eq!(slots.least_recent(), Some(b));
        slots.remove(b);
        assert_eq!(slots.least_recent(), Some(c));
        slots.remove(c);
        assert_eq!(slots.least_recent(), Some(a));
        slots.remove(a);
        assert_eq!((slots.least_recent(), slots.len()), (None, 0));
    }

    #[test]
    fn expired_skips_stale_heap_entries() {
        let mut slots = Slots::new();
        let a = slots.insert(ip(1), "a".into(), 10);
        let b = slots.insert(ip(2), "b".into(), 20);
        assert_eq!(slots.expired(5), None);
        assert_eq!(slots.expired(10), Some(a));
        slots.use_now(a, |m| m.expires = 30);
        assert_eq!(slots.expired(25), Some(b), "a's old deadline is stale");
        slots.remove(b);
        let reused = slots.insert(ip(3), "c".into(), 40);
        assert_eq!(reused, b);
        assert_eq!(
            slots.expired(35),
            Some(a),
            "b's heap entry does not match the reused slot"
        );
    }

    #[test]
    fn the_heap_stays_proportional_to_live_mappings() {
        let mut slots = Slots::new();
        let a = slots.insert(ip(1), "a".into(), 0);
        for deadline in 1..10_000 {
            slots.use_now(a, |m| m.expires = deadline);
        }
        assert!(slots.deadlines.len() <= 2 * slots.len() + 65);
        assert_eq!(slots.expired(9_999), Some(a));
    }
}
