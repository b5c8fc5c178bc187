//! `Task::parse` (and `RawTask::parse` beneath it) on any bytes: never panics, and whatever it accepts survives a round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_wire::Task;

fuzz_target!(|body: &[u8]| {
    for default_algorithm in [None, Some("echo")] {
        if let Ok(task) = Task::parse(body, default_algorithm) {
            let again = Task::parse(&task.to_json_bytes(), None).expect("a parsed task re-parses");
            assert_eq!(again, task);
        }
    }
});
