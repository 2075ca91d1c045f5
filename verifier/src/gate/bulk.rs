//! The bulk pool: a few threads at a lower scheduling priority that do the per-byte work of
//! uploads (SHA-256 and BLAKE3 of received bytes, their writes, Xet chunk decoding and
//! hashing), so the async workers keep answering short requests (refusals, metadata) first
//! while a large upload is received. Linux lets a thread lower its own priority: each pool
//! thread sets `SCHED_BATCH` (it never preempts a running request thread when it wakes) and
//! a nice value [`NICE`] above the process's. Elsewhere the threads run at the default
//! priority.
//!
//! The pool has as many threads as the machine has cores (at least two, so receiving one
//! file and decoding the next part of it overlap): a job waits in a shared queue
//! for a free thread, so at most that many uploads hash at once, and an upload whose next
//! batch waits stops reading its socket, which slows its client instead of growing memory.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

/// How much nicer pool threads are than the process: a runnable request thread at nice 0 gets about ten times
/// the CPU time of a pool thread on the same core, yet the pool still uses every idle cycle.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    jobs: Sender<Job>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("weightgate-bulk-{i}"))
                .spawn(move || serve(&queue))
                .expect("spawning a bulk thread");
        }
        Pool { jobs }
    })
}

/// The pool's size: one thread per core, at least two and at most sixteen.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 16))
}

fn serve(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, not while running it.
        let job = match queue.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panicking job drops its answer channel, which its caller sees as `JobLost`.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Makes the calling thread yield to everything at the default priority (Linux: policy and
/// nice are per thread). Failure leaves it at the default priority, which is only slower.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread, with a valid parameter struct.
    unsafe {
        let tid = libc::gettid();
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(tid, libc::SCHED_BATCH, &param);
        let inherited = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(
            libc::PRIO_PROCESS,
            tid as libc::id_t,
            (inherited + NICE).min(19),
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `a` on a second thread at the pool's priority while `b` runs on the calling one, and
/// returns both answers: an upload's write into the page cache and its hashing take about as
/// long each, so one batch finishes in the time of the slower instead of their sum. A
/// panic in `a` is resumed here.
pub fn both<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            lower_priority();
            a()
        });
        let second = b();
        match first.join() {
            Ok(first) => (first, second),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The bulk pool's thread died while running a job (the job panicked).
#[derive(Debug, thiserror::Error)]
#[error("the bulk pool's job did not finish (it panicked)")]
pub struct JobLost;

/// Queues `work` on a bulk thread now; the answer is awaited from async code without
/// holding an async worker.
pub fn submit<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
    let (done, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    // The pool's threads never end, so the queue is always open; were it closed, the job is
    // dropped with its answer channel and the caller sees `JobLost`.
    let _ = pool().jobs.send(job);
    Pending(answer)
}

/// Runs `work` on a bulk thread and waits for it.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobLost> {
    submit(work).await
}

/// The answer of a job [`submit`]ted to the pool.
pub struct Pending<T>(tokio::sync::oneshot::Receiver<T>);

impl<T> std::future::Future for Pending<T> {
    type Output = Result<T, JobLost>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| JobLost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_at_the_lowered_priority_off_the_runtime() {
        let caller = std::thread::current().id();
        // SAFETY: a query of the calling thread.
        let inherited =
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let (thread, name, nice, policy) = run(|| {
            // SAFETY: queries of the calling thread.
            let (nice, policy) = unsafe {
                let tid = libc::gettid();
                (
                    libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t),
                    libc::sched_getscheduler(tid),
                )
            };
            let me = std::thread::current();
            (me.id(), me.name().map(str::to_string), nice, policy)
        })
        .await
        .unwrap();
        assert_ne!(thread, caller);
        assert!(name.unwrap().starts_with("weightgate-bulk-"));
        assert_eq!(nice, (inherited + NICE).min(19));
        assert_eq!(policy, libc::SCHED_BATCH);
    }

    #[test]
    fn both_runs_its_halves_at_once_at_the_pool_priority() {
        // Each half waits for the other to start: they can only finish if they run at once.
        let barrier = std::sync::Barrier::new(2);
        let (policy, _) = both(
            || {
                barrier.wait();
                // SAFETY: a query of the calling thread.
                unsafe { libc::sched_getscheduler(libc::gettid()) }
            },
            || barrier.wait(),
        );
        assert_eq!(policy, libc::SCHED_BATCH);
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_pool_keeps_working() {
        let lost = run(|| -> u32 { panic!("job fails") }).await;
        assert!(lost.is_err());
        for i in 0..8u32 {
            assert_eq!(run(move || i * 2).await.unwrap(), i * 2);
        }
    }
}
