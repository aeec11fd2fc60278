//! The relay in front of the SDK's server: the address operators connect to. Every client's
//! connection is passed to the server on loopback, bytes unchanged, except that what the
//! server sends waits in a bounded outbox of the relay's own. A client that reads slowly or
//! not at all fills its outbox; the oldest data messages are then dropped and counted
//! (`client_behind`), and nothing upstream notices. The SDK bounds its own per-client queue
//! too, but drops from it without saying, so the relay drains it at loopback speed and does
//! the dropping where it can be counted (docs/ARCHITECTURE.md §11, "Live view").

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::frame;
use crate::metrics::{connected, dropped, DROP_CLIENT_BEHIND, DROP_CLIENT_STUCK};

/// The kernel's send buffer for a client: at the view's ~220 KiB/s, about a second.
const CLIENT_SEND_BUFFER: usize = 256 << 10;

/// How much one client may have waiting.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Data messages waiting; past it the oldest is dropped. A few seconds of every channel.
    pub messages: usize,
    /// Bytes waiting; past it the oldest data messages are dropped.
    pub bytes: usize,
    /// Bytes waiting that cannot be dropped (the session's own messages): past it the client
    /// is disconnected.
    pub hard_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            messages: 256,
            bytes: 4 << 20,
            hard_bytes: 16 << 20,
        }
    }
}

/// Accepts clients on `listener` and relays each to the server at `upstream`, until the
/// runtime stops.
pub async fn serve(listener: TcpListener, upstream: SocketAddr, limits: Limits) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(async move {
                    let _connected = connected();
                    tracing::info!(%peer, "live view: client connected");
                    if let Err(e) = relay(client, upstream, limits).await {
                        tracing::info!(%peer, "live view: client gone: {e}");
                    } else {
                        tracing::info!(%peer, "live view: client gone");
                    }
                });
            }
            // A client that reset before it was accepted, or a file-descriptor limit: the
            // listener stays up.
            Err(e) => {
                tracing::warn!("live view: accepting a client: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, limits: Limits) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    // Small messages (a pose, a command) go out as they come.
    client.set_nodelay(true)?;
    // A fixed send buffer, not the kernel's autotuned megabytes: a client that stops reading
    // fills the outbox within a few hundred kilobytes, where what it misses is counted, and
    // its backlog is bounded in memory the relay can see.
    socket2::SockRef::from(&client).set_send_buffer_size(CLIENT_SEND_BUFFER)?;
    server.set_nodelay(true)?;
    let (mut from_client, client_out) = client.into_split();
    let (from_server, mut to_server) = server.into_split();
    let outbox = Arc::new(Outbox::new(limits));
    // What the client says (its handshake, subscriptions) goes to the server untouched.
    let up = tokio::io::copy(&mut from_client, &mut to_server);
    let down = async {
        let read = read_server(from_server, &outbox);
        let write = write_client(client_out, &outbox);
        let (r, w) = tokio::join!(read, write);
        r.and(w)
    };
    // Either side ending ends the connection: both sockets close when this returns.
    tokio::select! {
        r = up => r.map(drop),
        r = down => r,
    }
}

/// Reads the server's side: the HTTP head as it is, then whole frames into the outbox.
async fn read_server(mut from: OwnedReadHalf, outbox: &Outbox) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 << 10);
    let head = loop {
        if let Some(n) = frame::head_len(&buf) {
            break n;
        }
        if buf.len() > frame::MAX_HEAD {
            outbox.close();
            return Err(std::io::Error::other("the server's handshake has no end"));
        }
        if from.read_buf(&mut buf).await? == 0 {
            outbox.push(std::mem::take(&mut buf), false);
            outbox.close();
            return Ok(());
        }
    };
    let framed = frame::switching_protocols(&buf[..head]);
    outbox.push(buf.drain(..head).collect(), false);
    loop {
        let at = if framed {
            match forward_frames(&buf, outbox) {
                Ok(at) => at,
                Err(e) => {
                    outbox.close();
                    return Err(e);
                }
            }
        } else {
            // A refused handshake's body: passed on as it is.
            if !buf.is_empty() {
                outbox.push(buf.clone(), false);
            }
            buf.len()
        };
        buf.drain(..at);
        if from.read_buf(&mut buf).await? == 0 {
            outbox.close();
            return Ok(());
        }
    }
}

/// Queues every whole frame at the start of `buf`, one push a frame; how many bytes they took.
fn forward_frames(buf: &[u8], outbox: &Outbox) -> std::io::Result<usize> {
    let mut at = 0;
    while let Some(f) = frame::next(&buf[at..]).map_err(std::io::Error::other)? {
        if !outbox.push(buf[at..at + f.len].to_vec(), f.data) {
            return Err(std::io::Error::other(
                "the client does not read its own session's messages",
            ));
        }
        at += f.len;
    }
    Ok(at)
}

async fn write_client(mut to: OwnedWriteHalf, outbox: &Outbox) -> std::io::Result<()> {
    while let Some(bytes) = outbox.pop().await {
        to.write_all(&bytes).await?;
    }
    to.shutdown().await
}

/// One client's waiting frames.
struct Outbox {
    limits: Limits,
    state: Mutex<Waiting>,
    ready: Notify,
}

#[derive(Default)]
struct Waiting {
    frames: VecDeque<(Vec<u8>, bool)>,
    bytes: usize,
    data: usize,
    closed: bool,
}

impl Outbox {
    fn new(limits: Limits) -> Outbox {
        Outbox {
            limits,
            state: Mutex::new(Waiting::default()),
            ready: Notify::new(),
        }
    }

    /// Queues a frame, dropping the oldest data messages past the limits. False when what
    /// cannot be dropped is past the hard limit: the client is to be let go.
    fn push(&self, bytes: Vec<u8>, data: bool) -> bool {
        let mut w = self.state.lock().expect("outbox lock");
        w.bytes += bytes.len();
        w.data += usize::from(data);
        w.frames.push_back((bytes, data));
        let mut gone = 0u64;
        while w.data > self.limits.messages || w.bytes > self.limits.bytes {
            let Some(i) = w.frames.iter().position(|(_, data)| *data) else {
                break;
            };
            let (b, _) = w.frames.remove(i).expect("found");
            w.bytes -= b.len();
            w.data -= 1;
            gone += 1;
        }
        let stuck = w.bytes > self.limits.hard_bytes;
        if stuck {
            w.closed = true;
        }
        drop(w);
        if gone > 0 {
            dropped(DROP_CLIENT_BEHIND).increment(gone);
        }
        if stuck {
            dropped(DROP_CLIENT_STUCK).increment(1);
        }
        self.ready.notify_one();
        !stuck
    }

    fn close(&self) {
        self.state.lock().expect("outbox lock").closed = true;
        self.ready.notify_one();
    }

    /// The oldest frame; `None` once the outbox is closed and empty.
    async fn pop(&self) -> Option<Vec<u8>> {
        loop {
            {
                let mut w = self.state.lock().expect("outbox lock");
                if let Some((b, data)) = w.frames.pop_front() {
                    w.bytes -= b.len();
                    w.data -= usize::from(data);
                    return Some(b);
                }
                if w.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(messages: usize, bytes: usize, hard_bytes: usize) -> Limits {
        Limits {
            messages,
            bytes,
            hard_bytes,
        }
    }

    fn drain(o: &Outbox) -> Vec<Vec<u8>> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        o.close();
        rt.block_on(async {
            let mut got = vec![];
            while let Some(b) = o.pop().await {
                got.push(b);
            }
            got
        })
    }

    #[test]
    fn past_its_limit_the_oldest_data_goes_and_the_session_stays() {
        let o = Outbox::new(limits(2, 1 << 20, 2 << 20));
        assert!(o.push(b"advertise".to_vec(), false));
        for i in 0..5u8 {
            assert!(o.push(vec![i], true));
        }
        assert!(o.push(b"status".to_vec(), false));
        assert_eq!(
            drain(&o),
            vec![b"advertise".to_vec(), vec![3], vec![4], b"status".to_vec()]
        );
    }

    #[test]
    fn the_byte_limit_drops_data_too_and_a_session_past_the_hard_limit_is_let_go() {
        let o = Outbox::new(limits(100, 10, 20));
        assert!(o.push(vec![0; 8], true));
        assert!(o.push(vec![1; 8], true));
        assert_eq!(drain(&o), vec![vec![1; 8]]);
        let o = Outbox::new(limits(100, 10, 20));
        assert!(o.push(vec![0; 15], false));
        assert!(
            !o.push(vec![0; 15], false),
            "nothing droppable is left: past the hard limit"
        );
    }
}
