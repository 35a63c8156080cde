//! The one place PKCS#11 calls run: a fixed set of threads fed by a queue.
//!
//! tokio's blocking pool grows a thread per waiting call (up to 512), so 64
//! concurrent signatures meant 64 threads contending for sessions and for
//! the module's own locks, and two thread hand-offs per call. A fixed set
//! sized to what the token can do in parallel keeps every thread busy
//! under load: a worker that finishes a call takes the next one from the
//! queue without sleeping.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::keys::Job;

struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
    /// Jobs queued or running: what shutdown waits for.
    in_flight: AtomicUsize,
}

/// A fixed set of worker threads.
pub(super) struct Workers {
    queue: Arc<Queue>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

impl Workers {
    /// Starts `n` threads.
    pub(super) fn start(n: usize) -> std::io::Result<Self> {
        let queue = Arc::new(Queue {
            jobs: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
            in_flight: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let q = queue.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("signet-pkcs11-{i}"))
                    .spawn(move || run(&q))?,
            );
        }
        Ok(Self {
            queue,
            threads: Mutex::new(threads),
        })
    }

    /// Queues a job, or refuses it (`UNAVAILABLE`, the job dropped unrun)
    /// once [`Workers::shutdown`] has begun, so its caller gets a clear
    /// error rather than waiting forever.
    pub(super) fn submit(&self, job: Job) -> Result<()> {
        let mut g = self.queue.jobs.lock();
        if g.1 {
            return Err(Error::unavailable("the PKCS#11 backend is shutting down"));
        }
        self.queue.in_flight.fetch_add(1, Ordering::SeqCst);
        g.0.push_back(job);
        drop(g);
        self.queue.ready.notify_one();
        Ok(())
    }

    /// Jobs queued or running now.
    pub(super) fn in_flight(&self) -> usize {
        self.queue.in_flight.load(Ordering::SeqCst)
    }

    /// Stops taking jobs, lets the threads finish what is queued, and waits
    /// for them: afterwards no thread of this backend is inside the module.
    /// The process must not exit while one is: SoftHSM2 tears itself down
    /// in a static destructor at exit, under any thread still calling it.
    pub(super) fn shutdown(&self) {
        self.queue.jobs.lock().1 = true;
        self.queue.ready.notify_all();
        for t in std::mem::take(&mut *self.threads.lock()) {
            let _ = t.join();
        }
    }
}

fn run(q: &Queue) {
    loop {
        let job = {
            let mut g = q.jobs.lock();
            loop {
                if let Some(job) = g.0.pop_front() {
                    break job;
                }
                if g.1 {
                    return;
                }
                q.ready.wait(&mut g);
            }
        };
        // A panicking job drops its result sender (the caller sees an
        // error); the worker lives on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        q.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Workers {
    /// Lets the threads finish what is queued, then exit.
    fn drop(&mut self) {
        self.queue.jobs.lock().1 = true;
        self.queue.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn shutdown_waits_for_queued_jobs_and_refuses_new_ones() {
        let w = Workers::start(2).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..8 {
            let d = done.clone();
            w.submit(Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                d.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        assert!(w.in_flight() > 0);
        w.shutdown();
        assert_eq!(done.load(Ordering::SeqCst), 8, "shutdown returned early");
        assert_eq!(w.in_flight(), 0, "a call is still in flight after shutdown");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let refused = w.submit(Box::new(move || tx.send(()).unwrap()));
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::Unavailable);
        assert!(rx.recv().is_err(), "a job ran after shutdown");
        w.shutdown(); // twice is harmless
    }

    #[test]
    fn runs_every_job_and_survives_a_panic() {
        let w = Workers::start(2).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        w.submit(Box::new(|| panic!("job panics"))).unwrap();
        for _ in 0..100 {
            let (d, tx) = (done.clone(), tx.clone());
            w.submit(Box::new(move || {
                d.fetch_add(1, Ordering::Relaxed);
                tx.send(()).unwrap();
            }))
            .unwrap();
        }
        for _ in 0..100 {
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        }
        assert_eq!(done.load(Ordering::Relaxed), 100);
        w.shutdown();
        assert_eq!(w.in_flight(), 0, "the panicking job is still counted");
    }
}
