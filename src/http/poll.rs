//! Linux's epoll, just what the server needs: connections registered one-shot under a key (for
//! reading, or for writing while a reply waits for room), so each readiness goes to exactly one
//! of the workers waiting in [`Poller::wait`] at once, and a level-triggered stop event that
//! wakes every one of them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The key [`Poller::wait`] returns once [`Poller::stop`] was called.
pub const STOP: u64 = u64::MAX;

pub struct Poller {
    epoll: OwnedFd,
    stop: OwnedFd,
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        // SAFETY: plain system calls; each descriptor they return is owned from here on.
        let epoll =
            unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let stop = unsafe {
            OwnedFd::from_raw_fd(check(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let poller = Poller { epoll, stop };
        poller.control(
            libc::EPOLL_CTL_ADD,
            poller.stop.as_raw_fd(),
            STOP,
            libc::EPOLLIN as u32,
        )?;
        Ok(poller)
    }

    fn control(&self, op: libc::c_int, fd: RawFd, key: u64, events: u32) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: key };
        // SAFETY: `event` lives across the call; the kernel copies it.
        check(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    const ONE_SHOT: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32;

    /// Watches `fd` for the next readable byte (or its peer's close), reported once under `key`.
    pub fn add(&self, fd: RawFd, key: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, key, Self::ONE_SHOT)
    }

    /// Watches an added `fd` again after its readiness was reported.
    pub fn rearm(&self, fd: RawFd, key: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, key, Self::ONE_SHOT)
    }

    /// Watches an added `fd` for room to write (a reply the client is slow to take), reported
    /// once under `key`. Not for the peer's half-close: a client may shut its side and still read.
    pub fn rearm_write(&self, fd: RawFd, key: u64) -> io::Result<()> {
        let events = (libc::EPOLLOUT | libc::EPOLLONESHOT) as u32;
        self.control(libc::EPOLL_CTL_MOD, fd, key, events)
    }

    /// Blocks until a watched descriptor is ready and returns its key ([`STOP`] after a stop).
    pub fn wait(&self) -> io::Result<u64> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        loop {
            // SAFETY: room for exactly the one event asked for.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, -1) };
            match check(n) {
                Ok(1) => return Ok(event.u64),
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The key of a descriptor ready now, if there is one, without waiting.
    pub fn ready_now(&self) -> io::Result<Option<u64>> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        loop {
            // SAFETY: room for exactly the one event asked for.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, 0) };
            match check(n) {
                Ok(1) => return Ok(Some(event.u64)),
                Ok(_) => return Ok(None),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// Wakes every waiter, now and later, with [`STOP`].
    pub fn stop(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd; it stays readable (never read).
        unsafe {
            libc::write(
                self.stop.as_raw_fd(),
                std::ptr::addr_of!(one).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}
