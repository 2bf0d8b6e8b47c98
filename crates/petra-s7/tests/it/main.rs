//! One test binary for petra-s7 (each extra binary relinks everything).

mod address;
mod driver;
mod frames;
mod fuzz;
mod golden;
mod planner;
mod props;
