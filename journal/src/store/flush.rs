//! What a flush does, and the group-commit thread that does it in the background.
//!
//! A flush makes everything appended so far durable: the segment frames
//! (written and fsynced on a second thread) and sled (`flush`) side by side,
//! then the head file, last because it is a promise about the other two.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
};

use super::{
    head::{Head, HeadWriter},
    segments::{self, Frames},
    sled_problem, StoreError, TimingsSlot,
};
use crate::codec::{Header, Layout};

/// The files beside sled that a writing handle keeps: the segments (codec v2
/// only) and the head. Opened on the first write, so a handle that only reads
/// changes neither.
#[derive(Debug)]
pub(super) struct Files {
    segments: Option<segments::Writer>,
    head: HeadWriter,
    /// Told how long each flush took, once a driver asks ([`super::Journal::set_timings`]).
    timings: TimingsSlot,
}

impl Files {
    /// `stored_end`: sled holds every block below it (and the frames of this
    /// handle's writes are not yet anywhere).
    pub(super) fn open(
        dir: &Path,
        header: Header,
        layout: Layout,
        events: &sled::Tree,
        stored_end: u64,
        head_records: u64,
        timings: TimingsSlot,
    ) -> Result<Files, StoreError> {
        let segments = match layout {
            Layout::Packed => Some(segments::Writer::open(dir, header, events, stored_end).map_err(|e| {
                StoreError::Storage { path: dir.to_owned(), message: format!("cannot open the segment files: {e}") }
            })?),
            Layout::Single => None,
        };
        Ok(Files { segments, head: HeadWriter::new(dir, head_records), timings })
    }

    /// Writes `frames` to the segments without making them durable (a
    /// backtest's buffer grown large between syncs).
    pub(super) fn spill(&mut self, frames: &mut Frames) -> Result<(), String> {
        match &mut self.segments {
            Some(segments) => segments.write(frames).map_err(|e| format!("cannot write the segment files: {e}")),
            None => Ok(()),
        }
    }

    /// Makes `frames` and sled durable, then records `head` in the head file.
    /// The segments are written and synced on a second thread while sled
    /// flushes: the two fsyncs overlap instead of adding up.
    /// `frames` is left empty, its allocation kept for reuse.
    pub(super) fn flush(&mut self, frames: &mut Frames, db: &sled::Db, head: Head) -> Result<(), String> {
        let Some(timings) = self.timings.get().cloned() else { return self.flush_untimed(frames, db, head) };
        let started = std::time::Instant::now();
        let flushed = self.flush_untimed(frames, db, head);
        timings.flushed(started.elapsed());
        flushed
    }

    fn flush_untimed(&mut self, frames: &mut Frames, db: &sled::Db, head: Head) -> Result<(), String> {
        let Some(segments) = &mut self.segments else {
            db.flush().map_err(|e| sled_problem(&e))?;
            return self.head.advance(head).map_err(|e| format!("cannot write the durable head file: {e}"));
        };
        let write_segments = move || -> Result<(), String> {
            segments.write(frames).map_err(|e| format!("cannot write the segment files: {e}"))?;
            segments.sync().map_err(|e| format!("cannot sync the segment files: {e}"))
        };
        let (segments_done, sled_done) = thread::scope(|scope| {
            match thread::Builder::new().name("journal-segments".into()).spawn_scoped(scope, write_segments) {
                Ok(handle) => {
                    let sled_done = db.flush().map_err(|e| sled_problem(&e));
                    let segments_done =
                        handle.join().unwrap_or_else(|_| Err("the segment writer thread panicked".into()));
                    (segments_done, sled_done)
                }
                // No thread to be had: the frames went with the closure, so this
                // flush fails (the next writer's open copies the blocks from sled).
                Err(_) => {
                    (Err("cannot start the segment writer thread".into()), db.flush().map_err(|e| sled_problem(&e)))
                }
            }
        });
        segments_done?;
        sled_done?;
        self.head.advance(head).map_err(|e| format!("cannot write the durable head file: {e}"))
    }
}

/// One flush request: everything below `head.records` is to become durable,
/// including these frames.
pub(super) struct Request {
    pub(super) head: Head,
    pub(super) frames: Frames,
}

/// The group-commit flusher: a thread that owns the files while it runs,
/// flushes on request and publishes how far the journal is durable.
pub(super) struct Flusher {
    requests: Option<mpsc::SyncSender<Request>>,
    /// A request waits in the channel (set before sending, cleared by the thread on receipt).
    queued: Arc<AtomicBool>,
    failed: Arc<Mutex<Option<String>>>,
    /// The last request's frame buffer, emptied: the appending thread reuses
    /// it rather than growing a fresh one (page faults) every flush.
    spare: Arc<Mutex<Option<Frames>>>,
    handle: Option<thread::JoinHandle<Files>>,
}

impl Flusher {
    pub(super) fn start(db: sled::Db, mut files: Files, durable_next: Arc<AtomicU64>) -> Result<Flusher, Files> {
        // Capacity 1: one flush running and one queued cover everything appended meanwhile.
        let (requests, inbox) = mpsc::sync_channel::<Request>(1);
        let queued = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(None));
        let (queued_in_thread, failed_in_thread) = (Arc::clone(&queued), Arc::clone(&failed));
        let spare = Arc::new(Mutex::new(None));
        let spare_in_thread = Arc::clone(&spare);
        // The files travel to the thread and back through this slot, so a
        // thread that cannot be spawned hands them back.
        let slot = Arc::new(Mutex::new(None));
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(files);
        let thread_slot = Arc::clone(&slot);
        let spawned = thread::Builder::new().name("journal-flusher".into()).spawn(move || {
            let mut files =
                thread_slot.lock().unwrap_or_else(|p| p.into_inner()).take().expect("invariant: put before spawning");
            for mut request in inbox {
                queued_in_thread.store(false, Ordering::Release);
                let target = request.head.records;
                let flushed = files.flush(&mut request.frames, &db, request.head);
                *spare_in_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(request.frames);
                match flushed {
                    Ok(()) => {
                        durable_next.fetch_max(target, Ordering::AcqRel);
                    }
                    Err(message) => {
                        *failed_in_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
                        break;
                    }
                }
            }
            files
        });
        match spawned {
            Ok(handle) => Ok(Flusher { requests: Some(requests), queued, failed, spare, handle: Some(handle) }),
            Err(_) => {
                files = slot.lock().unwrap_or_else(|p| p.into_inner()).take().expect("invariant: never taken");
                Err(files)
            }
        }
    }

    /// Whether a request already waits for the running flush to finish.
    pub(super) fn is_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// Asks for a flush, waiting for room in the queue when `wait`; hands the
    /// request back when it cannot be queued (it will be asked again on a later
    /// append) or the thread has stopped (see [`Flusher::failure`]).
    pub(super) fn request(&self, request: Request, wait: bool) -> Result<(), Request> {
        // Marked before sending: the thread clears the mark when it takes the request.
        self.queued.store(true, Ordering::Release);
        let Some(requests) = self.requests.as_ref() else { return Err(request) };
        let sent = if wait {
            requests.send(request).map_err(|mpsc::SendError(r)| r)
        } else {
            requests.try_send(request).map_err(|e| match e {
                mpsc::TrySendError::Full(r) | mpsc::TrySendError::Disconnected(r) => r,
            })
        };
        if sent.is_err() {
            self.queued.store(false, Ordering::Release);
        }
        sent
    }

    /// An empty frame buffer for the next request: the last one back from the
    /// thread, or a new one as large as `capacity`.
    pub(super) fn spare(&self, capacity: usize) -> Frames {
        let reused = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        reused.unwrap_or_else(|| Frames::with_capacity(capacity))
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lets the queued flushes finish and takes the files back (`None`: the
    /// thread panicked; they are reopened on the next write).
    pub(super) fn stop(mut self) -> Option<Files> {
        drop(self.requests.take());
        self.handle.take().and_then(|h| h.join().ok())
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
