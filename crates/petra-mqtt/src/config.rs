//! An MQTT driver as the configuration compiler hands it over: signals resolved, topics and
//! filters checked, defaults filled in. `petra-config` builds it; the driver runs it.

use petra_core::{SignalId, ValueType};
use std::path::PathBuf;
use std::time::Duration;

/// One `type: mqtt` entry of `drivers:`.
#[derive(Clone, Debug, PartialEq)]
pub struct MqttConfig {
    pub name: String,
    pub broker: Broker,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// How long the connect (TCP, TLS, CONNACK) may take.
    pub timeout: Duration,
    pub keep_alive: Duration,
    /// Longest wait between reconnect attempts.
    pub reconnect_max: Duration,
    /// `{prefix}/status`, `{prefix}/signals/…`, `{prefix}/write/…`.
    pub prefix: String,
    pub subscribe: Vec<Subscription>,
    pub publish: Option<Publish>,
    /// Accept writes on `{prefix}/write/{signal}`.
    pub commands: bool,
}

/// Where the broker is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS with these files.
    pub tls: Option<Tls>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates (PEM) the broker's certificate must chain to.
    pub ca_file: PathBuf,
    /// A client certificate and its key (PEM), for brokers that require one.
    pub client_auth: Option<(PathBuf, PathBuf)>,
}

/// One `subscribe` entry: messages on topics matching `filter` feed `signal`.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// A topic filter; `+` and `#` wildcards allowed.
    pub filter: String,
    pub signal: SignalId,
    pub signal_name: String,
    pub signal_type: ValueType,
    /// A JSON pointer (RFC 6901) into a JSON payload; `None`: the payload is plain text.
    pub json: Option<String>,
}

/// The `publish` section.
#[derive(Clone, Debug, PartialEq)]
pub struct Publish {
    /// The selected signals, in id order, with their names.
    pub signals: Vec<(SignalId, String)>,
    /// 0 or 1.
    pub qos: u8,
    pub retain: bool,
    /// A numeric signal is published when it moved more than this since the last publish
    /// (0: on every change). Quality changes are always published.
    pub deadband: f64,
    /// A signal is published at most this often; the latest value goes out when it is due.
    pub min_interval: Duration,
}

impl MqttConfig {
    /// `mqtt[s]://host:port`, for logs.
    pub fn target(&self) -> String {
        let scheme = if self.broker.tls.is_some() {
            "mqtts"
        } else {
            "mqtt"
        };
        format!("{scheme}://{}:{}", self.broker.host, self.broker.port)
    }

    /// Signals the driver publishes: its change feed watches them.
    pub fn output_signals(&self) -> Vec<SignalId> {
        self.publish
            .as_ref()
            .map(|p| p.signals.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }

    /// Topic of the online/offline status (retained, and the last will).
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }
}
