//! Links: serial ports, TCP (server or client) and UDP, named by one string.
//!
//! | spec | listen | emulate / send |
//! |---|---|---|
//! | `serial:/dev/ttyUSB0?baud=921600` | read the port | write the port |
//! | `tcp-listen:7000` or `tcp-listen:0.0.0.0:7000` | accept front-ends | accept one bridge |
//! | `tcp:host:7000` | connect to a front-end | connect to a bridge |
//! | `udp:7001` or `udp:host:7001` | bind and receive | send datagrams there |
//!
//! A host left out means loopback (`127.0.0.1`): nothing listens on a network interface
//! unless asked to. Byte streams (serial, TCP) carry COBS-delimited frames; UDP carries one
//! raw frame per datagram.
//!
//! Receivers never give up on a link: when a serial device disappears or a TCP peer goes
//! away they reopen it with exponential backoff (100 ms doubling to 5 s), and say so in the
//! log. Every read goes into one fixed buffer.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serialport::SerialPort;

/// Default serial baud rate.
pub const DEFAULT_BAUD: u32 = 921_600;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where codes travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSpec {
    /// A serial port.
    Serial {
        /// Device path.
        path: String,
        /// Baud rate.
        baud: u32,
    },
    /// A TCP server at this address.
    TcpListen(String),
    /// A TCP client of this address.
    Tcp(String),
    /// UDP at this address.
    Udp(String),
}

/// A link spec could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "bad link {spec:?}: {reason}; expected serial:/dev/ttyUSB0?baud=921600, tcp-listen:[host:]port, tcp:host:port or udp:[host:]port"
)]
pub struct LinkSpecError {
    /// The spec given.
    pub spec: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn with_default_host(address: &str) -> String {
    if address.contains(':') {
        address.to_owned()
    } else {
        format!("127.0.0.1:{address}")
    }
}

impl FromStr for LinkSpec {
    type Err = LinkSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let error = |reason: &'static str| LinkSpecError {
            spec: spec.to_owned(),
            reason,
        };
        let (kind, rest) = spec.split_once(':').ok_or_else(|| error("no link kind"))?;
        if rest.is_empty() {
            return Err(error("no address"));
        }
        match kind {
            "serial" => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let mut baud = DEFAULT_BAUD;
                for option in query.split('&').filter(|o| !o.is_empty()) {
                    match option.split_once('=') {
                        Some(("baud", value)) => {
                            baud = value.parse().map_err(|_| error("baud is not a number"))?;
                        }
                        _ => return Err(error("unknown serial option (only baud=N)")),
                    }
                }
                Ok(Self::Serial {
                    path: path.to_owned(),
                    baud,
                })
            }
            "tcp-listen" => Ok(Self::TcpListen(with_default_host(rest))),
            "tcp" if rest.contains(':') => Ok(Self::Tcp(rest.to_owned())),
            "tcp" => Err(error("a TCP client needs host:port")),
            "udp" => Ok(Self::Udp(with_default_host(rest))),
            _ => Err(error("unknown link kind")),
        }
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serial { path, baud } => write!(f, "serial:{path}?baud={baud}"),
            Self::TcpListen(a) => write!(f, "tcp-listen:{a}"),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
            Self::Udp(a) => write!(f, "udp:{a}"),
        }
    }
}

impl LinkSpec {
    /// Whether the link carries a byte stream (COBS framing) rather than datagrams.
    pub fn is_stream(&self) -> bool {
        !matches!(self, Self::Udp(_))
    }
}

/// What one [`Receiver::receive`] call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stream bytes, the first `n` of the buffer.
    Bytes(usize),
    /// One datagram, the first `n` of the buffer.
    Datagram(usize),
    /// Nothing within the timeout (or the link is being reopened).
    Idle,
}

enum Source {
    Serial(Box<dyn SerialPort>),
    TcpServer(TcpListener, Option<TcpStream>),
    TcpClient(Option<TcpStream>),
    Udp(UdpSocket),
}

/// The receiving end of a link.
pub struct Receiver {
    spec: LinkSpec,
    source: Option<Source>,
    backoff: Duration,
    retry_at: Instant,
    timeout: Duration,
    /// Local address of a TCP server or UDP socket (useful with port 0).
    local: Option<SocketAddr>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("spec", &self.spec)
            .field("connected", &self.source.is_some())
            .finish()
    }
}

fn open_serial(path: &str, baud: u32, timeout: Duration) -> io::Result<Box<dyn SerialPort>> {
    serialport::new(path, baud)
        .timeout(timeout)
        .open()
        .map_err(io::Error::other)
}

/// Both directions of a byte-stream link, for talking to a front-end ([`crate::feed`]): the
/// reading half times out after `timeout` without data so the caller can check its deadline.
///
/// # Errors
/// The I/O error of opening the port or socket; UDP is refused (event packets need a stream).
pub fn open_duplex(
    spec: &LinkSpec,
    timeout: Duration,
) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
    let stream = match spec {
        LinkSpec::Serial { path, baud } => {
            let port = open_serial(path, *baud, timeout)?;
            let writer = port.try_clone().map_err(io::Error::other)?;
            return Ok((Box::new(port), Box::new(writer)));
        }
        LinkSpec::Udp(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a front-end is fed over a byte stream: use serial:, tcp: or tcp-listen:",
            ));
        }
        LinkSpec::Tcp(address) => TcpStream::connect(resolve(address)?)?,
        LinkSpec::TcpListen(address) => TcpListener::bind(resolve(address)?)?.accept()?.0,
    };
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    let writer = stream.try_clone()?;
    Ok((Box::new(stream), Box::new(writer)))
}

fn resolve(address: &str) -> io::Result<SocketAddr> {
    address.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to nothing"),
        )
    })
}

impl Receiver {
    /// Opens the receiving end. Servers and UDP sockets bind now (so a bad address is an
    /// error at once); serial ports and TCP clients that cannot open yet are retried.
    ///
    /// # Errors
    /// The I/O error of binding a server or UDP socket.
    pub fn open(spec: &LinkSpec, timeout: Duration) -> io::Result<Self> {
        let mut receiver = Self {
            spec: spec.clone(),
            source: None,
            backoff: BACKOFF_START,
            retry_at: Instant::now(),
            timeout,
            local: None,
        };
        match spec {
            LinkSpec::TcpListen(address) => {
                let listener = TcpListener::bind(resolve(address)?)?;
                listener.set_nonblocking(true)?;
                receiver.local = listener.local_addr().ok();
                receiver.source = Some(Source::TcpServer(listener, None));
            }
            LinkSpec::Udp(address) => {
                let socket = UdpSocket::bind(resolve(address)?)?;
                socket.set_read_timeout(Some(timeout))?;
                receiver.local = socket.local_addr().ok();
                receiver.source = Some(Source::Udp(socket));
            }
            _ => receiver.reopen(),
        }
        Ok(receiver)
    }

    /// The bound address of a TCP server or UDP socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    fn reopen(&mut self) {
        if Instant::now() < self.retry_at {
            return;
        }
        let opened = match &self.spec {
            LinkSpec::Serial { path, baud } => {
                open_serial(path, *baud, self.timeout).map(Source::Serial)
            }
            LinkSpec::Tcp(address) => resolve(address)
                .and_then(|a| TcpStream::connect_timeout(&a, self.timeout))
                .and_then(|s| {
                    s.set_read_timeout(Some(self.timeout))?;
                    Ok(Source::TcpClient(Some(s)))
                }),
            _ => return,
        };
        match opened {
            Ok(source) => {
                tracing::info!(link = %self.spec, "link open");
                self.source = Some(source);
                self.backoff = BACKOFF_START;
            }
            Err(error) => {
                tracing::warn!(link = %self.spec, %error, retry_in = ?self.backoff, "cannot open link");
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn lost(&mut self, error: &dyn fmt::Display) {
        tracing::warn!(link = %self.spec, %error, "link lost, reopening");
        match &mut self.source {
            Some(Source::TcpServer(_, client)) => *client = None,
            _ => {
                self.source = None;
                self.retry_at = Instant::now() + self.backoff;
            }
        }
    }

    /// Waits up to the timeout for bytes or a datagram, into `buffer`.
    pub fn receive(&mut self, buffer: &mut [u8]) -> Received {
        if self.source.is_none() {
            self.reopen();
            if self.source.is_none() {
                std::thread::sleep(self.timeout.min(self.retry_at - Instant::now()));
                return Received::Idle;
            }
        }
        let timeout = self.timeout;
        let result = match &mut self.source {
            Some(Source::Serial(port)) => port.read(buffer).map(Received::Bytes),
            Some(Source::TcpClient(Some(stream))) => stream.read(buffer).map(Received::Bytes),
            Some(Source::TcpServer(listener, client)) => {
                if client.is_none() {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            tracing::info!(link = %self.spec, %peer, "front-end connected");
                            stream.set_nonblocking(false).ok();
                            stream.set_read_timeout(Some(timeout)).ok();
                            *client = Some(stream);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(timeout.min(Duration::from_millis(20)));
                            return Received::Idle;
                        }
                        Err(e) => return self.fail(&e),
                    }
                }
                match client {
                    Some(stream) => stream.read(buffer).map(Received::Bytes),
                    None => Ok(Received::Idle),
                }
            }
            Some(Source::Udp(socket)) => socket.recv(buffer).map(Received::Datagram),
            Some(Source::TcpClient(None)) | None => Ok(Received::Idle),
        };
        match result {
            Ok(Received::Bytes(0)) => self.fail(&"end of stream"),
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Received::Idle
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Received::Idle,
            Err(e) => self.fail(&e),
        }
    }

    fn fail(&mut self, error: &dyn fmt::Display) -> Received {
        self.lost(error);
        Received::Idle
    }
}

/// The sending end of a link (the emulator's, or a front-end's on a host).
pub enum Sender {
    /// A byte stream: frames go COBS-encoded.
    Stream(Box<dyn Write + Send>),
    /// UDP: one raw frame per datagram.
    Datagram(UdpSocket),
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stream(_) => "Sender::Stream",
            Self::Datagram(_) => "Sender::Datagram",
        })
    }
}

impl Sender {
    /// Opens the sending end; waits up to `timeout` for a TCP peer to accept or connect.
    ///
    /// # Errors
    /// The I/O error of opening the port or socket.
    pub fn open(spec: &LinkSpec, timeout: Duration) -> io::Result<Self> {
        match spec {
            LinkSpec::Serial { path, baud } => {
                Ok(Self::Stream(Box::new(open_serial(path, *baud, timeout)?)))
            }
            LinkSpec::Tcp(address) => {
                let deadline = Instant::now() + timeout;
                loop {
                    match TcpStream::connect(resolve(address)?) {
                        Ok(stream) => {
                            stream.set_nodelay(true).ok();
                            return Ok(Self::Stream(Box::new(stream)));
                        }
                        Err(e) if Instant::now() >= deadline => return Err(e),
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
            LinkSpec::TcpListen(address) => {
                let listener = TcpListener::bind(resolve(address)?)?;
                let (stream, _) = listener.accept()?;
                Ok(Self::Stream(Box::new(stream)))
            }
            LinkSpec::Udp(address) => {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.connect(resolve(address)?)?;
                Ok(Self::Datagram(socket))
            }
        }
    }

    /// A sender over any writer (a pseudo-terminal, a pipe): frames go COBS-encoded.
    pub fn from_writer(writer: impl Write + Send + 'static) -> Self {
        Self::Stream(Box::new(writer))
    }

    /// Sends bytes as they are: stream bytes, or one datagram.
    ///
    /// # Errors
    /// The I/O error of the write.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Stream(w) => w.write_all(bytes),
            Self::Datagram(socket) => socket.send(bytes).map(|_| ()),
        }
    }

    /// Flushes a stream.
    ///
    /// # Errors
    /// The I/O error of the flush.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stream(w) => w.flush(),
            Self::Datagram(_) => Ok(()),
        }
    }

    /// Whether frames go COBS-encoded on this sender.
    pub fn is_stream(&self) -> bool {
        matches!(self, Self::Stream(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_loopback_defaults() {
        let parse = |s: &str| s.parse::<LinkSpec>();
        assert_eq!(
            parse("serial:/dev/ttyUSB0?baud=115200").unwrap(),
            LinkSpec::Serial {
                path: "/dev/ttyUSB0".into(),
                baud: 115_200
            }
        );
        assert_eq!(
            parse("serial:/dev/ttyACM0").unwrap().to_string(),
            "serial:/dev/ttyACM0?baud=921600"
        );
        assert_eq!(
            parse("tcp-listen:7000").unwrap(),
            LinkSpec::TcpListen("127.0.0.1:7000".into())
        );
        assert_eq!(
            parse("tcp-listen:0.0.0.0:7000").unwrap(),
            LinkSpec::TcpListen("0.0.0.0:7000".into())
        );
        assert_eq!(
            parse("udp:7001").unwrap(),
            LinkSpec::Udp("127.0.0.1:7001".into())
        );
        for bad in [
            "",
            "tcp:7000",
            "serial:/dev/x?speed=1",
            "carrier-pigeon:1",
            "udp:",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains("expected serial:"), "{err}");
        }
    }
}
