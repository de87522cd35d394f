//! The last N values of a series (durations of the last 1,000 invocations): a fixed ring, so memory
//! stays bounded however long the server runs.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Recent {
    values: VecDeque<f64>,
    capacity: usize,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        // Grows as values come: a handler never invoked holds no buffer.
        Self { values: VecDeque::new(), capacity }
    }

    /// Adds a value, forgetting the oldest once full.
    pub fn push(&mut self, value: f64) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// The values, oldest first, sorted ascending.
    pub fn sorted(&self) -> Vec<f64> {
        let mut sorted: Vec<f64> = self.values.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The newest `n` values, oldest first.
    pub fn last(&self, n: usize) -> Vec<f64> {
        self.values.iter().skip(self.values.len().saturating_sub(n)).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_values() {
        let mut recent = Recent::new(3);
        for v in [5.0, 1.0, 4.0, 2.0] {
            recent.push(v);
        }
        assert_eq!(recent.sorted(), vec![1.0, 2.0, 4.0]);
        assert_eq!(recent.last(2), vec![4.0, 2.0]);
        assert_eq!(recent.last(10), vec![1.0, 4.0, 2.0]);
        assert!(Recent::new(3).sorted().is_empty());
    }
}
