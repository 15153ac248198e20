//! Fuzz target: any string through the cron parser and, when it parses, a few iterations.
#![no_main]

use hc_core::schedule::{Schedule, ScheduleKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(schedule) = Schedule::parse(ScheduleKind::Cron, text, "Europe/Dublin") {
        let start = chrono::DateTime::from_timestamp(1_616_893_200, 0).expect("valid timestamp");
        for t in schedule.iter_after(start).take(3) {
            assert!(t > start);
        }
    }
});
