//! The S7 client on tokio: one TCP connection, one request in flight.
//!
//! Connect = TCP connect, COTP connect request / confirm (TSAPs), S7 setup communication (PDU
//! size negotiation), each bounded by the timeout. Then read var and write var requests, each
//! sent whole and answered whole within the timeout. Every answer must carry the PDU reference
//! of its request and as many items as were asked; anything else — a timeout, a malformed or
//! foreign frame, a header error class, a disconnect — is an [`S7Error`] that ends the session:
//! the caller drops the client and connects again, so a late answer can never be taken for the
//! answer to the next request. Per-item return codes (e.g. "object does not exist" for a
//! missing DB) are not errors here; they come back with the items.

use crate::codec::{self, CodecError, Connection, ReadItem, ReturnCode, Setup, VarSpec, WriteItem};
use crate::config::S7Config;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a connect or a request failed. Every one ends the session.
#[derive(Debug, thiserror::Error)]
pub enum S7Error {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Transport(#[from] std::io::Error),
    #[error("the PLC closed the connection")]
    Closed,
    #[error("bad frame from the PLC: {0}")]
    Codec(#[from] CodecError),
    #[error("answer does not match the request: {0}")]
    Mismatch(String),
    /// The PLC refused the whole request with a header error; the session is fine.
    #[error("the PLC refused the request: error class {class:#04x} ({}), code {code:#04x}", codec::error_class_name(*class))]
    Refused { class: u8, code: u8 },
    /// The PLC answered fewer items than asked (snap7 servers answer at most 20 and the pure
    /// Python one writes only the first); the session is fine, the request must be smaller.
    #[error("asked for {asked} items in one request, the PLC answered {got}")]
    ItemCount { asked: usize, got: usize },
}

/// The PDU size we ask for unless configured: what S7-300/400 CPUs accept at most is 240 or
/// 480, S7-1200/1500 accept 240 … 960.
pub const DEFAULT_PDU_SIZE: u16 = 480;

/// An open session with a CPU.
pub struct Client {
    stream: TcpStream,
    rx: Vec<u8>,
    pdu: u16,
    next_ref: u16,
    timeout: Duration,
}

impl Client {
    /// Connects, opens the COTP connection and negotiates the PDU size.
    pub async fn connect(cfg: &S7Config) -> Result<Client, S7Error> {
        let target = cfg.target();
        let stream = tokio::time::timeout(
            cfg.timeout,
            TcpStream::connect((cfg.host.as_str(), cfg.port)),
        )
        .await
        .map_err(|_| S7Error::Timeout(cfg.timeout))?
        .map_err(|source| S7Error::Connect { target, source })?;
        // One small request at a time, answered before the next: send each at once.
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            rx: Vec::with_capacity(1024),
            pdu: cfg.pdu_size,
            next_ref: 1,
            timeout: cfg.timeout,
        };
        let cr =
            codec::encode_connect_request(&Connection::request(cfg.local_tsap, cfg.remote_tsap));
        let cc = c.exchange(&cr).await?;
        codec::decode_connect_confirm(&cc)?;
        let asked = Setup {
            max_amq_calling: 1,
            max_amq_called: 1,
            pdu_length: cfg.pdu_size,
        };
        let pdu_ref = c.take_ref();
        let answer = c
            .exchange(&codec::encode_setup_request(pdu_ref, &asked))
            .await?;
        let setup = codec::decode_setup_response(&answer)?;
        c.check_ref(pdu_ref, setup.pdu_ref)?;
        // A CPU may answer with less than asked, never more; take the smaller to be safe.
        c.pdu = setup.body.pdu_length.min(cfg.pdu_size);
        if !cfg.connect_delay.is_zero() {
            tokio::time::sleep(cfg.connect_delay).await;
        }
        Ok(c)
    }

    /// The negotiated PDU size.
    pub fn pdu_size(&self) -> u16 {
        self.pdu
    }

    /// One read var request; the items come back in request order.
    pub async fn read(&mut self, specs: &[VarSpec]) -> Result<Vec<ReadItem>, S7Error> {
        let pdu_ref = self.take_ref();
        let frame = codec::encode_read_request(pdu_ref, specs)?;
        let answer = self.exchange(&frame).await?;
        let msg = codec::decode_read_response(&answer).map_err(|e| refused(e, pdu_ref))?;
        self.check_ref(pdu_ref, msg.pdu_ref)?;
        item_count(specs.len(), msg.body.len())?;
        Ok(msg.body)
    }

    /// One write var request; a return code per item, in request order.
    pub async fn write(&mut self, items: &[WriteItem]) -> Result<Vec<ReturnCode>, S7Error> {
        let pdu_ref = self.take_ref();
        let frame = codec::encode_write_request(pdu_ref, items)?;
        let answer = self.exchange(&frame).await?;
        let msg = codec::decode_write_response(&answer).map_err(|e| refused(e, pdu_ref))?;
        self.check_ref(pdu_ref, msg.pdu_ref)?;
        item_count(items.len(), msg.body.len())?;
        Ok(msg.body)
    }

    /// Closes the TCP connection (S7 has no logout; the CPU frees the connection on close).
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }

    fn take_ref(&mut self) -> u16 {
        let r = self.next_ref;
        // Never 0: some CPUs treat reference 0 as "none".
        self.next_ref = self.next_ref.checked_add(1).unwrap_or(1);
        r
    }

    fn check_ref(&self, sent: u16, got: u16) -> Result<(), S7Error> {
        if sent == got {
            Ok(())
        } else {
            Err(S7Error::Mismatch(format!(
                "PDU reference {got}, expected {sent}"
            )))
        }
    }

    /// Sends one frame and returns the next whole frame, both within the timeout.
    async fn exchange(&mut self, frame: &[u8]) -> Result<Vec<u8>, S7Error> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            self.stream.write_all(frame).await?;
            self.recv().await
        })
        .await
        .map_err(|_| S7Error::Timeout(timeout))?
    }

    async fn recv(&mut self) -> Result<Vec<u8>, S7Error> {
        loop {
            if let Some(n) = codec::frame_len(&self.rx)?
                && self.rx.len() >= n
            {
                let rest = self.rx.split_off(n);
                return Ok(std::mem::replace(&mut self.rx, rest));
            }
            let mut chunk = [0u8; 2048];
            let got = self.stream.read(&mut chunk).await?;
            if got == 0 {
                return Err(S7Error::Closed);
            }
            self.rx.extend_from_slice(&chunk[..got]);
        }
    }
}

/// A header error answering our request is a refusal; one for another request is a stream
/// out of step.
fn refused(e: CodecError, sent: u16) -> S7Error {
    match e {
        CodecError::Plc {
            pdu_ref,
            class,
            code,
        } if pdu_ref == sent => S7Error::Refused { class, code },
        e => S7Error::Codec(e),
    }
}

fn item_count(asked: usize, got: usize) -> Result<(), S7Error> {
    if got == asked {
        Ok(())
    } else if 0 < got && got < asked {
        Err(S7Error::ItemCount { asked, got })
    } else {
        Err(S7Error::Mismatch(format!(
            "asked for {asked} items, got {got}"
        )))
    }
}

impl S7Error {
    /// Whether the connection must be dropped: everything but an answer that refused the
    /// request properly.
    pub fn ends_session(&self) -> bool {
        !matches!(self, S7Error::Refused { .. } | S7Error::ItemCount { .. })
    }

    pub fn result(&self) -> petra_drivers::RequestResult {
        match self {
            S7Error::Timeout(_) => petra_drivers::RequestResult::Timeout,
            S7Error::Refused { .. } | S7Error::ItemCount { .. } => {
                petra_drivers::RequestResult::Exception
            }
            _ => petra_drivers::RequestResult::Error,
        }
    }

    pub fn reason(&self) -> petra_core::BadReason {
        use petra_core::BadReason;
        match self {
            S7Error::Timeout(_) => BadReason::Timeout,
            S7Error::Codec(_)
            | S7Error::Mismatch(_)
            | S7Error::Refused { .. }
            | S7Error::ItemCount { .. } => BadReason::DeviceError,
            _ => BadReason::NotConnected,
        }
    }
}
