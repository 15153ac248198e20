//! Waiting for background effects: poll a condition until it holds or a patience period runs out.
//!
//! Tests use this instead of bare sleeps; the polling interval starts small and is capped, so a
//! quick effect is seen quickly and a slow one does not spin.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Calls `condition` until it returns `Ok`, waiting a little between attempts; after `patience`
/// it gives up and returns the last error, with context saying how long it waited.
pub async fn eventually<T, F, Fut>(patience: Duration, mut condition: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + patience;
    let mut delay = Duration::from_millis(10);
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        match condition().await {
            Ok(value) => return Ok(value),
            Err(err) if Instant::now() >= deadline => {
                return Err(err.context(format!(
                    "condition still false after {patience:?} ({attempts} attempts)"
                )));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// [`eventually`] for tests without a runtime: runs it on a small current-thread runtime.
pub fn eventually_blocking<T, F>(patience: Duration, mut condition: F) -> anyhow::Result<T>
where
    F: FnMut() -> anyhow::Result<T>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?
        .block_on(eventually(patience, || std::future::ready(condition())))
}
