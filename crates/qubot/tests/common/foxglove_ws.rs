//! A Foxglove WebSocket client written for the tests from the specifications, not from the
//! Foxglove SDK: RFC 6455 for the handshake and framing, and Foxglove's WebSocket protocol
//! (v1, offered as `foxglove.sdk.v1`: the same messages under the SDK's name) for what the
//! frames carry. Plain blocking sockets, one connection per client.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use serde_json::Value;

/// RFC 6455 §1.3's example key and the accept value it must produce.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
pub const SUBPROTOCOL: &str = "foxglove.sdk.v1";

/// A message from the server.
#[derive(Debug)]
pub enum Msg {
    /// A JSON message (`serverInfo`, `advertise`, `status`...).
    Json(Value),
    /// "Message Data" (binary opcode 0x01): a message of subscription `sub`.
    Data { sub: u32, log_ns: u64, payload: Vec<u8> },
    /// Another binary message (its opcode first).
    Binary(Vec<u8>),
}

pub struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects and completes the handshake; the server's first messages are left to read.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        Client::handshake(TcpStream::connect_timeout(&addr, Duration::from_secs(5))?, addr)
    }

    /// [`Client::connect`] with a receive buffer of `bytes` set before connecting, so the
    /// window it offers stays that small: a client that does not read stalls the server's
    /// sending within a few kilobytes instead of megabytes.
    pub fn connect_small_window(addr: SocketAddr, bytes: i32) -> io::Result<Client> {
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::other("IPv4 only"));
        };
        // SAFETY: a fresh socket, owned by the TcpStream below on success and closed here on
        // failure; the option and address structures outlive the calls that read them.
        let s = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let ok = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&bytes as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            ) == 0;
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            let ok = ok
                && libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                ) == 0;
            if !ok {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            TcpStream::from_raw_fd(fd)
        };
        Client::handshake(s, addr)
    }

    fn handshake(mut s: TcpStream, addr: SocketAddr) -> io::Result<Client> {
        s.set_nodelay(true)?;
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
        )?;
        let mut c = Client { s, buf: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        let end = loop {
            if let Some(i) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            c.fill(deadline)?;
        };
        let head = String::from_utf8_lossy(&c.buf[..end]).to_lowercase();
        c.buf.drain(..end);
        let ok = head.starts_with("http/1.1 101")
            && head.contains(&format!("sec-websocket-accept: {}", ACCEPT.to_lowercase()))
            && head.contains(&format!("sec-websocket-protocol: {SUBPROTOCOL}"));
        if !ok {
            return Err(io::Error::other(format!(
                "not a Foxglove WebSocket handshake: {head}"
            )));
        }
        Ok(c)
    }

    /// Reads more bytes, failing past `deadline`.
    fn fill(&mut self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "nothing from the server in time",
            ));
        }
        self.s.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 << 10];
        let n = self.s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// One whole frame: (fin, opcode, payload). Server frames are unmasked (RFC 6455 §5.1).
    fn frame(&mut self, deadline: Instant) -> io::Result<(bool, u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let (b0, b1) = (self.buf[0], self.buf[1]);
                if b1 & 0x80 != 0 {
                    return Err(io::Error::other("a masked frame from the server"));
                }
                let (len, head) = match b1 & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if head > 0 && self.buf.len() >= head + len {
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Ok((b0 & 0x80 != 0, b0 & 0x0f, payload));
                }
            }
            self.fill(deadline)?;
        }
    }

    /// The next message (fragments joined; pings answered), before `timeout`.
    pub fn next(&mut self, timeout: Duration) -> io::Result<Msg> {
        let deadline = Instant::now() + timeout;
        let mut message: Option<(u8, Vec<u8>)> = None;
        loop {
            let (fin, op, payload) = self.frame(deadline)?;
            match op {
                0x8 => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "closed by the server",
                    ))
                }
                0x9 => self.send(0xA, &payload)?,
                0xA => {}
                0x0 => match &mut message {
                    Some((_, m)) => m.extend(payload),
                    None => return Err(io::Error::other("a continuation of nothing")),
                },
                op => message = Some((op, payload)),
            }
            if !fin || op >= 0x8 {
                continue;
            }
            let Some((op, m)) = message.take() else { continue };
            return match op {
                0x1 => serde_json::from_slice(&m)
                    .map(Msg::Json)
                    .map_err(|e| io::Error::other(format!("a text frame that is not JSON: {e}"))),
                0x2 if m.first() == Some(&0x01) && m.len() >= 13 => Ok(Msg::Data {
                    sub: u32::from_le_bytes(m[1..5].try_into().unwrap()),
                    log_ns: u64::from_le_bytes(m[5..13].try_into().unwrap()),
                    payload: m[13..].to_vec(),
                }),
                _ => Ok(Msg::Binary(m)),
            };
        }
    }

    /// The next JSON message whose `op` is `op`, skipping others.
    pub fn next_op(&mut self, op: &str, timeout: Duration) -> io::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Msg::Json(v) = self.next(deadline.saturating_duration_since(Instant::now()))? {
                if v["op"] == op {
                    return Ok(v);
                }
            }
        }
    }

    /// Sends one masked frame (clients must mask, RFC 6455 §5.3).
    fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend(MASK);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.s.write_all(&f)
    }

    pub fn send_json(&mut self, v: &Value) -> io::Result<()> {
        self.send(0x1, v.to_string().as_bytes())
    }

    /// Subscribes to the channels `ids`, subscription `first`, `first + 1`... in order.
    pub fn subscribe(&mut self, first: u32, ids: &[u64]) -> io::Result<()> {
        let subs: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| serde_json::json!({"id": first + i as u32, "channelId": id}))
            .collect();
        self.send_json(&serde_json::json!({"op": "subscribe", "subscriptions": subs}))
    }
}

/// The advertised channels, topic to id, from an `advertise` message.
pub fn channel_ids(advertise: &Value) -> std::collections::BTreeMap<String, u64> {
    advertise["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["topic"].as_str()?.to_owned(), c["id"].as_u64()?)))
        .collect()
}
