//! Dynamic batching: concurrent requests for one model version are stacked along the first
//! (batch) dimension, predicted together on the version's worker thread, and every output row
//! goes back to the request it came from.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mlops_core::{Error, Model, Result, Tensor};
use tokio::sync::oneshot;

/// How a model version batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most rows (first-dimension entries) in one prediction; 1 disables batching.
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for others.
    pub max_delay: Duration,
    /// Requests waiting beyond this are refused with `Unavailable` (503).
    pub max_queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 1,
            max_delay: Duration::ZERO,
            max_queue: 1024,
        }
    }
}

impl BatchConfig {
    /// Batches of up to `max_batch_size` rows, waiting at most `max_delay` to fill one.
    pub fn new(max_batch_size: usize, max_delay: Duration) -> Self {
        Self {
            max_batch_size: max_batch_size.max(1),
            max_delay,
            ..Self::default()
        }
    }

    /// Whether requests are batched at all.
    pub fn enabled(&self) -> bool {
        self.max_batch_size > 1
    }
}

/// What a batch worker reports after each prediction (for metrics).
pub(crate) type OnBatch = Arc<dyn Fn(usize) + Send + Sync>;

struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    reply: oneshot::Sender<Result<Vec<Tensor>>>,
}

/// The queue in front of one model version's worker thread.
pub(crate) struct Batcher {
    tx: SyncSender<Job>,
    depth: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("depth", &self.depth())
            .finish()
    }
}

impl Batcher {
    /// Starts the worker thread for `model`. It stops when the batcher is dropped and the queue
    /// is drained.
    pub(crate) fn start(
        name: &str,
        model: Arc<dyn Model>,
        config: BatchConfig,
        on_batch: OnBatch,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(config.max_queue.max(1));
        let depth = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let worker_depth = Arc::clone(&depth);
        std::thread::Builder::new()
            .name(format!("batch-{name}"))
            .spawn(move || worker(rx, model, config, worker_depth, on_batch))
            .map_err(|e| Error::backend("thread", e))?;
        Ok(Self { tx, depth })
    }

    /// Requests queued or being predicted.
    pub(crate) fn depth(&self) -> usize {
        self.depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues `inputs` (already validated, in signature order) and waits for its outputs.
    pub(crate) async fn submit(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let rows = inputs
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(1);
        let (reply, rx) = oneshot::channel();
        self.depth
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.tx.try_send(Job {
            inputs,
            rows,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.depth
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                return Err(Error::unavailable("the model's request queue is full"));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.depth
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                return Err(Error::unavailable("the model's worker stopped"));
            }
        }
        rx.await
            .map_err(|_| Error::unavailable("the model's worker dropped the request"))?
    }
}

/// Whether two requests can share a prediction: same datatypes and the same dimensions after
/// the first.
fn compatible(a: &[Tensor], b: &[Tensor]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.datatype() == y.datatype()
                && x.shape().len() == y.shape().len()
                && x.shape().get(1..) == y.shape().get(1..)
        })
}

fn worker(
    rx: Receiver<Job>,
    model: Arc<dyn Model>,
    config: BatchConfig,
    depth: Arc<std::sync::atomic::AtomicUsize>,
    on_batch: OnBatch,
) {
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let mut batch = vec![first];
        let mut rows = batch[0].rows;
        let deadline = Instant::now() + config.max_delay;
        while rows < config.max_batch_size {
            let now = Instant::now();
            let next = if now >= deadline {
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(deadline - now).ok()
            };
            let Some(job) = next else { break };
            if rows + job.rows > config.max_batch_size || !compatible(&batch[0].inputs, &job.inputs)
            {
                carry = Some(job);
                break;
            }
            rows += job.rows;
            batch.push(job);
        }
        let n = batch.len();
        run(&*model, batch, rows);
        on_batch(rows);
        depth.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }
}

fn run(model: &dyn Model, batch: Vec<Job>, rows: usize) {
    if batch.len() == 1 {
        let Some(job) = batch.into_iter().next() else {
            return;
        };
        let _ = job.reply.send(model.predict(&job.inputs));
        return;
    }
    let stacked = match stack(&batch, rows) {
        Ok(s) => s,
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
            return;
        }
    };
    let outputs = model.predict(&stacked).and_then(|outs| {
        split(
            outs,
            &batch.iter().map(|j| j.rows).collect::<Vec<_>>(),
            rows,
        )
    });
    match outputs {
        Ok(per_request) => {
            for (job, outs) in batch.into_iter().zip(per_request) {
                let _ = job.reply.send(Ok(outs));
            }
        }
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

/// The inputs of every job concatenated along the first dimension.
fn stack(batch: &[Job], rows: usize) -> Result<Vec<Tensor>> {
    let first = &batch[0].inputs;
    let mut out = Vec::with_capacity(first.len());
    for (i, t) in first.iter().enumerate() {
        let mut data = BytesMut::new();
        for job in batch {
            data.extend_from_slice(job.inputs[i].data());
        }
        let mut shape = t.shape().to_vec();
        if let Some(d) = shape.first_mut() {
            *d = rows;
        }
        out.push(Tensor::new(t.name(), t.datatype(), shape, data.freeze())?);
    }
    Ok(out)
}

/// Splits batched outputs back into each request's rows.
fn split(outputs: Vec<Tensor>, rows: &[usize], total: usize) -> Result<Vec<Vec<Tensor>>> {
    let mut per: Vec<Vec<Tensor>> = rows
        .iter()
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for t in outputs {
        if t.shape().first() != Some(&total) {
            return Err(Error::invalid(
                "batch",
                format!(
                    "output {:?} has shape {:?}; a batched model must return {total} rows",
                    t.name(),
                    t.shape()
                ),
            ));
        }
        let row_elems: usize = t.shape()[1..].iter().product();
        let chunks: Vec<Bytes> = match t.datatype().size() {
            Some(size) => {
                let mut offset = 0;
                rows.iter()
                    .map(|r| {
                        let len = r * row_elems * size;
                        let c = t.data().slice(offset..offset + len);
                        offset += len;
                        c
                    })
                    .collect()
            }
            None => {
                // BYTES: walk the length-prefixed elements to find each request's bytes.
                let elems = t.to_byte_strings()?;
                let mut offset = 0usize;
                let mut pos = 0usize;
                rows.iter()
                    .map(|r| {
                        let n = r * row_elems;
                        let len: usize = elems[pos..pos + n].iter().map(|e| e.len() + 4).sum();
                        pos += n;
                        let c = t.data().slice(offset..offset + len);
                        offset += len;
                        c
                    })
                    .collect()
            }
        };
        for ((slot, r), data) in per.iter_mut().zip(rows).zip(chunks) {
            let mut shape = t.shape().to_vec();
            shape[0] = *r;
            slot.push(Tensor::new(t.name(), t.datatype(), shape, data)?);
        }
    }
    Ok(per)
}

/// Whether a model's inputs can be batched: every input's first dimension is variable.
pub(crate) fn batchable(shapes: &[Vec<i64>]) -> bool {
    !shapes.is_empty() && shapes.iter().all(|s| s.first() == Some(&-1))
}
