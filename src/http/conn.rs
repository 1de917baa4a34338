//! One client connection between the bytes that arrive on it: what was read of a request not
//! yet complete, where it stands, when it must be closed, and its place under the caps.

use super::body::BodyReader;
use super::wire::{Head, HeadScan};
use super::write::Outgoing;
use crate::app::App;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Bytes asked of the socket at a time.
const READ_SIZE: usize = 16 * 1024;

pub struct Conn {
    pub stream: TcpStream,
    pub key: u64,
    pub peer: IpAddr,
    /// The peer address as handlers see it, formatted once.
    pub remote: String,
    /// Bytes read but not used yet (part of a request).
    pub pending: Vec<u8>,
    pub phase: Phase,
    /// When the connection is closed if nothing completes first.
    pub deadline: Instant,
    _slot: Slot,
}

pub enum Phase {
    /// Between requests.
    Idle,
    /// A head is arriving; it must be whole within the head deadline of `since`. `scan` keeps
    /// how far it was checked, so a head arriving in pieces is not checked again from its start.
    Head { since: Instant, scan: HeadScan },
    /// The head is in and accepted; the body is arriving.
    Body(Box<BodyState>),
    /// A reply is going out and the client's socket is full; nothing more is read meanwhile.
    Writing(Box<Outgoing>),
    /// A refusal was sent and the write side shut; what the client still sends is read and
    /// dropped, so closing does not reset the connection under the refusal before it is read.
    Lingering,
}

pub struct BodyState {
    pub head: Head,
    pub reader: BodyReader,
    /// Whether `100 Continue` went out.
    pub continued: bool,
    /// When the whole body must be in, fixed when the head was accepted: a body trickling in
    /// cannot hold its buffer for longer.
    pub deadline: Instant,
}

impl Conn {
    pub fn new(stream: TcpStream, key: u64, peer: IpAddr, slot: Slot, deadline: Instant) -> Conn {
        Conn {
            stream,
            key,
            peer,
            remote: peer.to_string(),
            pending: Vec::new(),
            phase: Phase::Idle,
            deadline,
            _slot: slot,
        }
    }
}

/// Reads what the socket holds now, up to [`READ_SIZE`] bytes, appended to `buf`; never waits
/// (`WouldBlock` when nothing is there). The socket itself stays blocking for writes.
pub fn recv_now(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.reserve(READ_SIZE);
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(READ_SIZE);
    // SAFETY: the kernel writes at most `len` bytes into the vector's spare capacity.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            len,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: those `n` bytes were just initialised by recv.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Sends `bytes` if the socket takes them now; a refusal to a client that does not read is
/// not worth waiting for.
pub fn send_now(stream: &TcpStream, bytes: &[u8]) {
    // SAFETY: reads `bytes.len()` bytes from a live slice.
    unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// Open connections, in all and per remote address, against their caps; the open count is
/// the `/metrics` gauge. A trusted proxy carries many clients' connections: only the total caps
/// it.
pub struct Counts {
    max: usize,
    max_per_ip: usize,
    trusted: Vec<IpAddr>,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    app: Arc<App>,
}

impl Counts {
    pub fn new(app: Arc<App>, max: usize, max_per_ip: usize, trusted: Vec<IpAddr>) -> Arc<Counts> {
        Arc::new(Counts {
            max: max.max(1),
            max_per_ip: max_per_ip.max(1),
            trusted,
            open: Mutex::new((0, HashMap::new())),
            app,
        })
    }

    /// A place for one more connection from `peer`, if neither cap is reached.
    pub fn admit(self: &Arc<Counts>, peer: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        let mine = per_ip.entry(peer).or_insert(0);
        let capped = *mine >= self.max_per_ip && !self.trusted.contains(&peer.to_canonical());
        if *total >= self.max || capped {
            if *mine == 0 {
                per_ip.remove(&peer);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        self.app.metrics.connections.set(*total as i64);
        Some(Slot {
            counts: Arc::clone(self),
            peer,
        })
    }
}

/// One admitted connection's place; given back when the connection is dropped.
pub struct Slot {
    counts: Arc<Counts>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *open;
        *total -= 1;
        if let Some(mine) = per_ip.get_mut(&self.peer) {
            *mine -= 1;
            if *mine == 0 {
                per_ip.remove(&self.peer);
            }
        }
        self.counts.app.metrics.connections.set(*total as i64);
    }
}
