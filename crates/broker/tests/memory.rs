//! The broker contract on the in-memory broker (its own test tools are tested in `memory.rs`).

use switchyard_broker::conformance::memory::MemoryHarness;

switchyard_broker::broker_contract!(MemoryHarness);
