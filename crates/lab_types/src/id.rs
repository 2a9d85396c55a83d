//! Run ids: 128 bits, time-ordered, shown by their first 8 hex digits.
//!
//! The first 32 bits count quarter seconds since 2025-01-01 UTC, so ids sort by
//! start time and the short form changes often enough that runs started close
//! together still differ in it. A project claims the short form with an atomic
//! `mkdir`, bumping the counter when two runs start in the same quarter second,
//! which keeps short ids unique inside one project. The remaining 96 bits are
//! random, so ids from different machines never meet.

use std::fmt;
use std::str::FromStr;

/// 2025-01-01T00:00:00Z in Unix seconds.
const EPOCH_SECS: i64 = 1_735_689_600;

/// A run's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u128);

impl RunId {
    /// A new id whose time slot is taken from `time_nanos` plus `bump` slots.
    #[must_use]
    pub fn new(time_nanos: i64, bump: u32) -> Self {
        let quarter_secs = ((time_nanos / 250_000_000) - EPOCH_SECS * 4).max(0) as u64;
        let slot = (quarter_secs as u32).wrapping_add(bump);
        let mut random = [0u8; 12];
        // Without the OS's random source there is still the clock and pid:
        // enough to keep ids apart on one machine.
        if getrandom::fill(&mut random).is_err() {
            let fallback = (time_nanos as u128) ^ (u128::from(std::process::id()) << 64);
            random.copy_from_slice(&fallback.to_le_bytes()[..12]);
        }
        let mut low = [0u8; 16];
        low[4..].copy_from_slice(&random);
        Self((u128::from(slot) << 96) | u128::from_be_bytes(low))
    }

    /// When the time slot numbered `slot` (an id's first 32 bits, its short
    /// form) starts, in nanoseconds since the Unix epoch.
    #[must_use]
    pub fn slot_start_nanos(slot: u32) -> i64 {
        (EPOCH_SECS * 4 + i64::from(slot)) * 250_000_000
    }

    /// Its time slot: the first 32 bits, what the short form spells.
    #[must_use]
    pub fn slot(self) -> u32 {
        (self.0 >> 96) as u32
    }

    /// The same id in time slot `slot` (kept if it is later already).
    #[must_use]
    pub fn at_least_slot(self, slot: u32) -> Self {
        if self.slot() >= slot {
            self
        } else {
            Self((u128::from(slot) << 96) | (self.0 & ((1u128 << 96) - 1)))
        }
    }

    /// The same id with its time slot moved on by one (used when the short form is taken).
    #[must_use]
    pub fn next_slot(self) -> Self {
        let slot = ((self.0 >> 96) as u32).wrapping_add(1);
        Self((u128::from(slot) << 96) | (self.0 & ((1u128 << 96) - 1)))
    }

    /// The id from its 16 big-endian bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    /// The 16 big-endian bytes.
    #[must_use]
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The first 8 hex digits: how runs are shown and how their folders are named.
    #[must_use]
    pub fn short(self) -> String {
        format!("{:08x}", (self.0 >> 96) as u32)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a run id: expected 32 hexadecimal digits")]
pub struct ParseRunIdError(String);

impl FromStr for RunId {
    type Err = ParseRunIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(ParseRunIdError(s.to_owned()));
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParseRunIdError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_round_trip() {
        let a = RunId::new(1_800_000_000_000_000_000, 0);
        let b = RunId::new(1_800_000_001_000_000_000, 0);
        assert!(a < b);
        assert_ne!(a.short(), b.short());
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert!(text.starts_with(&a.short()));
        assert_eq!(text.parse::<RunId>().unwrap(), a);
        assert_eq!(RunId::from_bytes(a.to_bytes()), a);
    }

    #[test]
    fn next_slot_changes_only_the_short_form() {
        let a = RunId::new(1_800_000_000_000_000_000, 0);
        let b = a.next_slot();
        assert_ne!(a.short(), b.short());
        assert_eq!(a.to_string()[8..], b.to_string()[8..]);
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!("xyz".parse::<RunId>().is_err());
        assert!("g".repeat(32).parse::<RunId>().is_err());
    }
}
