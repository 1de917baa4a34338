//! The HTTP server: one thread accepts connections (and closes those past their deadlines), a
//! bounded pool of workers serves them. A connection waiting for bytes is parked in epoll and
//! holds no thread; when bytes arrive one worker takes it, reads, handles and answers on the
//! spot, and parks it again.
//!
//! A reply the client is slow to take waits the same way, in epoll for room to write: no worker
//! waits on a client.
//!
//! Limits: `--max-connections` in all and `--max-connections-per-ip` per remote address (past
//! them a connection gets 503 and is closed), idle connections closed after `--idle-timeout`,
//! a head due within 10 s of its first byte, a body and a reply each due within 10 s plus
//! their size at a minimum rate (else the connection ends). Framing limits are in
//! [`super::wire`].

use super::conn::{send_now, Conn, Counts, Phase};
use super::poll::Poller;
use super::turns::Turns;
use super::wire::Fault;
use super::worker::Worker;
use super::write::{fault_bytes, DateCache};
use crate::app::App;
use crate::store::Readers;
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the accepting thread looks for connections past their deadlines.
const SWEEP: Duration = Duration::from_millis(250);
/// A pause after an `accept` that failed for want of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The server's settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    pub threads: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub idle_timeout: Duration,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<IpAddr>,
}

/// What the accepting thread and the workers share.
pub struct Shared {
    pub app: Arc<App>,
    pub poller: Poller,
    /// Connections waiting for bytes, by key.
    parked: Mutex<HashMap<u64, Conn>>,
    pub stopping: AtomicBool,
    /// Which workers may run requests at once.
    pub turns: Arc<Turns>,
    /// The database readers the workers borrow for a request.
    pub readers: Readers,
    pub idle_timeout: Duration,
    pub trusted_proxies: Vec<IpAddr>,
}

impl Shared {
    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Conn>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parked connection `key`, if it is still there (the sweep may have closed it).
    pub fn take(&self, key: u64) -> Option<Conn> {
        self.parked().remove(&key)
    }

    /// Parks `conn` until its next bytes, or until its socket has room for the rest of its
    /// reply. Armed under the lock: the sweep cannot close the descriptor between the two, so a
    /// reused descriptor number never gets a stale key. Once the server stops, only replies
    /// are kept (the workers finish them before they exit).
    pub fn park(&self, conn: Conn) {
        let writing = matches!(conn.phase, Phase::Writing(_));
        let mut parked = self.parked();
        let fd = conn.stream.as_raw_fd();
        let armed = if self.stopping.load(Ordering::SeqCst) {
            writing
        } else if writing {
            self.poller.rearm_write(fd, conn.key).is_ok()
        } else {
            self.poller.rearm(fd, conn.key).is_ok()
        };
        if armed {
            parked.insert(conn.key, conn);
        }
    }

    /// A parked connection whose reply is not yet sent, if there is one (at the stop).
    pub fn take_writing(&self) -> Option<Conn> {
        let mut parked = self.parked();
        let key = parked
            .values()
            .find(|conn| matches!(conn.phase, Phase::Writing(_)))
            .map(|conn| conn.key)?;
        parked.remove(&key)
    }
}

/// A running server: its address, and the handles to stop it.
pub struct Running {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Blocks until every worker has stopped.
    pub fn wait(mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.app.tokens.stop_watching();
        self.shared.app.store.close();
    }

    /// Stops accepting, lets the workers finish the requests they hold, closes every idle
    /// connection and flushes the writer.
    pub fn shutdown(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Ends a pending accept at once; new connections are refused from here on.
        let _ = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read);
        self.shared.poller.stop();
        self.shared.turns.stop();
        let shared = Arc::clone(&self.shared);
        self.wait();
        let idle: Vec<Conn> = shared.parked().drain().map(|(_, conn)| conn).collect();
        drop(idle);
    }
}

pub fn start(app: Arc<App>, listener: TcpListener, settings: &Settings) -> io::Result<Running> {
    raise_descriptor_limit();
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    app.tokens.watch(&app.store)?;
    let threads = settings.threads.max(1);
    // As many requests run at once as there are cores (two at least, so that a core the
    // machine takes away for a moment does not stop every request).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let turns = Turns::new(threads, cores);
    turns.watch()?;
    let shared = Arc::new(Shared {
        app: Arc::clone(&app),
        poller: Poller::new()?,
        parked: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
        turns,
        readers: Readers::new(threads),
        idle_timeout: settings.idle_timeout,
        trusted_proxies: settings.trusted_proxies.clone(),
    });
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let worker = Worker::new(Arc::clone(&shared), i);
        workers.push(
            std::thread::Builder::new()
                .name(format!("vouchd-worker-{i}"))
                .spawn(move || worker.run())?,
        );
    }
    let counts = Counts::new(
        app,
        settings.max_connections,
        settings.max_connections_per_ip,
        settings.trusted_proxies.clone(),
    );
    let accepting = listener.try_clone()?;
    let acceptor = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("vouchd-accept".into())
            .spawn(move || accept_loop(&shared, &accepting, &counts))?
    };
    Ok(Running {
        addr,
        shared,
        listener,
        acceptor: Some(acceptor),
        workers,
    })
}

/// Accepts until the server stops; between accepts, closes connections past their deadlines.
fn accept_loop(shared: &Shared, listener: &TcpListener, counts: &Arc<Counts>) {
    let mut next_key: u64 = 0;
    let mut date = DateCache::default();
    let mut last_sweep = Instant::now();
    while !shared.stopping.load(Ordering::SeqCst) {
        let mut waiting = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; the result is only a hint, accept tells the truth.
        unsafe { libc::poll(&mut waiting, 1, SWEEP.as_millis() as libc::c_int) };
        loop {
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => {
                    // Out of descriptors (EMFILE, ENFILE) or memory: wait and go on, never stop.
                    if !matches!(
                        err.kind(),
                        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
                    ) {
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                    break;
                }
            };
            let _ = stream.set_nodelay(true);
            let Some(slot) = counts.admit(peer.ip()) else {
                send_now(
                    &stream,
                    &fault_bytes(&Fault::TOO_MANY_CONNECTIONS, &mut date),
                );
                continue;
            };
            next_key += 1;
            let conn = Conn::new(
                stream,
                next_key,
                peer.ip(),
                slot,
                Instant::now() + shared.idle_timeout,
            );
            let mut parked = shared.parked();
            if shared.poller.add(conn.stream.as_raw_fd(), conn.key).is_ok() {
                parked.insert(conn.key, conn);
            }
        }
        if last_sweep.elapsed() >= SWEEP {
            last_sweep = Instant::now();
            sweep(shared, &mut date);
        }
    }
}

/// Closes the parked connections past their deadlines; a head or body that did not arrive in
/// time gets a 408 first, a reply not taken in time is cut off.
fn sweep(shared: &Shared, date: &mut DateCache) {
    let now = Instant::now();
    let expired: Vec<Conn> = {
        let mut parked = shared.parked();
        let keys: Vec<u64> = parked
            .values()
            .filter(|conn| conn.deadline <= now)
            .map(|conn| conn.key)
            .collect();
        keys.iter().filter_map(|key| parked.remove(key)).collect()
    };
    for conn in expired {
        match conn.phase {
            Phase::Head { .. } => send_now(&conn.stream, &fault_bytes(&Fault::TIMEOUT, date)),
            Phase::Body(_) => send_now(&conn.stream, &fault_bytes(&Fault::BODY_TIMEOUT, date)),
            // A reply not taken in time is abandoned, not finished: a reset drops what still
            // sits in the socket's send buffer, where a plain close would deliver it after all.
            Phase::Writing(_) => {
                let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
            }
            _ => {}
        }
    }
}

/// Each open connection costs a descriptor: take the whole hard limit, not the soft default.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a live struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
