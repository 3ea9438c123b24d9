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
//! log.
//!
//! A TCP server serves up to [`MAX_TCP_CLIENTS`] front-ends at once, each on its own thread
//! (blocking reads, no polling), and closes a connection idle for [`CLIENT_IDLE_TIMEOUT`].
//! Every connection is its own byte stream: [`Received::Bytes`] says which one the bytes came
//! from and [`Received::Closed`] when it ended, so that a frame one front-end left unfinished
//! can never swallow the first frame of another (or of the same one reconnecting).
//!
//! A receiver opened with an allow-list of peer addresses ([`Receiver::open_allowing`])
//! refuses TCP connections and UDP datagrams from any other address and reports each as
//! [`Received::Refused`]. Addresses can be spoofed (UDP) or shared (NAT), so the allow-list
//! only adds to the frame key, which `crate::listen` requires beyond loopback.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use serialport::SerialPort;

/// Default serial baud rate.
pub const DEFAULT_BAUD: u32 = 921_600;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Most front-ends one TCP server serves at once; further connections are closed at once
/// (and logged).
pub const MAX_TCP_CLIENTS: usize = 64;
/// A TCP front-end that sends nothing for this long is disconnected (it may reconnect).
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the server's threads look at the stop flag.
const SERVER_POLL: Duration = Duration::from_millis(100);
/// Reads queued between the server's threads and the receiver: a slow receiver holds the
/// front-ends back through TCP rather than buffering without bound.
const SERVER_QUEUE: usize = 256;

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
    /// Stream bytes, the first `n` of the buffer, from one connection (a TCP front-end, or a
    /// serial port or TCP client since it was last opened): reassemble each apart.
    Bytes {
        /// The connection.
        connection: u64,
        /// Bytes received.
        n: usize,
    },
    /// A connection ended: a frame it left unfinished will never be completed.
    Closed {
        /// The connection.
        connection: u64,
    },
    /// A connection or datagram from a peer outside the allow-list, refused unread.
    Refused {
        /// The peer.
        from: SocketAddr,
    },
    /// One datagram, the first `n` of the buffer, from `from`.
    Datagram {
        /// Bytes received.
        n: usize,
        /// The sender.
        from: SocketAddr,
    },
    /// Nothing within the timeout (or the link is being reopened).
    Idle,
}

enum Source {
    Serial(Box<dyn SerialPort>),
    TcpServer(TcpServer),
    TcpClient(TcpStream),
    Udp(UdpSocket),
}

/// What a TCP server's connection threads report.
enum ClientEvent {
    Bytes { connection: u64, bytes: Vec<u8> },
    Closed { connection: u64 },
    Refused { from: SocketAddr },
}

/// Peers a receiver takes data from; empty: any.
type AllowList = Arc<[IpAddr]>;

fn admits(allowed: &[IpAddr], peer: IpAddr) -> bool {
    allowed.is_empty() || allowed.contains(&peer.to_canonical())
}

/// A TCP server: an accepting thread and one reading thread per front-end, feeding a queue.
struct TcpServer {
    events: mpsc::Receiver<ClientEvent>,
    /// Bytes of a read longer than the caller's buffer, still to hand out.
    pending: Option<(u64, Vec<u8>, usize)>,
    stop: Arc<AtomicBool>,
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl TcpServer {
    fn start(listener: TcpListener, spec: String, allowed: AllowList) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let (to_receiver, events) = mpsc::sync_channel(SERVER_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let accept_stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("tcp-accept".into())
            .spawn(move || {
                accept_clients(&listener, &spec, &allowed, &to_receiver, &accept_stop);
            })?;
        Ok(Self {
            events,
            pending: None,
            stop,
        })
    }

    fn receive(&mut self, buffer: &mut [u8], timeout: Duration) -> Received {
        let (connection, bytes, from) = match self.pending.take() {
            Some(pending) => pending,
            None => match self.events.recv_timeout(timeout) {
                Ok(ClientEvent::Bytes { connection, bytes }) => (connection, bytes, 0),
                Ok(ClientEvent::Closed { connection }) => return Received::Closed { connection },
                Ok(ClientEvent::Refused { from }) => return Received::Refused { from },
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Received::Idle;
                }
            },
        };
        let rest = bytes.get(from..).unwrap_or(&[]);
        let n = rest.len().min(buffer.len());
        buffer[..n].copy_from_slice(&rest[..n]);
        if from + n < bytes.len() {
            self.pending = Some((connection, bytes, from + n));
        }
        Received::Bytes { connection, n }
    }
}

fn accept_clients(
    listener: &TcpListener,
    spec: &str,
    allowed: &[IpAddr],
    to_receiver: &SyncSender<ClientEvent>,
    stop: &Arc<AtomicBool>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut next_connection = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(error) => {
                tracing::warn!(link = %spec, %error, "cannot accept a front-end");
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if !admits(allowed, peer.ip()) {
            tracing::warn!(link = %spec, %peer, "connection from a peer not allowed; closed");
            if to_receiver
                .send(ClientEvent::Refused { from: peer })
                .is_err()
            {
                return;
            }
            continue;
        }
        if live.load(Ordering::Relaxed) >= MAX_TCP_CLIENTS {
            tracing::warn!(link = %spec, %peer, "{MAX_TCP_CLIENTS} front-ends connected already; closing this one");
            continue;
        }
        next_connection += 1;
        let connection = next_connection;
        tracing::info!(link = %spec, %peer, connection, "front-end connected");
        live.fetch_add(1, Ordering::Relaxed);
        let (live, stop, to_receiver, spec) = (
            Arc::clone(&live),
            Arc::clone(stop),
            to_receiver.clone(),
            spec.to_owned(),
        );
        let spawned = thread::Builder::new()
            .name(format!("tcp-client-{connection}"))
            .spawn(move || {
                let why = read_client(stream, connection, &to_receiver, &stop);
                tracing::info!(link = %spec, %peer, connection, why, "front-end disconnected");
                live.fetch_sub(1, Ordering::Relaxed);
                // The receiver may be gone already; then nobody needs to know.
                let _ = to_receiver.send(ClientEvent::Closed { connection });
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start a thread for a front-end; closing it");
        }
    }
}

/// Reads one front-end until it closes, fails, idles too long or the server stops; says why.
fn read_client(
    mut stream: TcpStream,
    connection: u64,
    to_receiver: &SyncSender<ClientEvent>,
    stop: &AtomicBool,
) -> &'static str {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(SERVER_POLL)));
    if setup.is_err() {
        return "socket setup failed";
    }
    let mut buffer = vec![0u8; 16 * 1024];
    let mut last_data = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return "the listener stopped";
        }
        match stream.read(&mut buffer) {
            Ok(0) => return "closed by the front-end",
            Ok(n) => {
                last_data = Instant::now();
                let bytes = buffer[..n].to_vec();
                if to_receiver
                    .send(ClientEvent::Bytes { connection, bytes })
                    .is_err()
                {
                    return "the listener stopped";
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_data.elapsed() >= CLIENT_IDLE_TIMEOUT {
                    return "idle too long";
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return "read error",
        }
    }
}

/// The receiving end of a link.
pub struct Receiver {
    spec: LinkSpec,
    source: Option<Source>,
    allowed: AllowList,
    /// The serial port's or TCP client's current connection (counts reopenings).
    connection: u64,
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
        Self::open_allowing(spec, timeout, &[])
    }

    /// As [`Self::open`], taking TCP connections and UDP datagrams only from the peer
    /// addresses in `allowed` (any when empty).
    ///
    /// # Errors
    /// The I/O error of binding a server or UDP socket.
    pub fn open_allowing(
        spec: &LinkSpec,
        timeout: Duration,
        allowed: &[IpAddr],
    ) -> io::Result<Self> {
        let allowed: AllowList = allowed.iter().map(|ip| ip.to_canonical()).collect();
        let mut receiver = Self {
            spec: spec.clone(),
            source: None,
            allowed: Arc::clone(&allowed),
            connection: 0,
            backoff: BACKOFF_START,
            retry_at: Instant::now(),
            timeout,
            local: None,
        };
        match spec {
            LinkSpec::TcpListen(address) => {
                let listener = TcpListener::bind(resolve(address)?)?;
                receiver.local = listener.local_addr().ok();
                let server = TcpServer::start(listener, spec.to_string(), allowed)?;
                receiver.source = Some(Source::TcpServer(server));
            }
            LinkSpec::Udp(address) => {
                let socket = UdpSocket::bind(resolve(address)?)?;
                socket.set_read_timeout(Some(timeout))?;
                receiver.local = socket.local_addr().ok();
                receiver.source = Some(Source::Udp(socket));
            }
            _ => receiver.reopen(),
        }
        // Beyond loopback, `listen` insists on a frame key; the allow-list adds to it.
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
                    Ok(Source::TcpClient(s))
                }),
            _ => return,
        };
        match opened {
            Ok(source) => {
                tracing::info!(link = %self.spec, "link open");
                self.source = Some(source);
                self.connection += 1;
                self.backoff = BACKOFF_START;
            }
            Err(error) => {
                tracing::warn!(link = %self.spec, %error, retry_in = ?self.backoff, "cannot open link");
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    /// The serial port or TCP client failed or ended: reopen it later, and end its
    /// connection.
    fn lost(&mut self, error: &dyn fmt::Display) -> Received {
        tracing::warn!(link = %self.spec, %error, "link lost, reopening");
        self.source = None;
        self.retry_at = Instant::now() + self.backoff;
        Received::Closed {
            connection: self.connection,
        }
    }

    /// Waits up to the timeout for bytes or a datagram, into `buffer`.
    pub fn receive(&mut self, buffer: &mut [u8]) -> Received {
        if self.source.is_none() {
            self.reopen();
            if self.source.is_none() {
                thread::sleep(self.timeout.min(self.retry_at - Instant::now()));
                return Received::Idle;
            }
        }
        let connection = self.connection;
        let bytes = |n| Received::Bytes { connection, n };
        let result = match &mut self.source {
            Some(Source::Serial(port)) => port.read(buffer).map(bytes),
            Some(Source::TcpClient(stream)) => stream.read(buffer).map(bytes),
            Some(Source::TcpServer(server)) => return server.receive(buffer, self.timeout),
            Some(Source::Udp(socket)) => socket.recv_from(buffer).map(|(n, from)| {
                if admits(&self.allowed, from.ip()) {
                    Received::Datagram { n, from }
                } else {
                    tracing::debug!(link = %self.spec, %from, "datagram from a peer not allowed");
                    Received::Refused { from }
                }
            }),
            None => Ok(Received::Idle),
        };
        match result {
            Ok(Received::Bytes { n: 0, .. }) => self.lost(&"end of stream"),
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
            Err(error) if matches!(self.source, Some(Source::Udp(_))) => {
                // A datagram socket has no connection to lose (e.g. an ICMP error reported
                // on it): keep it and go on receiving.
                tracing::warn!(link = %self.spec, %error, "receive error on the UDP socket");
                Received::Idle
            }
            Err(e) => self.lost(&e),
        }
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
                        Err(_) => thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
            LinkSpec::TcpListen(address) => {
                let listener = TcpListener::bind(resolve(address)?)?;
                let (stream, _) = listener.accept()?;
                Ok(Self::Stream(Box::new(stream)))
            }
            LinkSpec::Udp(address) => {
                // Any local address of the target's family, so that other hosts are reachable.
                let target = resolve(address)?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(target)?;
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

    /// Receives until something other than [`Received::Idle`] arrives (at most 10 s).
    fn next(receiver: &mut Receiver, buffer: &mut [u8]) -> Received {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match receiver.receive(buffer) {
                Received::Idle if Instant::now() < deadline => {}
                received => return received,
            }
        }
    }

    #[test]
    fn peers_off_the_allow_list_are_refused_over_udp_and_tcp() {
        let mut buffer = [0u8; 64];
        // UDP: 127.0.0.2 is allowed, 127.0.0.1 is not (all of 127/8 is loopback on Linux).
        let spec: LinkSpec = "udp:127.0.0.1:0".parse().unwrap();
        let allowed = ["127.0.0.2".parse().unwrap()];
        let mut receiver =
            Receiver::open_allowing(&spec, Duration::from_millis(50), &allowed).unwrap();
        let address = receiver.local_addr().unwrap();
        for (source, accepted) in [("127.0.0.1:0", false), ("127.0.0.2:0", true)] {
            let socket = UdpSocket::bind(source).unwrap();
            socket.send_to(b"frame", address).unwrap();
            let from = socket.local_addr().unwrap();
            let expected = if accepted {
                Received::Datagram { n: 5, from }
            } else {
                Received::Refused { from }
            };
            assert_eq!(next(&mut receiver, &mut buffer), expected);
        }

        // TCP: a connection from 127.0.0.1 is refused when only 127.0.0.2 is allowed.
        let spec: LinkSpec = "tcp-listen:127.0.0.1:0".parse().unwrap();
        let mut receiver =
            Receiver::open_allowing(&spec, Duration::from_millis(50), &allowed).unwrap();
        let mut stream = TcpStream::connect(receiver.local_addr().unwrap()).unwrap();
        let from = stream.local_addr().unwrap();
        assert_eq!(next(&mut receiver, &mut buffer), Received::Refused { from });
        // The bridge closed it unread: what the peer sends goes nowhere.
        let _ = stream.write_all(b"frame");
        let mut rest = Vec::new();
        assert_eq!(
            stream
                .read_to_end(&mut rest)
                .map(|_| rest.len())
                .unwrap_or(0),
            0
        );

        // Allowed, the same connection's bytes arrive.
        let mut receiver = Receiver::open(&spec, Duration::from_millis(50)).unwrap();
        let mut stream = TcpStream::connect(receiver.local_addr().unwrap()).unwrap();
        stream.write_all(b"frame").unwrap();
        assert!(matches!(
            next(&mut receiver, &mut buffer),
            Received::Bytes { n: 5, .. }
        ));
    }
}
