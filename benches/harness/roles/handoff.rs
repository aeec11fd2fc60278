//! The least a consumer pays for running its handler on its own thread rather than inside
//! zenoh's callback: a bounded lock-free queue and a park/unpark wake-up (a futex, only when
//! the worker sleeps). `raw-handoff` puts raw zenoh's echo and sink behind it, so the bench
//! can tell the cost of the hand-off itself from the cost of what Qubot does around it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{JoinHandle, Thread},
};

use crossbeam_queue::ArrayQueue;

/// Same depth as Qubot's bench inboxes; a full queue drops the newest, as they do.
const CAPACITY: usize = 4096;

pub struct Handoff<T> {
    queue: Arc<ArrayQueue<T>>,
    stop: Arc<AtomicBool>,
    worker: JoinHandle<()>,
}

/// The producer's end, moved into zenoh's callback.
pub struct Sender<T> {
    queue: Arc<ArrayQueue<T>>,
    worker: Thread,
}

impl<T> Sender<T> {
    pub fn send(&self, item: T) {
        // A full queue drops the item (the bench's paced and flat-out runs count what arrives).
        let _ = self.queue.push(item);
        self.worker.unpark();
    }
}

impl<T: Send + 'static> Handoff<T> {
    /// A worker thread that runs `handle` on every item, in order, until `stop`.
    pub fn spawn(mut handle: impl FnMut(T) + Send + 'static) -> Handoff<T> {
        let queue = Arc::new(ArrayQueue::new(CAPACITY));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queue.clone(), stop.clone());
        let worker = std::thread::spawn(move || loop {
            while let Some(item) = q.pop() {
                handle(item);
            }
            if s.load(Ordering::Acquire) {
                return;
            }
            // An unpark between the last pop and here makes this return at once.
            std::thread::park();
        });
        Handoff { queue, stop, worker }
    }

    pub fn sender(&self) -> Sender<T> {
        Sender {
            queue: self.queue.clone(),
            worker: self.worker.thread().clone(),
        }
    }

    /// Lets the worker finish what is queued, then joins it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.worker.thread().unpark();
        let _ = self.worker.join();
    }
}
