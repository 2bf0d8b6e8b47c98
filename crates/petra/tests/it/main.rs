//! End-to-end tests of the `petra` binary. One integration-test binary for the whole crate
//! (each extra one would relink everything).

mod alarms;
mod api;
mod cli;
mod faults;
mod history;
mod hmi;
mod latency;
mod live;
mod modbus;
mod mqtt;
mod plant;
mod plant_harness;
mod s7;
mod scenario;
mod security;
