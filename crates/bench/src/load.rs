//! Load shapes: closed loop (a fixed number of requests in flight, each sent when one
//! finishes) and open loop (requests sent on a fixed schedule whatever the answers).
//!
//! In open loop every request's latency is measured from the time the schedule says it
//! should have been sent, not from when it was: when the server (or a full set of in-flight
//! slots) holds the generator back, the waiting counts, so a stall is not hidden by sending
//! fewer requests during it ("coordinated omission").

use crate::{
    ops::Mix,
    report::Outcome,
    target::{Failure, Target},
};
use std::{
    io::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

/// When a phase stops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    /// After this many requests.
    pub(crate) requests: Option<u64>,
    /// Or once this much time has passed since the start (requests in flight finish).
    pub(crate) duration: Option<Duration>,
}

/// Collects results from every task; counters for the progress line.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    done: AtomicU64,
    errors: AtomicU64,
    outcome: Mutex<Outcome>,
}

impl Recorder {
    fn record(&self, latency: Duration, result: Result<(), Failure>) {
        self.done.fetch_add(1, Ordering::Relaxed);
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => outcome.latencies.push(latency),
            Err(f) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                outcome.fail_as(&f.label, f.message);
            }
        }
    }

    fn finish(self, elapsed: Duration) -> Outcome {
        let mut outcome = self
            .outcome
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        outcome.elapsed = elapsed;
        outcome
    }
}

/// Keeps `concurrency` requests in flight until `stop`. Request numbers start at `first_seq`.
pub(crate) async fn closed_loop(
    target: &Arc<Target>,
    mix: &Arc<Mix>,
    concurrency: usize,
    first_seq: u64,
    stop: Stop,
    progress: bool,
) -> Outcome {
    let recorder = Arc::new(Recorder::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = stop.duration.map(|d| started + d);
    let reporter = progress.then(|| spawn_progress(recorder.clone(), started));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (target, mix, next, recorder) =
                (target.clone(), mix.clone(), next.clone(), recorder.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if stop.requests.is_some_and(|n| i >= n)
                        || deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break;
                    }
                    let seq = first_seq + i;
                    let sent = Instant::now();
                    let result = target.send(seq, mix.op(seq)).await;
                    recorder.record(sent.elapsed(), result);
                }
            })
        })
        .collect();
    let mut panicked = 0;
    for w in workers {
        if w.await.is_err() {
            panicked += 1;
        }
    }
    end(recorder, started, reporter, panicked)
}

/// Sends requests at `rate` per second until `stop`, at most `max_in_flight` at once.
pub(crate) async fn open_loop(
    target: &Arc<Target>,
    mix: &Arc<Mix>,
    rate: f64,
    max_in_flight: usize,
    first_seq: u64,
    stop: Stop,
    progress: bool,
) -> Outcome {
    let recorder = Arc::new(Recorder::default());
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let interval = Duration::from_secs_f64(1.0 / rate);
    // The schedule is finite: by count, or by duration × rate.
    let total = stop.requests.unwrap_or_else(|| {
        let secs = stop
            .duration
            .unwrap_or(Duration::from_secs(10))
            .as_secs_f64();
        (secs * rate).ceil() as u64
    });
    let started = Instant::now();
    let reporter = progress.then(|| spawn_progress(recorder.clone(), started));
    // The schedule runs on a thread of its own that sleeps with the OS's precision. The
    // runtime's timer works in whole milliseconds: requests fired up to a millisecond late, in
    // bursts of every request due within the same millisecond, and since latency runs from the
    // scheduled time, that lateness was counted as the server's. The thread wakes at most once
    // per `QUANTUM` and hands the requests due by then to the runtime in one task, so that a
    // high rate does not cost one cross-thread wake-up per request.
    const QUANTUM: Duration = Duration::from_micros(200);
    let runtime = tokio::runtime::Handle::current();
    let schedule = {
        let (target, mix, recorder, slots) =
            (target.clone(), mix.clone(), recorder.clone(), slots.clone());
        tokio::task::spawn_blocking(move || {
            let due = |i: u64| started + interval.mul_f64(i as f64);
            let mut i = 0;
            while i < total {
                if let Some(wait) = due(i).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                // Every request due within the next quantum goes now, at most one quantum
                // early.
                let horizon = Instant::now() + QUANTUM;
                let mut batch = Vec::new();
                while i < total && due(i) <= horizon {
                    let slot = match slots.clone().try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(_) => {
                            // Every slot is taken: what is batched goes now (it holds slots
                            // of its own), then this request waits for one; either way its
                            // latency runs from its due time.
                            spawn_batch(
                                &runtime,
                                std::mem::take(&mut batch),
                                &target,
                                &mix,
                                &recorder,
                                first_seq,
                            );
                            match runtime.block_on(slots.clone().acquire_owned()) {
                                Ok(slot) => slot,
                                Err(_) => return,
                            }
                        }
                    };
                    // A request sent ahead of its time is timed from when it was sent.
                    batch.push((i, due(i).min(Instant::now()), slot));
                    i += 1;
                }
                spawn_batch(&runtime, batch, &target, &mix, &recorder, first_seq);
            }
        })
    };
    // A schedule that panicked has stopped sending; what it sent is still waited for below.
    let panicked = usize::from(schedule.await.is_err());
    // Every request has finished once all slots are free again.
    let all = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    end(recorder, started, reporter, panicked)
}

/// Starts the requests of `batch` (sequence offset, start time, slot) on the runtime.
fn spawn_batch(
    runtime: &tokio::runtime::Handle,
    batch: Vec<(u64, Instant, tokio::sync::OwnedSemaphorePermit)>,
    target: &Arc<Target>,
    mix: &Arc<Mix>,
    recorder: &Arc<Recorder>,
    first_seq: u64,
) {
    let (target, mix, recorder) = (target.clone(), mix.clone(), recorder.clone());
    let one = move |(i, start, slot): (u64, Instant, tokio::sync::OwnedSemaphorePermit)| {
        let (target, mix, recorder) = (target.clone(), mix.clone(), recorder.clone());
        async move {
            let seq = first_seq + i;
            let result = target.send(seq, mix.op(seq)).await;
            recorder.record(start.elapsed(), result);
            drop(slot);
        }
    };
    if batch.is_empty() {
        return;
    }
    runtime.spawn(async move {
        for request in batch {
            tokio::spawn(one(request));
        }
    });
}

fn end(
    recorder: Arc<Recorder>,
    started: Instant,
    reporter: Option<tokio::task::JoinHandle<()>>,
    panicked: usize,
) -> Outcome {
    let elapsed = started.elapsed();
    if let Some(r) = reporter {
        r.abort();
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
    // Every task holding a clone has finished (workers joined, slots all returned); a task
    // that still held one would only mean a lost count, never a wrong one.
    let recorder = Arc::try_unwrap(recorder).unwrap_or_else(|shared| {
        let outcome = std::mem::take(
            &mut *shared
                .outcome
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        Recorder {
            outcome: Mutex::new(outcome),
            ..Recorder::default()
        }
    });
    let mut outcome = recorder.finish(elapsed);
    for _ in 0..panicked {
        outcome.fail_as("panic", "a load generator task panicked");
    }
    outcome
}

/// A progress line on standard error, rewritten every second.
fn spawn_progress(recorder: Arc<Recorder>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        let mut last = 0;
        loop {
            ticker.tick().await;
            let done = recorder.done.load(Ordering::Relaxed);
            let errors = recorder.errors.load(Ordering::Relaxed);
            eprint!(
                "\r\x1b[2K{:>6.1} s  {done:>9} requests  {:>8} /s  {errors} errors",
                started.elapsed().as_secs_f64(),
                done - last,
            );
            let _ = std::io::stderr().flush();
            last = done;
        }
    })
}
