//! The one file that knows rumqttc (design.md: it is pinned, and a fork with another API may
//! replace it): options and TLS from an [`MqttConfig`], a task that polls rumqttc's event loop
//! and hands events over a channel (so the driver can wait on several things at once without
//! cancelling a poll), and publishing that never blocks.

use crate::config::MqttConfig;
use rumqttc::{AsyncClient, ConnectionError, Event as REvent, LastWill, MqttOptions, Packet, QoS};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What can go wrong with a connection.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("the broker refused the connection: {0}")]
    Refused(String),
    #[error("no connection within {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection failed: {0}")]
    Connection(String),
}

/// What happened on the connection.
#[derive(Debug)]
pub enum Event {
    Connected,
    Message { topic: String, payload: Vec<u8> },
}

/// An open connection: the client handle and the task polling its event loop.
pub struct Link {
    client: AsyncClient,
    events: mpsc::Receiver<Result<Event, MqttError>>,
    poller: JoinHandle<()>,
}

/// Requests rumqttc buffers between the driver and the socket; publishes beyond it wait in the
/// driver (coalesced per signal).
const REQUEST_CAPACITY: usize = 4096;

fn qos(q: u8) -> QoS {
    if q == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

fn options(cfg: &MqttConfig) -> Result<MqttOptions, MqttError> {
    let mut o = MqttOptions::new(
        cfg.client_id.clone(),
        cfg.broker.host.clone(),
        cfg.broker.port,
    );
    o.set_keep_alive(cfg.keep_alive);
    // A new session each time: subscriptions are made again and every published signal is
    // sent again with its latest value on every connect, so nothing depends on the broker
    // keeping our session.
    o.set_clean_session(true);
    o.set_request_channel_capacity(REQUEST_CAPACITY);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_last_will(LastWill::new(
        cfg.status_topic(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &cfg.broker.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(tls)?)),
        ));
    }
    Ok(o)
}

fn tls_config(tls: &crate::config::Tls) -> Result<rustls::ClientConfig, MqttError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read_certs = |path: &std::path::Path| -> Result<Vec<CertificateDer<'static>>, MqttError> {
        CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                MqttError::Tls(format!(
                    "cannot read certificates from {}: {e}",
                    path.display()
                ))
            })
    };
    let mut roots = rustls::RootCertStore::empty();
    let cas = read_certs(&tls.ca_file)?;
    if cas.is_empty() {
        return Err(MqttError::Tls(format!(
            "{} holds no certificate",
            tls.ca_file.display()
        )));
    }
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| MqttError::Tls(format!("{}: {e}", tls.ca_file.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match &tls.client_auth {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                MqttError::Tls(format!("cannot read the key {}: {e}", key.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| MqttError::Tls(format!("client certificate: {e}")))
        }
    }
}

fn error(e: ConnectionError) -> MqttError {
    match e {
        ConnectionError::ConnectionRefused(code) => MqttError::Refused(match code {
            rumqttc::ConnectReturnCode::BadUserNamePassword => {
                "bad user name or password; check `username` and `password`".to_string()
            }
            rumqttc::ConnectReturnCode::NotAuthorized => {
                "not authorized; check `username` and `password`".to_string()
            }
            rumqttc::ConnectReturnCode::BadClientId => {
                "the client id was refused; check `client_id`".to_string()
            }
            other => format!("{other:?}"),
        }),
        ConnectionError::Tls(e) => MqttError::Tls(e.to_string()),
        ConnectionError::NetworkTimeout => MqttError::Timeout(std::time::Duration::ZERO),
        other => MqttError::Connection(other.to_string()),
    }
}

/// Whether `f` is a valid subscription filter (`+` a whole level, `#` the whole last one).
pub fn valid_filter(f: &str) -> bool {
    rumqttc::valid_filter(f)
}

/// Whether `t` is a valid topic to publish to (no wildcards).
pub fn valid_topic(t: &str) -> bool {
    rumqttc::valid_topic(t)
}

impl Link {
    /// Starts connecting; the first event is [`Event::Connected`] or the error.
    pub fn open(cfg: &MqttConfig) -> Result<Link, MqttError> {
        let (client, mut eventloop) = AsyncClient::new(options(cfg)?, REQUEST_CAPACITY);
        eventloop
            .network_options
            .set_connection_timeout(cfg.timeout.as_secs().max(1));
        let (tx, events) = mpsc::channel(1024);
        let poller = tokio::spawn(async move {
            loop {
                let ev = match eventloop.poll().await {
                    Ok(REvent::Incoming(Packet::ConnAck(_))) => Ok(Event::Connected),
                    Ok(REvent::Incoming(Packet::Publish(p))) => Ok(Event::Message {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    }),
                    Ok(_) => continue,
                    Err(e) => Err(error(e)),
                };
                let failed = ev.is_err();
                if tx.send(ev).await.is_err() || failed {
                    // The driver is gone, or the connection is: a new Link replaces this one.
                    return;
                }
            }
        });
        Ok(Link {
            client,
            events,
            poller,
        })
    }

    /// The next event; an error ends the connection.
    pub async fn next(&mut self) -> Result<Event, MqttError> {
        self.events
            .recv()
            .await
            .unwrap_or_else(|| Err(MqttError::Connection("the connection task ended".into())))
    }

    pub fn subscribe(&self, filters: &[String]) -> Result<(), MqttError> {
        if filters.is_empty() {
            return Ok(());
        }
        let subs = filters
            .iter()
            .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        self.client
            .try_subscribe_many(subs)
            .map_err(|e| MqttError::Connection(e.to_string()))
    }

    /// Queues a publish; `false` when the queue is full (try again after the next event).
    pub fn publish(&self, topic: &str, payload: Vec<u8>, q: u8, retain: bool) -> bool {
        self.client
            .try_publish(topic, qos(q), retain, payload)
            .is_ok()
    }

    /// Publishes `payload` on the status topic and disconnects cleanly (no last will).
    pub async fn close(mut self, status: Option<(&str, &'static str)>) {
        if let Some((topic, payload)) = status {
            let _ = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, true, payload);
        }
        let _ = self.client.try_disconnect();
        // Let the poller send what is queued; it ends when the disconnect went out.
        let wait = async {
            while let Some(ev) = self.events.recv().await {
                if ev.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), wait).await;
        self.poller.abort();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.poller.abort();
    }
}
