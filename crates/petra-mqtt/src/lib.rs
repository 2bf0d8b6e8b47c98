//! Petra's MQTT driver: broker topics into signals, signals out to the broker, commands in.
//!
//! - [`config`]: the driver as the configuration compiler hands it over.
//! - [`payload`]: payloads in (plain text or JSON with a pointer) and out (value, quality,
//!   timestamp), pure.
//! - [`client`]: the only file that knows the MQTT library (rumqttc), with TLS on rustls.
//! - [`driver`]: the task per broker connection, on the supervisor every driver shares.
//!
//! Errors: [`MqttError`] for a connection; payload and command problems are strings that end up
//! in the log and the driver's status, never a crash.

pub mod board;
pub mod client;
pub mod config;
pub mod driver;
pub mod payload;

pub use board::Board;
pub use client::MqttError;
pub use config::{Broker, MqttConfig, Publish, Subscription, Tls};
pub use driver::{Commands, Driver};
