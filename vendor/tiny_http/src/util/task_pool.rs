// vouchd patch: a rewrite of upstream's pool.
//
// Upstream decided between "queue the task" and "start a thread" from an idle-thread counter it
// read outside the queue's lock and that a woken thread decremented only after taking its task,
// so two connections arriving together could both be queued for one idle thread: the second
// then waited until some other connection closed (a keep-alive client could starve for as long
// as the others stayed connected). It also grew without bound.
//
// Here the queue, the idle count and the thread count live under one lock: a task is queued
// only when an idle thread is certain to take it, otherwise a thread is started, up to
// `max_threads`; past that tasks wait in the queue for the next thread to finish one.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

type Task = Box<dyn FnOnce() + Send>;

/// Manages a bounded collection of threads.
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

struct State {
    todo: VecDeque<Task>,
    /// Threads waiting for a task.
    idle: usize,
    /// Threads alive.
    threads: usize,
    /// Set when the pool is dropped: idle threads end.
    closing: bool,
}

struct Sharing {
    state: Mutex<State>,
    condvar: Condvar,
    max_threads: usize,
}

/// Threads kept alive while idle.
const MIN_THREADS: usize = 4;
/// How long a thread above the minimum waits for work before it ends.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

impl TaskPool {
    pub fn new(max_threads: usize) -> TaskPool {
        TaskPool {
            sharing: Arc::new(Sharing {
                state: Mutex::new(State {
                    todo: VecDeque::new(),
                    idle: 0,
                    threads: 0,
                    closing: false,
                }),
                condvar: Condvar::new(),
                max_threads: max_threads.max(1),
            }),
        }
    }

    /// Runs `code` on a pool thread: an idle one, a new one, or (at the cap) the next free one.
    pub fn spawn(&self, code: Box<dyn FnOnce() + Send>) {
        let mut state = match self.sharing.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.idle > state.todo.len() || state.threads >= self.sharing.max_threads {
            state.todo.push_back(code);
            self.sharing.condvar.notify_one();
            return;
        }
        state.threads += 1;
        drop(state);
        let sharing = Arc::clone(&self.sharing);
        let started = thread::Builder::new()
            .name("http-connection".into())
            .spawn(move || run(sharing, code));
        if let Err(err) = started {
            // Out of threads: count it back; the connection is dropped (closed).
            log::error!("cannot start a connection thread: {}", err);
            if let Ok(mut state) = self.sharing.state.lock() {
                state.threads -= 1;
            }
        }
    }
}

fn run(sharing: Arc<Sharing>, first: Task) {
    first();
    loop {
        let task = {
            let mut state = match sharing.state.lock() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            };
            let next = loop {
                if let Some(task) = state.todo.pop_front() {
                    break Some(task);
                }
                if state.closing {
                    break None;
                }
                state.idle += 1;
                let (next, timeout) = match sharing.condvar.wait_timeout(state, IDLE_TIMEOUT) {
                    Ok(pair) => pair,
                    Err(poisoned) => poisoned.into_inner(),
                };
                state = next;
                state.idle -= 1;
                if timeout.timed_out() && state.todo.is_empty() && state.threads > MIN_THREADS {
                    break None;
                }
            };
            if next.is_none() {
                state.threads -= 1;
            }
            next
        };
        match task {
            Some(task) => task(),
            None => return,
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        if let Ok(mut state) = self.sharing.state.lock() {
            state.closing = true;
        }
        self.sharing.condvar.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::TaskPool;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn two_tasks_arriving_together_both_run_while_the_first_blocks() {
        let pool = TaskPool::new(16);
        let (release, hold) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel::<u32>();
        // Warm up: one thread that becomes idle.
        let d = done.clone();
        pool.spawn(Box::new(move || d.send(0).unwrap()));
        assert_eq!(finished.recv_timeout(Duration::from_secs(5)), Ok(0));
        std::thread::sleep(Duration::from_millis(50));
        // A long task (a keep-alive connection) and a short one, together.
        pool.spawn(Box::new(move || {
            let _ = hold.recv_timeout(Duration::from_secs(10));
        }));
        let d = done.clone();
        pool.spawn(Box::new(move || d.send(2).unwrap()));
        assert_eq!(finished.recv_timeout(Duration::from_secs(2)), Ok(2));
        release.send(()).unwrap();
    }

    #[test]
    fn at_the_cap_tasks_wait_for_a_free_thread() {
        let pool = TaskPool::new(2);
        let (done, finished) = mpsc::channel::<u32>();
        for i in 0..6 {
            let d = done.clone();
            pool.spawn(Box::new(move || {
                std::thread::sleep(Duration::from_millis(20));
                d.send(i).unwrap();
            }));
        }
        let mut got: Vec<u32> = (0..6)
            .map(|_| finished.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    }
}
