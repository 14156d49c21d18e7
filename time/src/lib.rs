//! Instants on the two clocks edgewise meets, as distinct types.
//!
//! The kernel stamps its events with `CLOCK_MONOTONIC` (nanoseconds since
//! boot, `bpf_ktime_get_ns`); capture files, the wall clock and every record
//! edgewise writes use Unix time (nanoseconds since 1970). Both are a `u64`
//! of nanoseconds, so a bare `u64` lets one be passed for the other, and a
//! store fed both would expire its mappings at once or keep them for fifty
//! years. Here they are [`UnixNanos`] and [`MonotonicNanos`]: giving one
//! where the other is asked for does not compile, and the only way across
//! is a [`MonotonicOffset`] measured once by whoever reads both clocks.
//!
//! The types are `#[repr(transparent)]` wrappers of a `u64`: they cost
//! nothing at run time. Arithmetic saturates (never wraps, never panics);
//! durations are [`std::time::Duration`]. The crate reads no clock itself
//! (it is sans-IO): callers turn their clock's reading into an instant
//! ([`UnixNanos::from_system_time`], or `from_nanos` of what
//! `clock_gettime` gave).
//!
//! The edgewise crates take [`UnixNanos`] wherever they ask for "now".
//!
//! ```
//! use edgewise_time::{MonotonicNanos, MonotonicOffset, UnixNanos};
//! use std::time::Duration;
//!
//! // Both clocks read together, once.
//! let offset = MonotonicOffset::new(
//!     UnixNanos::from_secs(1_700_000_000),
//!     MonotonicNanos::from_secs(3_600),
//! );
//! // A kernel event stamped 2 s later on the monotonic clock.
//! let event = MonotonicNanos::from_secs(3_602);
//! let at = offset.to_unix(event);
//! assert_eq!(at, UnixNanos::from_secs(1_700_000_002));
//! assert_eq!(at.saturating_duration_since(UnixNanos::from_secs(1_700_000_000)),
//!            Duration::from_secs(2));
//! ```
//!
//! Mixing them is a type error:
//!
//! ```compile_fail
//! use edgewise_time::{MonotonicNanos, UnixNanos};
//! fn expire(now: UnixNanos) {}
//! expire(MonotonicNanos::from_secs(5));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Defines an instant type: a `u64` of nanoseconds on one clock.
macro_rules! instant {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The clock's origin.
            pub const ZERO: Self = Self(0);
            /// The latest instant; what saturating arithmetic stops at.
            pub const MAX: Self = Self(u64::MAX);

            /// The instant `nanos` nanoseconds after the clock's origin.
            #[must_use]
            pub const fn from_nanos(nanos: u64) -> Self {
                Self(nanos)
            }

            /// The instant `secs` seconds after the clock's origin
            /// (saturating at [`Self::MAX`]).
            #[must_use]
            pub const fn from_secs(secs: u64) -> Self {
                Self(secs.saturating_mul(1_000_000_000))
            }

            /// Nanoseconds since the clock's origin.
            #[must_use]
            pub const fn as_nanos(self) -> u64 {
                self.0
            }

            /// `duration` later, saturating at [`Self::MAX`].
            #[must_use]
            pub const fn saturating_add(self, duration: Duration) -> Self {
                Self(self.0.saturating_add(nanos_of(duration)))
            }

            /// `duration` earlier, saturating at [`Self::ZERO`].
            #[must_use]
            pub const fn saturating_sub(self, duration: Duration) -> Self {
                Self(self.0.saturating_sub(nanos_of(duration)))
            }

            /// How long after `earlier` this is; zero when it is not after.
            #[must_use]
            pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
                Duration::from_nanos(self.0.saturating_sub(earlier.0))
            }
        }
    };
}

instant! {
    /// Nanoseconds since the Unix epoch (1970-01-01T00:00:00Z, leap seconds
    /// not counted): the wall clock, capture files, every edgewise record.
    UnixNanos
}

instant! {
    /// Nanoseconds on `CLOCK_MONOTONIC`, since an unspecified origin (boot
    /// on Linux): how the kernel stamps events and ban deadlines
    /// (`bpf_ktime_get_ns`). It does not jump with the wall clock, and it
    /// means nothing on another machine or after a reboot.
    MonotonicNanos
}

impl UnixNanos {
    /// A wall-clock reading; an instant before 1970 is [`Self::ZERO`], one
    /// after 2554 is [`Self::MAX`].
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        time.duration_since(UNIX_EPOCH)
            .map_or(Self::ZERO, |since| Self::ZERO.saturating_add(since))
    }

    /// The same instant as a [`SystemTime`].
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0)
    }
}

/// The distance between the two clocks, measured once by reading both
/// together: how monotonic instants become Unix instants and back.
///
/// The wall clock can be stepped after the measurement (NTP, an operator);
/// instants converted with an old offset then stay on the old wall clock.
/// Measure again when that matters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonotonicOffset {
    /// `unix - monotonic` at the measurement, in nanoseconds.
    unix_minus_monotonic: i128,
}

impl MonotonicOffset {
    /// The offset between two readings taken at the same moment.
    #[must_use]
    pub const fn new(unix: UnixNanos, monotonic: MonotonicNanos) -> Self {
        Self {
            unix_minus_monotonic: unix.0 as i128 - monotonic.0 as i128,
        }
    }

    /// The Unix instant of a monotonic one (saturating at either end).
    #[must_use]
    pub const fn to_unix(self, instant: MonotonicNanos) -> UnixNanos {
        UnixNanos(clamp(instant.0 as i128 + self.unix_minus_monotonic))
    }

    /// The monotonic instant of a Unix one (saturating at either end), for
    /// deadlines the kernel keeps.
    #[must_use]
    pub const fn to_monotonic(self, instant: UnixNanos) -> MonotonicNanos {
        MonotonicNanos(clamp(instant.0 as i128 - self.unix_minus_monotonic))
    }
}

/// A duration's nanoseconds, saturating at `u64::MAX` (584 years).
#[expect(
    clippy::cast_possible_truncation,
    reason = "in range: checked before the cast (`try_from` is not const)"
)]
const fn nanos_of(duration: Duration) -> u64 {
    let nanos = duration.as_nanos();
    if nanos > u64::MAX as u128 {
        u64::MAX
    } else {
        nanos as u64
    }
}

/// `value` clamped into a `u64`.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "in range: checked before the cast (`try_from` is not const)"
)]
const fn clamp(value: i128) -> u64 {
    if value < 0 {
        0
    } else if value > u64::MAX as i128 {
        u64::MAX
    } else {
        value as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(
            UnixNanos::from_nanos(5).saturating_sub(Duration::from_nanos(9)),
            UnixNanos::ZERO
        );
        assert_eq!(
            UnixNanos::MAX.saturating_add(Duration::from_secs(1)),
            UnixNanos::MAX
        );
        assert_eq!(MonotonicNanos::from_secs(u64::MAX), MonotonicNanos::MAX);
        assert_eq!(
            UnixNanos::from_nanos(3).saturating_duration_since(UnixNanos::from_nanos(7)),
            Duration::ZERO
        );
        assert_eq!(
            UnixNanos::ZERO.saturating_add(Duration::MAX),
            UnixNanos::MAX
        );
    }

    #[test]
    fn an_offset_converts_both_ways() {
        let offset = MonotonicOffset::new(
            UnixNanos::from_secs(1_700_000_000),
            MonotonicNanos::from_secs(100),
        );
        let kernel = MonotonicNanos::from_nanos(100_500_000_000);
        let unix = offset.to_unix(kernel);
        assert_eq!(unix, UnixNanos::from_nanos(1_700_000_000_500_000_000));
        assert_eq!(offset.to_monotonic(unix), kernel);
        // An instant before the monotonic origin stops at zero.
        assert_eq!(
            offset.to_monotonic(UnixNanos::from_secs(5)),
            MonotonicNanos::ZERO
        );
        // A monotonic clock ahead of the wall clock (a machine set to
        // 1970) gives a negative offset, still converted.
        let behind = MonotonicOffset::new(UnixNanos::from_secs(10), MonotonicNanos::from_secs(50));
        assert_eq!(
            behind.to_unix(MonotonicNanos::from_secs(55)),
            UnixNanos::from_secs(15)
        );
        assert_eq!(
            behind.to_unix(MonotonicNanos::from_secs(1)),
            UnixNanos::ZERO
        );
        assert_eq!(
            MonotonicOffset::default().to_unix(MonotonicNanos::from_nanos(42)),
            UnixNanos::from_nanos(42)
        );
    }

    #[test]
    fn system_time_round_trips() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        let unix = UnixNanos::from_system_time(time);
        assert_eq!(unix.as_nanos(), 1_700_000_000_000_000_123);
        assert_eq!(unix.to_system_time(), time);
        assert_eq!(
            UnixNanos::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
            UnixNanos::ZERO
        );
    }

    #[test]
    fn instants_are_free_at_run_time() {
        assert_eq!(size_of::<UnixNanos>(), size_of::<u64>());
        assert_eq!(
            size_of::<Option<MonotonicNanos>>(),
            size_of::<Option<u64>>()
        );
    }
}
