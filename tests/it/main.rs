//! The one integration-test binary; each module below is one area of behaviour.

// OnCalendar engine versus `systemd-analyze calendar`, expression by expression.
mod schedule_oncalendar;
