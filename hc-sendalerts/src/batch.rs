//! Automatic batching: many tasks each ask for one thing (load a notification, record a result,
//! release a claim), and one worker answers everything that is waiting with one query.
//!
//! When the sender is quiet a request is handled alone and at once; under load the requests
//! that arrive while a batch runs form the next one, so the number of round trips and commits
//! grows with the number of batches, not of notifications.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// A request and where its answer goes.
type Request<I, O> = (I, oneshot::Sender<O>);

/// The handle to one batching worker; the worker ends when the last handle is dropped.
pub struct Batcher<I, O> {
    requests: mpsc::UnboundedSender<Request<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            requests: self.requests.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts a worker that calls `handle` with up to `max` waiting requests at a time;
    /// `handle` answers each request, in order.
    pub fn spawn<F, Fut>(max: usize, handle: F) -> Batcher<I, O>
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let (requests, mut receiver) = mpsc::unbounded_channel::<Request<I, O>>();
        let max = max.max(1);
        tokio::spawn(async move {
            let mut waiting = Vec::with_capacity(max);
            while receiver.recv_many(&mut waiting, max).await > 0 {
                let (items, replies): (Vec<I>, Vec<oneshot::Sender<O>>) = waiting.drain(..).unzip();
                let answers = handle(items).await;
                for (reply, answer) in replies.into_iter().zip(answers) {
                    // The asking task may have been cancelled; its answer is dropped.
                    let _ = reply.send(answer);
                }
            }
        });
        Batcher { requests }
    }

    /// Asks for `item` to be handled and waits for its answer; `None` if the worker is gone
    /// (or `handle` answered fewer requests than it was given).
    pub async fn call(&self, item: I) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((item, reply)).ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn requests_waiting_together_are_handled_together_in_order() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let batcher = Batcher::spawn(3, {
            let (sizes, gate) = (sizes.clone(), gate.clone());
            move |items: Vec<u32>| {
                let (sizes, gate) = (sizes.clone(), gate.clone());
                async move {
                    // The first batch waits, so the others queue up behind it.
                    gate.acquire().await.expect("open").forget();
                    sizes.lock().expect("sizes").push(items.len());
                    items.into_iter().map(|i| i * 10).collect::<Vec<_>>()
                }
            }
        });
        let calls: Vec<_> = (0..7)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.call(i).await })
            })
            .collect();
        // Let every call reach the queue (one runtime thread: each yield runs the others)
        // before the first batch may finish.
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(100);
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.expect("task").expect("answer"));
        }
        assert_eq!(answers, vec![0, 10, 20, 30, 40, 50, 60]);
        let sizes = sizes.lock().expect("sizes").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().all(|&n| n <= 3), "batches {sizes:?}");
        assert!(sizes.len() < 7, "some requests were batched: {sizes:?}");
    }
}
