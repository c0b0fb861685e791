//! The per-entry map of extracted values that parsing stages fill and later stages read by name.
//!
//! A handful of values per entry: a vector with linear lookup is faster than hashing and allocates once.

use std::sync::Arc;

/// Names are shared with the stage that extracts them, so setting a value allocates only the value.
#[derive(Debug, Clone, Default)]
pub struct Extracted(Vec<(Arc<str>, String)>);

impl Extracted {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| **n == *name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name`, replacing an earlier value (a later stage wins, as in Promtail).
    pub fn set(&mut self, name: &Arc<str>, value: String) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.clone(), value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
