//! Fuzz target: any string through the OnCalendar parser and, when it parses, a few iterations.
#![no_main]

use hc_core::schedule::{Schedule, ScheduleKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(schedule) = Schedule::parse(ScheduleKind::OnCalendar, text, "America/New_York") {
        let start = chrono::DateTime::from_timestamp(1_636_264_800, 0).expect("valid timestamp");
        for t in schedule.iter_after(start).take(3) {
            assert!(t > start);
        }
    }
});
